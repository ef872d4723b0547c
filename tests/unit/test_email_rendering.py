"""German email templates: forms of address, umlauts, escaping, data minimisation, text layout."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from communication_fakes import LEGAL
from therapy_platform.communication.domain.email_content import (
    EN_DASH,
    BundleInquiry,
    BundlePatient,
    BundleReminder,
    DistanceBand,
    EmailContent,
    PatientPlaceFound,
    Person,
    TherapistContact,
    availability_text,
    bundle_patient_from_summary,
    distance_band,
    german_datetime,
    person_from_record,
    salutation_for,
    spoken_title,
)
from therapy_platform.communication.domain.emails import EmailKind
from therapy_platform.communication.rendering.renderer import TEXT_WIDTH, EmailRenderer, safe_url
from therapy_platform.contracts.patients import InsuranceType
from therapy_platform.contracts.schedule import Weekday
from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.contracts.therapy import Gender
from tools.render_emails import INJECTION, SAMPLE_LEGAL, samples

RENDERER = EmailRenderer(LEGAL)


def _patient(reference: str = "B12-1", **changes: object) -> BundlePatient:
    values: dict[str, object] = {
        "reference": reference,
        "age": 41,
        "gender": Gender.FEMALE,
        "symptoms": [Symptom.ANXIETY, Symptom.SLEEP],
        "insurer": "AOK Bayern",
        "distance_band": DistanceBand.UP_TO_10,
    }
    return BundlePatient.model_validate({**values, **changes})


def _inquiry(therapist: Person, *patients: BundlePatient) -> BundleInquiry:
    return BundleInquiry(
        bundle_reference="B12",
        therapist=therapist,
        patients=list(patients) or [_patient()],
        sent_on=date(2026, 11, 23),
    )


# --------------------------------------------------------------------------- forms of address


@pytest.mark.parametrize(
    ("gender", "title", "first", "salutation_word", "expected"),
    [
        (Gender.MALE, None, "Jörg", None, "Sehr geehrter Herr Müller"),
        (Gender.FEMALE, None, "Anna", None, "Sehr geehrte Frau Müller"),
        (Gender.MALE, "Dr.", "Jörg", None, "Sehr geehrter Herr Dr. Müller"),
        (Gender.FEMALE, "Prof. Dr.", "Anna", None, "Sehr geehrte Frau Prof. Dr. Müller"),
        (Gender.FEMALE, "Prof. Dr. med. habil.", "Anna", None, "Sehr geehrte Frau Prof. Dr. Müller"),
        (Gender.MALE, "Dr. rer. nat. Dipl.-Psych.", "Jörg", None, "Sehr geehrter Herr Dr. Müller"),
        (Gender.MALE, "Dipl.-Psych.", "Jörg", None, "Sehr geehrter Herr Müller"),
        (Gender.FEMALE, "M.Sc. Psychologie", "Anna", None, "Sehr geehrte Frau Müller"),
        (Gender.DIVERSE, None, "Alex", None, "Guten Tag Alex Müller"),
        (Gender.DIVERSE, "Dr.", "Alex", "Herr", "Guten Tag Dr. Alex Müller"),
        (Gender.UNSPECIFIED, None, "Kim", None, "Guten Tag Kim Müller"),
        (Gender.UNSPECIFIED, "Dr.", None, None, "Guten Tag Dr. Müller"),
        (Gender.UNSPECIFIED, "Dr.", "Kim", "Frau", "Sehr geehrte Frau Dr. Müller"),
        (Gender.UNSPECIFIED, None, "Kim", "Herr", "Sehr geehrter Herr Müller"),
        (Gender.UNSPECIFIED, None, "Kim", "Divers", "Guten Tag Kim Müller"),
    ],
)
def test_salutation_for_every_gender(
    gender: Gender, title: str | None, first: str | None, salutation_word: str | None, expected: str
) -> None:
    assert (
        salutation_for(gender, "Müller", first_name=first, title=title, salutation_word=salutation_word)
        == expected
    )


def test_only_spoken_titles_survive() -> None:
    assert spoken_title("PD Dr. med.") == "Dr."
    assert spoken_title("Prof. Dr. Dr. h.c.") == "Prof. Dr. Dr."
    assert spoken_title("Dr.med.") == "Dr."
    assert spoken_title("Dipl.-Psych.") == ""
    assert spoken_title(None) == ""


@pytest.mark.parametrize("gender", list(Gender))
def test_every_gender_gets_a_letter_that_opens_with_its_salutation(gender: Gender) -> None:
    therapist = Person(gender=gender, title="Prof. Dr.", first_name="Jürgen", last_name="Weiß")
    rendered = RENDERER.render(_inquiry(therapist))
    opening = f"{therapist.letter_salutation},"
    assert rendered.text.startswith(opening)
    assert opening in rendered.html
    assert "Weiß" in opening


# --------------------------------------------------------------------------- every template


def test_every_kind_of_email_has_a_sample_and_renders_in_both_formats() -> None:
    rendered = {name: RENDERER.render(content) for name, content in samples().items()}
    kinds = {content.kind for content in samples().values()}
    assert kinds == set(EmailKind)
    for name, email in rendered.items():
        assert email.subject and "\n" not in email.subject, name
        assert email.html.startswith("<!DOCTYPE html>"), name
        assert '<html lang="de">' in email.html, name
        # The legal footer, in both formats.
        assert LEGAL.organisation in email.html and LEGAL.organisation in email.text, name
        assert "Lindenstraße 1" in email.text and "Lindenstraße 1" in email.html, name
        assert "\n-- \n" in email.text, name
        if "injected" not in name:  # that one shows a name with markup, as text
            assert not re.search(
                r"</?(p|div|a|table|tr|td|th|ul|li|h\d|br|strong|body|footer)\b", email.text
            ), name


def test_bundle_emails_carry_the_reference_in_the_subject() -> None:
    for content in samples().values():
        reference = getattr(content, "bundle_reference", None)
        if content.kind in (EmailKind.BUNDLE_INQUIRY, EmailKind.BUNDLE_REMINDER, EmailKind.WITHDRAWAL_NOTICE):
            assert f"(Ref: {reference})" in RENDERER.render(content).subject


def test_umlauts_stay_intact_in_subject_html_and_text() -> None:
    therapist = Person(gender=Gender.FEMALE, first_name="Jülide", last_name="Größer-Öztürk")
    rendered = RENDERER.render(_inquiry(therapist, _patient(insurer="Techniker Krankenkasse Süd")))
    for body in (rendered.html, rendered.text):
        assert "Sehr geehrte Frau Größer-Öztürk," in body
        assert "Ängste / Angststörung" in body
        assert "Grüßen" in body
        assert "Süd" in body
    assert "&auml;" not in rendered.html and "&#" not in rendered.html.replace("&#34;", "")
    assert "Überblick" in rendered.html


def test_text_lines_are_wrapped_except_unbreakable_words() -> None:
    for content in samples().values():
        for line in RENDERER.render(content).text.splitlines():
            assert len(line) <= TEXT_WIDTH or " " not in line.strip(), line


# --------------------------------------------------------------------------- escaping


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def _markup_of(html: str) -> tuple[set[str], set[str]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags, parser.attributes


def test_injected_markup_is_shown_as_text() -> None:
    rendered = RENDERER.render(samples()["bundle_inquiry-injected"])
    assert "<script" not in rendered.html and "<img" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in rendered.html
    tags, attributes = _markup_of(rendered.html)
    assert "script" not in tags and "img" not in tags and "onerror" not in attributes
    # Plain text is not HTML: it shows the name exactly as stored.
    assert INJECTION.split("<img")[0] in rendered.text


_BASELINE = _markup_of(RENDERER.render(_inquiry(Person(gender=Gender.MALE, last_name="Muster"))).html)
_PLACE_BASELINE = _markup_of(RENDERER.render(samples()["patient_place_found"]).html)


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(min_size=1, max_size=60).filter(lambda text: text.strip() != ""),
    insurer=st.text(min_size=1, max_size=60).filter(lambda text: text.strip() != ""),
)
def test_no_record_text_ever_adds_a_tag_or_attribute(name: str, insurer: str) -> None:
    therapist = Person(gender=Gender.MALE, title=name, first_name=name, last_name=name)
    html = RENDERER.render(_inquiry(therapist, _patient(insurer=insurer))).html
    tags, attributes = _markup_of(html)
    assert tags <= _BASELINE[0] and attributes <= _BASELINE[1]


@settings(max_examples=40, deadline=None)
@given(website=st.text(max_size=80).filter(lambda text: text.strip() != ""))
def test_links_only_for_web_mail_and_phone_addresses(website: str) -> None:
    content = samples()["patient_place_found"]
    assert isinstance(content, PatientPlaceFound)
    therapist = content.therapist.model_copy(update={"website": website})
    html = RENDERER.render(content.model_copy(update={"therapist": therapist})).html
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert all(re.match(r"^(https?://|mailto:|tel:)", href) for href in hrefs)
    tags, attributes = _markup_of(html)
    assert tags <= _PLACE_BASELINE[0] and attributes <= _PLACE_BASELINE[1]


def test_safe_url() -> None:
    assert safe_url("https://praxis.example.org/a?b=1") == "https://praxis.example.org/a?b=1"
    assert safe_url("mailto:praxis@example.org") == "mailto:praxis@example.org"
    assert safe_url("javascript:alert(1)") is None
    assert safe_url('https://x.example.org/"onmouseover="alert(1)') is None


# --------------------------------------------------------------------------- data minimisation


def test_a_bundle_patient_cannot_carry_names_addresses_or_contact_data() -> None:
    for forbidden in ("first_name", "last_name", "street", "postcode", "email", "phone", "birth_date"):
        with pytest.raises(ValidationError):
            BundlePatient.model_validate({**_patient().model_dump(), forbidden: "x"})


def test_what_a_bundle_patient_tells_a_therapist_is_exactly_the_minimum() -> None:
    assert set(BundlePatient.model_fields) == {
        "reference",
        "age",
        "gender",
        "symptoms",
        "insurer",
        "insurance_type",
        "previous_therapy",
        "previous_therapy_year",
        "open_to_group_therapy",
        "group_only",
        "availability",
        "distance_band",
        "within_reach",  # only whether the distance is within the patient's own limit
    }


def test_inquiry_lists_each_patient_with_german_labels() -> None:
    patients = [
        _patient("B12-1", availability={Weekday.FRI: ["09:00-11:00"], Weekday.MON: ["08:00-10:00"]}),
        _patient("B12-2", gender=Gender.DIVERSE, group_only=True, open_to_group_therapy=True, age=None),
        _patient(
            "B12-3", previous_therapy=True, previous_therapy_year=2021, distance_band=DistanceBand.OVER_25
        ),
    ]
    text = RENDERER.render(_inquiry(Person(gender=Gender.MALE, last_name="Muster"), *patients)).text
    for expected in (
        "Person B12-1",
        "Person B12-2",
        "Person B12-3",
        f"Zeitlich verfügbar: Mo 08:00{EN_DASH}10:00; Fr 09:00{EN_DASH}11:00",
        "Geschlecht: divers",
        "Therapieform: nur Gruppentherapie",
        "Alter: keine Angabe",
        "Frühere Psychotherapie: ja, zuletzt 2021",
        "Entfernung zur Praxis: über 25 km",
        "Versicherung: gesetzlich versichert (AOK Bayern)",
        "3 Personen",
    ):
        assert expected in text, expected


def test_a_bundle_has_one_to_six_patients() -> None:
    with pytest.raises(ValidationError):
        _inquiry(Person(last_name="Muster"), *[_patient(f"B12-{i}") for i in range(1, 8)])


# --------------------------------------------------------------------------- small rules


@pytest.mark.parametrize(
    ("km", "band"),
    [
        (0.0, DistanceBand.UP_TO_5),
        (5.0, DistanceBand.UP_TO_5),
        (5.01, DistanceBand.UP_TO_10),
        (10.0, DistanceBand.UP_TO_10),
        (25.0, DistanceBand.UP_TO_25),
        (25.5, DistanceBand.OVER_25),
        (180.0, DistanceBand.OVER_25),
    ],
)
def test_distance_bands(km: float, band: DistanceBand) -> None:
    assert distance_band(km) is band


def test_availability_text() -> None:
    assert availability_text({}) == "keine Einschränkung angegeben"
    assert availability_text({Weekday.SUN: ["10:00-12:00"], Weekday.TUE: ["08:00-09:00", "17:00-18:00"]}) == (
        f"Di 08:00{EN_DASH}09:00, 17:00{EN_DASH}18:00; So 10:00{EN_DASH}12:00"
    )


def test_times_are_shown_on_the_german_clock() -> None:
    assert german_datetime(datetime(2026, 7, 1, 10, 0, tzinfo=UTC)) == "01.07.2026, 12:00 Uhr"
    assert german_datetime(datetime(2026, 12, 1, 10, 0, tzinfo=UTC)) == "01.12.2026, 11:00 Uhr"


def test_place_found_gives_the_therapist_contact_and_next_steps() -> None:
    content = PatientPlaceFound(
        patient=Person(gender=Gender.DIVERSE, first_name="Sascha", last_name="Brückner"),
        therapist=TherapistContact(
            gender=Gender.MALE, title="Dr.", first_name="Jörg", last_name="Müller", phone="030 1"
        ),
        search_reference="S-1",
    )
    text = RENDERER.render(content).text
    assert text.startswith("Guten Tag Sascha Brückner,")
    assert "Telefon: 030 1" in text
    assert "Gesundheitskarte" in text and "112" in text
    assert "Adresse" not in text  # no address known: no empty line for it


def test_the_sample_legal_notice_is_complete() -> None:
    text = EmailRenderer(SAMPLE_LEGAL).render(next(iter(samples().values()))).text
    for line in ("Vertreten durch:", "Registereintrag:", "Hinweise zum Datenschutz:"):
        assert line in text


def test_every_content_model_refuses_unknown_fields() -> None:
    for content in samples().values():
        with pytest.raises(ValidationError):
            type(content).model_validate({**content.model_dump(), "unexpected": 1})
        assert isinstance(content, EmailContent)


def test_a_bundle_sent_summary_becomes_an_inquiry_patient() -> None:
    """The shape of the contract models PatientSummary and TherapistContact (contracts/bundles.py), dumped."""
    summary = {
        "reference": "B31-2",
        "age": 44,
        "gender": "male",
        "symptoms": ["panic", "sleep"],
        "health_insurer": "BKK Süd",
        "insurance_type": "statutory",
        "previous_therapy": True,
        "open_to_group_therapy": False,
        "group_only": False,
        "availability": {"tue": ["08:00-10:00"]},
        "distance_band": "10-25 km",
    }
    patient = bundle_patient_from_summary(summary)
    assert (patient.insurer, patient.distance_text, patient.previous_therapy_text) == (
        "BKK Süd",
        "10 bis 25 km",
        "ja",
    )
    therapist = person_from_record(
        {
            "id": "x",
            "salutation": "Frau",
            "gender": "unspecified",
            "title": "Dr.",
            "first_name": "Ute",
            "last_name": "Öhl",
        }
    )
    inquiry = BundleInquiry(
        bundle_reference="B31", therapist=therapist, patients=[patient], sent_on=date(2026, 11, 23)
    )
    text = RENDERER.render(inquiry).text
    assert text.startswith("Sehr geehrte Frau Dr. Öhl,") and "Person B31-2" in text


# --------------------------------------------------------------------------- wording derived from the members


def _flat(text: str) -> str:
    """The text with its line wrapping undone, so a phrase is found wherever a line broke."""
    return " ".join(text.split())


def _reminder(*patients: BundlePatient, listed_in_directory: bool | None = None) -> BundleReminder:
    return BundleReminder(
        bundle_reference="B12",
        therapist=Person(gender=Gender.FEMALE, last_name="Muster"),
        patients=list(patients),
        first_sent_on=date(2026, 11, 23),
        expires_on=date(2026, 12, 7),
        listed_in_directory=listed_in_directory,
    )


def test_one_person_is_written_in_the_singular_everywhere() -> None:
    one = RENDERER.render(_inquiry(Person(last_name="Muster"), _patient(within_reach=True)))
    text = _flat(one.text)
    assert one.subject.startswith("Anfrage Therapieplatz: 1 Person sucht einen Platz")
    for expected in (
        "Die folgende Person sucht einen Therapieplatz und wohnt in erreichbarer Nähe Ihrer Praxis.",
        "Könnten Sie dieser Person ein Erstgespräch",
        "Die Person im Überblick",
        "schreiben Sie zur Referenz „ja“ oder „nein“",
        "Statt eines Anrufs erhalten Sie von uns eine schriftliche Anfrage",
    ):
        assert expected in text, expected
    for plural in ("Personen", "wohnen", "einer oder mehreren", "zu jeder Referenz", "gebündelte"):
        assert plural not in text, plural
    reminder = _flat(RENDERER.render(_reminder(_patient())).text)
    assert (
        "der folgenden Person" in reminder and "zur Referenz" in reminder and "für diese Person" in reminder
    )
    assert "Personen" not in reminder and "diese Menschen" not in reminder


def test_several_people_are_written_in_the_plural() -> None:
    two = RENDERER.render(
        _inquiry(
            Person(last_name="Muster"), _patient(within_reach=True), _patient("B12-2", within_reach=True)
        )
    )
    text = _flat(two.text)
    assert "Die folgenden 2 Personen suchen einen Therapieplatz und wohnen in erreichbarer Nähe" in text
    assert "einer oder mehreren dieser Personen" in text and "zu jeder Referenz" in text
    assert "Die Personen im Überblick" in text
    reminder = _flat(RENDERER.render(_reminder(_patient(), _patient("B12-2"))).text)
    assert "einer der folgenden 2 Personen" in reminder and "zu jeder Referenz" in reminder


@pytest.mark.parametrize(
    ("insurance", "statutory_claimed"),
    [
        ({}, True),
        ({"insurance_type": InsuranceType.PRIVATE}, False),
        ({"insurance_type": InsuranceType.SELF_PAY, "insurer": None}, False),
    ],
)
def test_the_intro_says_statutory_only_when_every_card_does(
    insurance: dict[str, object], statutory_claimed: bool
) -> None:
    members = [_patient("B12-1"), _patient("B12-2", **insurance)]
    rendered = RENDERER.render(_inquiry(Person(last_name="Muster"), *members))
    for body in (_flat(rendered.text), _flat(rendered.html)):
        assert ("mit gesetzlicher Krankenversicherung" in body) is statutory_claimed
        assert "wir unterstützen Menschen" in body
    assert "Versicherung: gesetzlich versichert" in rendered.text  # the first card says what it is


@pytest.mark.parametrize(
    ("reach", "nearby_claimed"),
    [
        ((True, True), True),
        ((True, False), False),  # one lives further away than they want to travel
        ((True, None), False),  # not known: nothing is claimed
        ((None, None), False),
    ],
)
def test_the_intro_says_nearby_only_when_every_card_is_within_the_patients_limit(
    reach: tuple[bool | None, bool | None], nearby_claimed: bool
) -> None:
    members = [_patient(f"B12-{i}", within_reach=value) for i, value in enumerate(reach, start=1)]
    rendered = RENDERER.render(_inquiry(Person(last_name="Muster"), *members))
    for body in (_flat(rendered.text), _flat(rendered.html)):
        assert ("in erreichbarer Nähe" in body) is nearby_claimed
        assert "suchen einen Therapieplatz" in body
    assert ("weiter, als die Person fahren möchte" in rendered.text) is (False in reach)


@pytest.mark.parametrize(
    ("listed", "source", "absent"),
    [
        (True, "öffentlichen Arztsuche-Verzeichnis 116117 der Kassenärztlichen Vereinigungen", "Anmeldung"),
        (False, "bei Ihrer Anmeldung selbst mitgeteilt", "116117"),
        (
            None,
            "Arztsuche-Verzeichnis 116117 der Kassenärztlichen Vereinigungen oder aus Ihrer eigenen",
            None,
        ),
    ],
)
def test_inquiry_and_reminder_name_the_data_source_and_how_to_object(
    listed: bool | None, source: str, absent: str | None
) -> None:
    inquiry = BundleInquiry(
        bundle_reference="B12",
        therapist=Person(last_name="Muster"),
        patients=[_patient()],
        sent_on=date(2026, 11, 23),
        listed_in_directory=listed,
    )
    for rendered in (
        RENDERER.render(inquiry),
        RENDERER.render(_reminder(_patient(), listed_in_directory=listed)),
    ):
        for body in (_flat(rendered.text), _flat(re.sub(r"<[^>]+>", " ", rendered.html))):
            assert "Woher wir Ihre Kontaktdaten haben" in body
            assert source in body
            if absent is not None:
                assert (
                    absent not in body.split("Woher wir Ihre Kontaktdaten haben")[1].split("Vielen Dank")[0]
                )
            assert "antworten Sie einfach mit „keine weiteren Anfragen“" in body
            assert "Art. 21 DSGVO" in body and LEGAL.email in body


def test_a_bundle_sent_summary_carries_whether_the_patient_is_within_reach() -> None:
    summary = {
        "reference": "B31-1",
        "gender": "female",
        "symptoms": ["panic"],
        "distance_band": "more than 25 km",
        "within_reach": False,
    }
    patient = bundle_patient_from_summary(summary)
    assert patient.within_reach is False
    assert patient.distance_text == "über 25 km (weiter, als die Person fahren möchte)"
    assert bundle_patient_from_summary({**summary, "within_reach": None}).distance_text == "über 25 km"
