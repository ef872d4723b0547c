"""Render every email template with sample data, so people can look at them in a browser.

    cd infra && ../.venv/bin/python -m tools.render_emails OUTDIR

Writes OUTDIR/<name>.html, OUTDIR/<name>.txt and OUTDIR/index.html (links to all of them, with
each subject). The samples cover every form of address (male, female, diverse, unspecified;
with and without titles), every email kind, and one record with injected markup that must
show up as text.
"""

from __future__ import annotations

import argparse
import html
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

from therapy_platform.communication.domain.email_content import (
    AdHocMessage,
    BundleInquiry,
    BundlePatient,
    BundleReminder,
    ConflictAlert,
    DistanceBand,
    EmailContent,
    LegalNotice,
    PatientPlaceFound,
    PatientRegistrationConfirmed,
    PatientSearchStarted,
    Person,
    SendFailedAlert,
    TherapistContact,
    UnknownLocationAlert,
    WithdrawalNotice,
    member_reference,
)
from therapy_platform.communication.domain.emails import EmailKind
from therapy_platform.communication.rendering.renderer import EmailRenderer, RenderedEmail
from therapy_platform.contracts.patients import InsuranceType
from therapy_platform.contracts.schedule import Weekday
from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.contracts.therapy import Gender

SAMPLE_LEGAL: Final = LegalNotice(
    organisation="Therapieplatz-Vermittlung Beispiel e. V.",
    street="Müllerstraße 12",
    postcode_city="10115 Berlin",
    email="kontakt@vermittlung.example.org",
    phone="030 1234567",
    website="https://vermittlung.example.org",
    represented_by="Dr. Jürgen Weiß (Vorstand)",
    register_entry="Amtsgericht Berlin-Charlottenburg, VR 12345 B",
    privacy_url="https://vermittlung.example.org/datenschutz",
)

INJECTION: Final = '<script>alert("x")</script><img src=x onerror=alert(1)>'

_REF = "B1042"


def _patients(bundle_ref: str) -> list[BundlePatient]:
    return [
        BundlePatient(
            reference=member_reference(bundle_ref, 1),
            age=34,
            gender=Gender.FEMALE,
            symptoms=[Symptom.DEPRESSION, Symptom.SLEEP, Symptom.WORKPLACE],
            insurer="AOK Nordost",
            previous_therapy=True,
            previous_therapy_year=2019,
            open_to_group_therapy=True,
            availability={Weekday.MON: ["08:00-12:00"], Weekday.WED: ["14:00-18:00", "19:00-20:00"]},
            distance_band=DistanceBand.UP_TO_5,
        ),
        BundlePatient(
            reference=member_reference(bundle_ref, 2),
            age=52,
            gender=Gender.MALE,
            symptoms=[Symptom.ANXIETY, Symptom.PANIC],
            insurer="Techniker Krankenkasse",
            distance_band=DistanceBand.UP_TO_10,
        ),
        BundlePatient(
            reference=member_reference(bundle_ref, 3),
            age=27,
            gender=Gender.DIVERSE,
            symptoms=[Symptom.SOCIAL_ANXIETY, Symptom.SELF_ESTEEM, Symptom.GENDER_IDENTITY],
            insurer="BARMER",
            group_only=True,
            open_to_group_therapy=True,
            availability={Weekday.TUE: ["17:00-21:00"], Weekday.SAT: ["09:00-13:00"]},
            distance_band=DistanceBand.UP_TO_25,
        ),
        BundlePatient(
            reference=member_reference(bundle_ref, 4),
            age=None,
            gender=Gender.UNSPECIFIED,
            symptoms=[Symptom.TRAUMA],
            insurer=None,
            insurance_type=InsuranceType.PRIVATE,
            previous_therapy=True,
            distance_band=DistanceBand.OVER_25,
        ),
    ]


THERAPISTS: Final = {
    "female-prof": Person(
        gender=Gender.FEMALE, title="Prof. Dr. med.", first_name="Anna", last_name="Schäfer"
    ),
    "male-dr": Person(gender=Gender.MALE, title="Dr. rer. nat.", first_name="Jörg", last_name="Müller"),
    "diverse": Person(gender=Gender.DIVERSE, title="Dipl.-Psych.", first_name="Alex", last_name="Öztürk"),
    "unspecified-frau": Person(
        gender=Gender.UNSPECIFIED, salutation="Frau", first_name="Bärbel", last_name="Groß"
    ),
    "unspecified": Person(gender=Gender.UNSPECIFIED, first_name="Kim", last_name="Weiß"),
    "injected": Person(gender=Gender.FEMALE, title="Dr.", first_name="Eva", last_name=f"Lang {INJECTION}"),
}

