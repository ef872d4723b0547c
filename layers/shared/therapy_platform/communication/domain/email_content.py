"""What each email says, as plain data: one model per kind of email, rendered into German HTML
and plain text by `therapy_platform.communication.rendering.renderer` (templates in `templates/email/`).

Data protection: a bundle inquiry carries, per patient, only what a therapist needs to decide
(`BundlePatient`: a reference, age, gender, symptoms, insurer, previous therapy, group
openness, availability, distance band). The model has no field for a name, an address, a
birth date or contact data, and refuses extra fields, so no caller can slip one in.

German forms of address (`salutation_for`), chosen where the domain is silent:
- male: "Sehr geehrter Herr Dr. Müller"; female: "Sehr geehrte Frau Prof. Dr. Schäfer";
- diverse: the gender-neutral "Guten Tag Dr. Alex Schmidt" (first and last name, no Herr/Frau);
- unspecified: the record's own salutation decides when it is "Herr" or "Frau" (directory
  imports carry it), otherwise the neutral form;
- of a title only the parts spoken in an address are used: "Prof." and "Dr." ("Dipl.-Psych.",
  "M.Sc.", "med.", "PD" are not said), so "Prof. Dr. med. habil." addresses as "Prof. Dr.".
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from annotated_types import Len
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from therapy_platform.communication.domain.emails import BundleReference, EmailKind
from therapy_platform.contracts.codes import german_labels
from therapy_platform.contracts.patients import InsuranceType
from therapy_platform.contracts.schedule import Weekday
from therapy_platform.contracts.symptoms import MAX_SYMPTOMS, MIN_SYMPTOMS, Symptom, symptom_label
from therapy_platform.contracts.therapy import Gender
from therapy_platform.platform.clock import PLATFORM_TIMEZONE

MIN_BUNDLE_SIZE: Final = 1  # staff may send a bundle of one; automatic rounds send 3-6
MAX_BUNDLE_SIZE: Final = 6

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
MemberReference = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{1,29}$")]


# --------------------------------------------------------------------------- forms of address

_SPOKEN_TITLES: Final = {"prof.": "Prof.", "prof": "Prof.", "professor": "Prof.", "professorin": "Prof."}


def spoken_title(title: str | None) -> str:
    """The part of an academic title used when addressing someone: "Prof." and "Dr." only."""
    if not title:
        return ""
    kept: list[str] = []
    for token in title.replace(",", " ").split():
        folded = token.casefold()
        if folded in _SPOKEN_TITLES:
            kept.append(_SPOKEN_TITLES[folded])
        elif folded == "dr" or folded.startswith("dr."):  # "Dr.", "Dr.med.", "Dr.-Ing."
            kept.append("Dr.")
    return " ".join(kept)


def _effective_gender(gender: Gender, salutation: str | None) -> Gender:
    if gender is not Gender.UNSPECIFIED or not salutation:
        return gender
    word = salutation.strip().casefold()
    if word in ("herr", "herrn"):
        return Gender.MALE
    if word == "frau":
        return Gender.FEMALE
    return Gender.UNSPECIFIED


def _join(*parts: str | None) -> str:
    return " ".join(part.strip() for part in parts if part and part.strip())


def salutation_for(
    gender: Gender,
    last_name: str,
    *,
    first_name: str | None = None,
    title: str | None = None,
    salutation_word: str | None = None,
) -> str:
    """The opening of a letter, without the comma: "Sehr geehrte Frau Dr. Müller"."""
    spoken = spoken_title(title)
    match _effective_gender(gender, salutation_word):
        case Gender.MALE:
            return _join("Sehr geehrter Herr", spoken, last_name)
        case Gender.FEMALE:
            return _join("Sehr geehrte Frau", spoken, last_name)
        case _:
            return _join("Guten Tag", spoken, first_name, last_name)


class Person(BaseModel):
    """Someone an email is addressed to or talks about, as far as the letter needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gender: Gender = Gender.UNSPECIFIED
    salutation: Text | None = Field(default=None, description='The record\'s salutation, e.g. "Frau"')
    title: Text | None = Field(default=None, description='e.g. "Dr.", "Prof. Dr.", "Dipl.-Psych."')
    first_name: Text | None = None
    last_name: Text

    @property
    def letter_salutation(self) -> str:
        return salutation_for(
            self.gender,
            self.last_name,
            first_name=self.first_name,
            title=self.title,
            salutation_word=self.salutation,
        )

    @property
    def full_name(self) -> str:
        """Name with the full title as written: "Dr. med. Anna Müller"."""
        return _join(self.title, self.first_name, self.last_name)