_SENT_ON: Final = date(2026, 11, 16)
_NOW: Final = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def samples() -> dict[str, EmailContent]:
    """Every template at least once; the bundle inquiry once per form of address."""
    items: dict[str, EmailContent] = {}
    for name, therapist in THERAPISTS.items():
        items[f"bundle_inquiry-{name}"] = BundleInquiry(
            bundle_reference=_REF, therapist=therapist, patients=_patients(_REF), sent_on=_SENT_ON
        )
    items["bundle_inquiry-single"] = BundleInquiry(
        bundle_reference="B7", therapist=THERAPISTS["male-dr"], patients=_patients("B7")[:1], sent_on=_SENT_ON
    )
    items["bundle_reminder"] = BundleReminder(
        bundle_reference=_REF,
        therapist=THERAPISTS["female-prof"],
        patients=_patients(_REF),
        first_sent_on=_SENT_ON,
        expires_on=date(2026, 11, 30),
    )
    items["withdrawal_notice"] = WithdrawalNotice(
        bundle_reference=_REF,
        therapist=THERAPISTS["male-dr"],
        withdrawn_references=[member_reference(_REF, 2)],
        inquiry_sent_on=_SENT_ON,
    )
    items["withdrawal_notice-several"] = WithdrawalNotice(
        bundle_reference=_REF,
        therapist=THERAPISTS["diverse"],
        withdrawn_references=[member_reference(_REF, 1), member_reference(_REF, 3)],
        inquiry_sent_on=_SENT_ON,
        others_still_open=False,
    )
    items["patient_search_started"] = PatientSearchStarted(
        patient=Person(gender=Gender.FEMALE, first_name="Jülide", last_name="Köhler"),
        search_reference="S-2026-00042",
        started_on=date(2026, 11, 2),
        max_travel_km=25,
    )
    items["patient_search_started-diverse"] = PatientSearchStarted(
        patient=Person(gender=Gender.DIVERSE, first_name="Sascha", last_name="Brückner"),
        search_reference="S-2026-00043",
        started_on=date(2026, 11, 2),
        max_travel_km=15,
    )
    items["patient_registration_confirmed"] = PatientRegistrationConfirmed(
        patient=Person(gender=Gender.FEMALE, first_name="Jülide", last_name="Köhler"),
        registered_on=date(2026, 12, 6),
        max_travel_km=25,
    )
    items["patient_place_found"] = PatientPlaceFound(
        patient=Person(gender=Gender.MALE, first_name="Björn", last_name="Jäger"),
        therapist=TherapistContact(
            gender=Gender.FEMALE,
            title="Dr. phil.",
            first_name="Anna",
            last_name="Schäfer",
            street="Schönhauser Allee 10",
            postcode="10435",
            city="Berlin",
            phone="030 9876543",
            email="praxis@schaefer.example.org",
            website="https://praxis-schaefer.example.org",
            phone_windows={Weekday.MON: ["08:00-09:00"], Weekday.THU: ["12:30-13:30"]},
        ),
        search_reference="S-2026-00042",
    )
    items["staff_conflict_alert"] = ConflictAlert(
        bundle_reference=_REF,
        therapist_name="Dr. Jörg Müller",
        patient_reference=member_reference(_REF, 2),
        search_id=uuid.UUID("6f1c1f0e-9a0b-4c55-8d1e-0d7c2c8b1a42"),
        placed_via_bundle_reference="B1038",
        accepted_at=_NOW,
        staff_url="https://staff.vermittlung.example.org/bundles/B1042",
    )
    items["staff_unknown_location_alert"] = UnknownLocationAlert(
        entity_type="therapist",
        entity_id=uuid.UUID("0b7e4b4e-2f55-4a8e-9a57-5f0d7f1e3c11"),
        postcode="99999",
        city="Großröhrsdorf",
        detected_at=_NOW,
    )
    items["staff_send_failed_alert"] = SendFailedAlert(
        email_id=uuid.UUID("3d0f8a2c-6a4e-4f0b-b3c7-1a2b3c4d5e6f"),
        email_kind=EmailKind.BUNDLE_INQUIRY,
        recipient="praxis@müller.example.org",
        subject="Anfrage Therapieplatz: 4 Personen suchen einen Platz (Ref: B1042)",
        attempts=8,
        last_error="550 5.1.1 <praxis@müller.example.org>: Recipient address rejected: User unknown",
        bundle_reference=_REF,
        failed_at=_NOW,
    )
    items["ad_hoc"] = AdHocMessage(
        recipient=Person(gender=Gender.FEMALE, first_name="Jülide", last_name="Köhler"),
        subject="Rückfrage zu Ihrer Suche (Suchnummer S-2026-00042)",
        body_markdown=AD_HOC_BODY,
        crisis_notice=True,
    )
    items["ad_hoc-injected"] = AdHocMessage(
        recipient=THERAPISTS["male-dr"],
        subject='Nachricht <script>alert("x")</script>',
        body_markdown=(
            f"Bitte beachten: {INJECTION}\n\n[Klick](javascript:alert(1)) <a href=x onclick=alert(1)>a</a>"
        ),
    )
    return items


AD_HOC_BODY: Final = """wir haben eine **Rückfrage** zu Ihren Angaben:

1. Sind Sie auch *vormittags* erreichbar?
2. Dürfen wir Praxen in Großröhrsdorf anfragen?

Antworten Sie einfach auf diese E-Mail oder rufen Sie uns an: [030 1234567](tel:+49301234567).
Mehr dazu: <https://vermittlung.example.org/faq>"""


def render_all(renderer: EmailRenderer) -> dict[str, RenderedEmail]:
    return {name: renderer.render(content) for name, content in samples().items()}


def write(outdir: Path, rendered: dict[str, RenderedEmail]) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, email in rendered.items():
        for suffix, body in ((".html", email.html), (".txt", email.text)):
            path = outdir / f"{name}{suffix}"
            path.write_text(body, encoding="utf-8")
            written.append(path)
    rows = "\n".join(
        f'<li><a href="{name}.html">{name}</a> (<a href="{name}.txt">Text</a>): '
        f"{html.escape(email.subject)}</li>"
        for name, email in rendered.items()
    )
    index = outdir / "index.html"
    index.write_text(
        '<!DOCTYPE html>\n<html lang="de"><head><meta charset="utf-8"><title>E-Mail-Vorlagen</title></head>'
        f"<body><h1>E-Mail-Vorlagen</h1><ul>\n{rows}\n</ul></body></html>\n",
        encoding="utf-8",
    )
    return [*written, index]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("outdir", type=Path, help="folder for the rendered .html/.txt files")
    args = parser.parse_args(argv)
    written = write(args.outdir, render_all(EmailRenderer(SAMPLE_LEGAL)))
    print(f"wrote {len(written)} files to {args.outdir} (open {args.outdir / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