# --------------------------------------------------------------------------- German labels

# One source for these labels: the API's code catalogue (contracts/codes.py).
GENDER_LABELS: Final = german_labels("Gender")
INSURANCE_LABELS: Final = german_labels("InsuranceType")
KIND_LABELS: Final = german_labels("EmailKind")
# German weekday abbreviations are the first two letters of the day's name (Mo, Di, ... So).
WEEKDAY_LABELS: Final = {code: label[:2] for code, label in german_labels("Weekday").items()}


class DistanceBand(StrEnum):
    """How far a patient lives from the practice, in bands (never the exact distance). The values
    are the bands `bundle.sent` carries (contract `PatientSummary.distance_band`)."""

    UP_TO_5 = "up to 5 km"
    UP_TO_10 = "5-10 km"
    UP_TO_25 = "10-25 km"
    OVER_25 = "more than 25 km"


DISTANCE_BAND_LABELS: Final = {
    DistanceBand.UP_TO_5: "bis 5 km",
    DistanceBand.UP_TO_10: "5 bis 10 km",
    DistanceBand.UP_TO_25: "10 bis 25 km",
    DistanceBand.OVER_25: "über 25 km",
}
_BAND_LIMITS: Final = (
    (5.0, DistanceBand.UP_TO_5),
    (10.0, DistanceBand.UP_TO_10),
    (25.0, DistanceBand.UP_TO_25),
)


def distance_band(km: float) -> DistanceBand:
    if km < 0:
        raise ValueError("a distance is not negative")
    for limit, band in _BAND_LIMITS:
        if km <= limit:
            return band
    return DistanceBand.OVER_25


EN_DASH: Final = "\u2013"


def availability_text(availability: Mapping[Weekday, Sequence[str]]) -> str:
    """ "Mo 08:00-12:00; Mi 14:00-18:00, 19:00-20:00" with en dashes, days in week order."""
    days = [
        f"{WEEKDAY_LABELS[day]} {', '.join(window.replace('-', EN_DASH) for window in availability[day])}"
        for day in Weekday
        if availability.get(day)
    ]
    return "; ".join(days) if days else "keine Einschränkung angegeben"


def german_date(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def german_datetime(moment: datetime) -> str:
    """Wall-clock time in Germany ("23.11.2026, 10:30 Uhr"); a naive time is taken as it is."""
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(ZoneInfo(PLATFORM_TIMEZONE))
        except ZoneInfoNotFoundError:  # a runtime without tz data: say which clock it is
            return moment.astimezone(UTC).strftime("%d.%m.%Y, %H:%M Uhr (UTC)")
    return moment.strftime("%d.%m.%Y, %H:%M Uhr")


# --------------------------------------------------------------------------- email contents


class EmailContent(BaseModel):
    """Base of every email's data. `kind` names the template (`templates/email/<kind>.j2`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[EmailKind]


class BundlePatient(BaseModel):
    """One patient as a bundle inquiry presents them: data-minimised (see the module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: MemberReference = Field(description='e.g. "B1042-3" (bundle reference and position)')
    age: int | None = Field(default=None, ge=0, le=130)
    gender: Gender = Gender.UNSPECIFIED
    symptoms: Annotated[list[Symptom], Len(MIN_SYMPTOMS, MAX_SYMPTOMS)]
    insurer: Text | None = None
    insurance_type: InsuranceType = InsuranceType.STATUTORY
    previous_therapy: bool = False
    previous_therapy_year: int | None = Field(default=None, ge=1900, le=2200)
    open_to_group_therapy: bool = False
    group_only: bool = False
    availability: dict[Weekday, list[str]] = Field(default_factory=dict)
    distance_band: DistanceBand
    within_reach: bool | None = Field(
        default=None, description="Within the patient's own distance limit (None: not known)"
    )

    @property
    def statutory(self) -> bool:
        return self.insurance_type is InsuranceType.STATUTORY

    @property
    def age_text(self) -> str:
        return f"{self.age} Jahre" if self.age is not None else "keine Angabe"

    @property
    def gender_text(self) -> str:
        return GENDER_LABELS[self.gender]

    @property
    def symptom_labels(self) -> list[str]:
        return [symptom_label(symptom) for symptom in self.symptoms]

    @property
    def insurance_text(self) -> str:
        kind = INSURANCE_LABELS[self.insurance_type]
        return f"{kind} ({self.insurer})" if self.insurer else kind

    @property
    def previous_therapy_text(self) -> str:
        if not self.previous_therapy:
            return "nein"
        return f"ja, zuletzt {self.previous_therapy_year}" if self.previous_therapy_year else "ja"

    @property
    def group_text(self) -> str:
        if self.group_only:
            return "nur Gruppentherapie"
        return "Einzel- oder Gruppentherapie" if self.open_to_group_therapy else "nur Einzeltherapie"

    @property
    def availability_text(self) -> str:
        return availability_text(self.availability)

    @property
    def distance_text(self) -> str:
        band = DISTANCE_BAND_LABELS[self.distance_band]
        return f"{band} (weiter, als die Person fahren möchte)" if self.within_reach is False else band


def member_reference(bundle_ref: str, position: int) -> str:
    """The reference of the patient at `position` (1..6) in a bundle: "B1042-3"."""
    if not 1 <= position <= MAX_BUNDLE_SIZE:
        raise ValueError(f"a bundle position is 1 to {MAX_BUNDLE_SIZE}")
    return f"{bundle_ref}-{position}"


def bundle_patient_from_summary(summary: Mapping[str, Any]) -> BundlePatient:
    """A bundle member's patient summary as `bundle.sent` carries it (contracts/bundles.py
    `PatientSummary`, dumped to a mapping) as the inquiry presents it. Anything beyond the
    minimum the summary might carry is not copied."""
    return BundlePatient(
        reference=summary["reference"],
        age=summary.get("age"),
        gender=summary.get("gender") or Gender.UNSPECIFIED,
        symptoms=summary["symptoms"],
        insurer=summary.get("health_insurer"),
        insurance_type=summary.get("insurance_type") or InsuranceType.STATUTORY,
        previous_therapy=bool(summary.get("previous_therapy")),
        previous_therapy_year=summary.get("previous_therapy_year"),
        open_to_group_therapy=bool(summary.get("open_to_group_therapy")),
        group_only=bool(summary.get("group_only")),
        availability=summary.get("availability") or {},
        distance_band=summary["distance_band"],
        within_reach=summary.get("within_reach"),
    )


def person_from_record(record: Mapping[str, Any]) -> Person:
    """The addressee fields of a therapist or patient record (or `bundle.sent`'s therapist)."""
    return Person(
        gender=record.get("gender") or Gender.UNSPECIFIED,
        salutation=record.get("salutation"),
        title=record.get("title"),
        first_name=record.get("first_name"),
        last_name=record["last_name"],
    )


Patients = Annotated[list[BundlePatient], Len(MIN_BUNDLE_SIZE, MAX_BUNDLE_SIZE)]


class _TherapistInquiry(EmailContent):
    """What the inquiry and its reminder share: the patients, and what the wording derives from
    them (one person or several; what the introduction may claim for all of them), and where
    the therapist's contact data came from (GDPR Art. 14: said in every inquiry, with how to
    object to further inquiries)."""

    bundle_reference: BundleReference
    therapist: Person
    patients: Patients
    listed_in_directory: bool | None = Field(
        default=None,
        description="Contact data from the public 116117 directory (True), the therapist's own "
        "registration (False), or not known (None: both sources are named)",
    )

    @property
    def single(self) -> bool:
        return len(self.patients) == 1

    @property
    def all_statutory(self) -> bool:
        """The introduction says "gesetzlich versichert" only when every card says so."""
        return all(patient.statutory for patient in self.patients)

    @property
    def all_within_reach(self) -> bool:
        """The introduction says "in erreichbarer Nähe" only when every card is within the
        patient's own distance limit (known to be; an unknown limit claims nothing)."""
        return all(patient.within_reach is True for patient in self.patients)


class BundleInquiry(_TherapistInquiry):
    """The one inquiry a therapist gets for a bundle (subject carries "Ref: B<number>")."""

    kind: ClassVar[EmailKind] = EmailKind.BUNDLE_INQUIRY

    sent_on: date
    reminder_after_days: int = Field(default=7, ge=1, le=60)
    cooling_days: int = Field(default=28, ge=0, le=365)


class BundleReminder(_TherapistInquiry):
    """The one reminder after `reminder_after_days` without an answer; lists the patients again."""

    kind: ClassVar[EmailKind] = EmailKind.BUNDLE_REMINDER

    first_sent_on: date
    expires_on: date


class WithdrawalNotice(EmailContent):
    """Patients of an open bundle who have been placed elsewhere meanwhile."""

    kind: ClassVar[EmailKind] = EmailKind.WITHDRAWAL_NOTICE

    bundle_reference: BundleReference
    therapist: Person
    withdrawn_references: Annotated[list[MemberReference], Len(1, MAX_BUNDLE_SIZE)]
    inquiry_sent_on: date
    others_still_open: bool = Field(
        default=True, description="Whether other patients of the bundle still wait for an answer"
    )


class PatientSearchStarted(EmailContent):
    kind: ClassVar[EmailKind] = EmailKind.PATIENT_SEARCH_STARTED

    patient: Person
    search_reference: Text
    started_on: date
    max_travel_km: int = Field(ge=1, le=500)


class PatientRegistrationConfirmed(EmailContent):
    """The confirmation of a patient's own registration on the website (patient.self_registered)."""

    kind: ClassVar[EmailKind] = EmailKind.PATIENT_REGISTRATION_CONFIRMED

    patient: Person
    registered_on: date
    max_travel_km: int = Field(ge=1, le=500)


class TherapistContact(Person):
    """A therapist as a placed patient needs them: how to get in touch."""

    street: Text | None = None
    postcode: Annotated[str, StringConstraints(pattern=r"^[0-9]{5}$")] | None = None
    city: Text | None = None
    phone: Text | None = None
    email: Text | None = None
    website: Text | None = None
    phone_windows: dict[Weekday, list[str]] = Field(default_factory=dict)

    @property
    def phone_windows_text(self) -> str | None:
        return availability_text(self.phone_windows) if self.phone_windows else None

    @property
    def address_lines(self) -> list[str]:
        return [line for line in (self.street, _join(self.postcode, self.city)) if line]


class PatientPlaceFound(EmailContent):
    kind: ClassVar[EmailKind] = EmailKind.PATIENT_PLACE_FOUND

    patient: Person
    therapist: TherapistContact
    search_reference: Text
    contact_within_days: int = Field(default=7, ge=1, le=60)


class ConflictAlert(EmailContent):
    """A therapist accepted a patient who had already been placed through another bundle."""

    kind: ClassVar[EmailKind] = EmailKind.STAFF_CONFLICT_ALERT

    bundle_reference: BundleReference
    therapist_name: Text
    patient_reference: MemberReference
    search_id: uuid.UUID
    placed_via_bundle_reference: BundleReference | None = None
    accepted_at: datetime
    staff_url: Text | None = None


class UnknownLocationAlert(EmailContent):
    """A patient or therapist could not be located: never passes a distance check until fixed."""

    kind: ClassVar[EmailKind] = EmailKind.STAFF_UNKNOWN_LOCATION_ALERT

    entity_type: Annotated[str, StringConstraints(pattern=r"^(patient|therapist)$")]
    entity_id: uuid.UUID
    postcode: Text | None = None
    city: Text | None = None
    detected_at: datetime
    staff_url: Text | None = None

    @property
    def entity_label(self) -> str:
        return "Patient*in" if self.entity_type == "patient" else "Therapeut*in"


class SendFailedAlert(EmailContent):
    """An email could not be delivered after every attempt (or was refused for good)."""

    kind: ClassVar[EmailKind] = EmailKind.STAFF_SEND_FAILED_ALERT

    email_id: uuid.UUID
    email_kind: EmailKind
    recipient: Text
    subject: Text
    attempts: int = Field(ge=0)
    last_error: LongText
    bundle_reference: BundleReference | None = None
    failed_at: datetime
    staff_url: Text | None = None


class AdHocMessage(EmailContent):
    """An email staff write to one patient or therapist: their subject and Markdown body
    (rendered to safe HTML by `markdown_html`), in the shared layout with the legal footer.
    `salutation`: the German form of address before and the team's closing after the body;
    `crisis_notice`: patient emails carry the crisis notice like every other patient email."""

    kind: ClassVar[EmailKind] = EmailKind.AD_HOC

    recipient: Person
    subject: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\r\n]*$")
    ]
    body_markdown: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    salutation: bool = True
    crisis_notice: bool = False


class LegalNotice(BaseModel):
    """The provider identification every email ends with (Impressum, § 5 DDG), from settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organisation: Text
    street: Text
    postcode_city: Text
    email: Text
    phone: Text | None = None
    website: Text | None = None
    represented_by: Text | None = Field(default=None, description="Vertretungsberechtigte Person(en)")
    register_entry: Text | None = Field(default=None, description='e.g. "Amtsgericht Berlin, VR 12345"')
    vat_id: Text | None = None
    privacy_url: Text | None = None
