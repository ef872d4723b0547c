"""Patient: the person waiting for a therapy place, and every rule about the patient record.

Models:
- `PatientDraft`: what staff send to register a patient (POST); every field validated.
- `PatientReplacement`: a full update (PUT): the draft plus an optional new status.
- `PatientPatch`: a partial update (PATCH): only the fields sent change; `null` clears an
  optional field (fields with a default go back to it); `null` on a required field is refused.
- `Patient`: the stored record as the API returns it and as `patient.created|updated` carry it.
- `PatientDeleted`: the erasure confirmation and the `patient.deleted` payload (id + time only).
- `PatientQuery`: list filters, sort and page.

Rules chosen where the domain is silent (documented here, tested in tests/unit):
- Age: patients are adults (the therapist pool holds therapists who treat adults), so a known
  birth date must give an age of 18 to 120 years today. The birth date itself is optional
  (matching treats a missing one as failing any therapist age range).
- `needs_shared_language`: `null` (the default) derives it: a patient who does not list German
  needs a therapist sharing one of their languages. `true`/`false` override the derivation
  (e.g. a German speaker who wants therapy in Turkish). `shared_language_required` in the
  output is the effective value the matching service uses.
- `group_only` implies `open_to_group_therapy`: sending `group_only: true` without the other
  field sets it; sending it explicitly `false` at the same time is refused.
- `last_therapy_session` only with `previous_therapy: true`, never in the future, never
  before the birth date. A PATCH setting `previous_therapy: false` clears the date.
- Availability: `{"mon": ["08:00-12:00", ...], ...}`, the weekly windows of
  `domain/schedule.py` (end may be `24:00`, no overlaps within a day, touching is fine; stored
  sorted, empty days dropped), at most 12 windows a day. An empty availability means "not
  restricted".
- Therapy procedures default to all four (the patient takes any); at least one when sent.
- Insurance: `health_insurer` is the insurer's name (2-100 characters, letters, digits, spaces
  and `. - & / + ( ) ' ,`, at least two letters); `insurance_type` (statutory / private /
  self_pay) is what statistics keep after an erasure.
- Erased patients (GDPR erasure) keep only what statistics need (see `STATISTICS_FIELDS`); any
  access to them answers 410 Gone (`PatientErasedError`), so staff can tell "erased on request"
  from a mistyped id (404).
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, TypeVar

from annotated_types import Len
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)

from therapy_platform.contracts.languages import GERMAN, LanguageCode
from therapy_platform.contracts.patients import PatientSnapshot
from therapy_platform.contracts.schedule import DayWindows, Weekday, in_week_order
from therapy_platform.contracts.symptoms import MAX_SYMPTOMS, MIN_SYMPTOMS, Symptom
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.platform.errors import GoneError
from therapy_platform.platform.geography.locations import Location, TravelMode
from therapy_platform.platform.paging import MAX_PAGE
from therapy_platform.platform.problems import Location as FieldLocation
from therapy_platform.platform.validation import FieldRuleError, FieldValidationError, validate_as

PRODUCER = "patient-service"

MIN_AGE_YEARS: Final = 18
MAX_AGE_YEARS: Final = 120
DEFAULT_MAX_TRAVEL_KM: Final = 25
MAX_TRAVEL_KM: Final = 200
MIN_TRAVEL_MINUTES: Final = 5
MAX_TRAVEL_MINUTES: Final = 240  # four hours: beyond that a travel-time limit means nothing
MAX_WINDOWS_PER_DAY: Final = 12
MAX_EXCLUSIONS: Final = 500
MAX_LANGUAGES: Final = 10


def today() -> date:
    return datetime.now(UTC).date()


def age_on(birth_date: date, day: date) -> int:
    """Completed years on `day` (someone born on 29 February has a birthday on 1 March)."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


# --- field types -------------------------------------------------------------------------------


def _printable(value: str) -> str:
    # PostgreSQL cannot store NUL, and control characters in a name are always a mistake.
    if any(ord(char) < 32 or 127 <= ord(char) < 160 for char in value):
        raise FieldRuleError("invalid_text", "enthält Steuerzeichen")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise FieldRuleError("invalid_text", "enthält Zeichen, die kein gültiger Text sind") from error
    return value


def _printable_multiline(value: str) -> str:
    _printable(value.replace("\n", " ").replace("\r", " ").replace("\t", " "))
    return value


def _has_letter(value: str) -> str:
    if not any(char.isalpha() for char in value):
        raise FieldRuleError("letter_missing", "muss einen Buchstaben enthalten")
    return value


def _phone_digits(value: str) -> str:
    if sum(char.isdigit() for char in value) < 6:
        raise FieldRuleError("too_few_digits", "eine Telefonnummer hat mindestens 6 Ziffern")
    return value


_INSURER_PUNCTUATION = frozenset(" .-&/+()',")


def _insurer_name(value: str) -> str:
    value = " ".join(value.split())
    if any(not (char.isalnum() or char in _INSURER_PUNCTUATION) for char in value):
        raise FieldRuleError(
            "invalid_characters", "nur Buchstaben, Ziffern, Leerzeichen und . - & / + ( ) ' , erlaubt"
        )
    if sum(char.isalpha() for char in value) < 2:
        raise FieldRuleError("letter_missing", "muss mindestens zwei Buchstaben enthalten")
    return value


def _plausible_birth_date(value: date) -> date:
    current = today()
    if value > current:
        raise FieldRuleError("in_future", "Geburtsdatum liegt in der Zukunft")
    age = age_on(value, current)
    if age > MAX_AGE_YEARS:
        raise FieldRuleError("too_far_in_past", f"Geburtsdatum liegt mehr als {MAX_AGE_YEARS} Jahre zurück")
    if age < MIN_AGE_YEARS:
        raise FieldRuleError(
            "too_young", f"mindestens {MIN_AGE_YEARS} Jahre alt (nur Therapieplätze für Erwachsene)"
        )
    return value


def _not_in_future(value: date) -> date:
    if value > today():
        raise FieldRuleError("in_future", "Datum liegt in der Zukunft")
    if value.year < today().year - MAX_AGE_YEARS:
        raise FieldRuleError("too_far_in_past", f"Datum liegt mehr als {MAX_AGE_YEARS} Jahre zurück")
    return value


def _unique(values: list[Hashable]) -> list[Hashable]:
    seen: set[Hashable] = set()
    for value in values:
        if value in seen:
            raise FieldRuleError("duplicate", "ein Eintrag ist doppelt aufgeführt")
        seen.add(value)
    return values


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_printable),
    AfterValidator(_has_letter),
]
Salutation = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=30, pattern=r"^[^\d@]+$"),
    AfterValidator(_printable),
]
Street = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=200),
    AfterValidator(_printable),
    AfterValidator(_has_letter),
]
Postcode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{5}$")]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(_printable),
]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()/\-]{6,30}$"),
    AfterValidator(_phone_digits),
]
HealthInsurer = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=100),
    AfterValidator(_printable),
    AfterValidator(_insurer_name),
]
Notes = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_printable_multiline)]
BirthDate = Annotated[date, AfterValidator(_plausible_birth_date)]
PastDate = Annotated[date, AfterValidator(_not_in_future)]
Symptoms = Annotated[list[Symptom], Len(MIN_SYMPTOMS, MAX_SYMPTOMS), AfterValidator(_unique)]
Languages = Annotated[list[LanguageCode], Len(1, MAX_LANGUAGES), AfterValidator(_unique)]
TravelKm = Annotated[int, Field(ge=1, le=MAX_TRAVEL_KM)]
TravelMinutes = Annotated[int, Field(ge=MIN_TRAVEL_MINUTES, le=MAX_TRAVEL_MINUTES)]
Exclusions = Annotated[list[uuid.UUID], Len(0, MAX_EXCLUSIONS), AfterValidator(_unique)]


class TherapistGenderPreference(StrEnum):
    MALE = "male"
    FEMALE = "female"
    DIVERSE = "diverse"
    ANY = "any"


TherapyProcedures = Annotated[list[TherapyProcedure], Len(1, len(TherapyProcedure)), AfterValidator(_unique)]


class InsuranceType(StrEnum):
    STATUTORY = "statutory"  # gesetzlich versichert
    PRIVATE = "private"
    SELF_PAY = "self_pay"


class PatientStatus(StrEnum):
    OPEN = "open"
    SEARCHING = "searching"
    IN_THERAPY = "in_therapy"
    THERAPY_FINISHED = "therapy_finished"
    SEARCH_CANCELLED = "search_cancelled"
    THERAPY_CANCELLED = "therapy_cancelled"


# --- weekly availability -----------------------------------------------------------------------

# The window rules are the shared ones (domain/schedule.py). Patients also get a cap: more
# than 12 windows a day is a data-entry slip, not a week anyone lives.
AvailabilityDay = Annotated[DayWindows, Len(0, MAX_WINDOWS_PER_DAY)]
Availability = Annotated[dict[Weekday, AvailabilityDay], AfterValidator(in_week_order)]


# --- input models ------------------------------------------------------------------------------


class PatientDraft(BaseModel):
    """What staff send to register a patient. Required: first and last name, postcode and
    1-6 symptoms; everything else has a documented default."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    salutation: Salutation | None = Field(default=None, description="e.g. Frau, Herr")
    gender: Gender = Gender.UNSPECIFIED
    first_name: Name
    last_name: Name
    birth_date: BirthDate | None = Field(default=None, description="Adults only: age 18-120")
    street: Street | None = Field(default=None, description="Street and house number")
    postcode: Postcode = Field(description="German postcode (PLZ), 5 digits, leading zeros kept")
    city: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    health_insurer: HealthInsurer | None = Field(default=None, description="Name of the health insurer")
    insurance_type: InsuranceType = InsuranceType.STATUTORY
    symptoms: Symptoms = Field(description="1-6 codes from the fixed symptom list (domain/symptoms.py)")
    previous_therapy: bool = False
    last_therapy_session: PastDate | None = Field(
        default=None, description="Date of the last session; only with previous_therapy"
    )
    therapy_procedures: TherapyProcedures = Field(
        default_factory=lambda: list(TherapyProcedure), description="Wanted procedures; default: any"
    )
    preferred_therapist_gender: TherapistGenderPreference = TherapistGenderPreference.ANY
    open_to_group_therapy: bool = False
    group_only: bool = Field(default=False, description="Only group therapy (implies open_to_group_therapy)")
    languages: Languages = Field(default_factory=lambda: [GERMAN], description="ISO 639-1 codes")
    needs_shared_language: bool | None = Field(
        default=None, description="null: derived (true when German is not among the languages)"
    )
    max_travel_km: TravelKm = DEFAULT_MAX_TRAVEL_KM
    travel_mode: TravelMode = TravelMode.TRANSIT
    max_travel_minutes: TravelMinutes | None = Field(
        default=None,
        description="Limit in estimated minutes by `travel_mode` (feature flag travel_time_reach; "
        "docs/matching.md); replaces max_travel_km in matching when set",
    )
    availability: Availability = Field(
        default_factory=dict, description='Weekly windows, e.g. {"mon": ["08:00-12:00"]}'
    )
    excluded_therapist_ids: Exclusions = Field(
        default_factory=list, description="Therapists never to be contacted for this patient"
    )
    notes: Notes | None = None

    @model_validator(mode="before")
    @classmethod
    def _group_only_implies_group(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("group_only") is True and "open_to_group_therapy" not in data:
            return {**data, "open_to_group_therapy": True}
        return data

    @field_validator("last_therapy_session")
    @classmethod
    def _session_needs_previous_therapy(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is None:
            return value
        if info.data.get("previous_therapy") is False:
            raise FieldRuleError("inconsistent", "nur erlaubt, wenn previous_therapy true ist")
        birth_date = info.data.get("birth_date")
        if birth_date is not None and value < birth_date:
            raise FieldRuleError("inconsistent", "liegt vor dem Geburtsdatum")
        return value

    @field_validator("group_only")
    @classmethod
    def _group_only_needs_group(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("open_to_group_therapy") is False:
            raise FieldRuleError("inconsistent", "nur Gruppentherapie verlangt open_to_group_therapy")
        return value


class PatientReplacement(PatientDraft):
    """A full update (PUT): every field as in the draft (omitted ones go back to their
    defaults); `status` changes the status when given and keeps it when omitted."""

    status: PatientStatus | None = None


REQUIRED_FIELDS: Final = frozenset(
    name for name, field in PatientDraft.model_fields.items() if field.is_required()
)


class PatientPatch(BaseModel):
    """A partial update (PATCH): only the fields sent change. `null` clears an optional field
    (a field with a default goes back to it); required fields cannot be cleared."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    salutation: Salutation | None = None
    gender: Gender | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    birth_date: BirthDate | None = None
    street: Street | None = None
    postcode: Postcode | None = None
    city: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    health_insurer: HealthInsurer | None = None
    insurance_type: InsuranceType | None = None
    symptoms: Symptoms | None = None
    previous_therapy: bool | None = None
    last_therapy_session: PastDate | None = None
    therapy_procedures: TherapyProcedures | None = None
    preferred_therapist_gender: TherapistGenderPreference | None = None
    open_to_group_therapy: bool | None = None
    group_only: bool | None = None
    languages: Languages | None = None
    needs_shared_language: bool | None = None
    max_travel_km: TravelKm | None = None
    travel_mode: TravelMode | None = None
    max_travel_minutes: TravelMinutes | None = None
    availability: Availability | None = None
    excluded_therapist_ids: Exclusions | None = None
    notes: Notes | None = None
    status: PatientStatus | None = None

    @field_validator(*sorted(REQUIRED_FIELDS), mode="before")
    @classmethod
    def _required_cannot_be_cleared(cls, value: Any) -> Any:
        if value is None:
            raise FieldRuleError("cannot_be_cleared", "Pflichtfeld, kann nicht geleert werden")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their (validated) values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


# --- the stored record -------------------------------------------------------------------------


class Patient(BaseModel):
    """A stored patient as the API returns it and as `patient.created|updated` carry it.
    Types here are not re-checked against today's plausibility rules: a stored record stays
    readable when the rules move on (e.g. a patient grows older than the age bound)."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    salutation: str | None = None
    gender: Gender = Gender.UNSPECIFIED
    first_name: str
    last_name: str
    birth_date: date | None = None
    street: str | None = None
    postcode: str
    city: str | None = None
    email: str | None = None
    phone: str | None = None
    health_insurer: str | None = None
    insurance_type: InsuranceType = InsuranceType.STATUTORY
    symptoms: list[Symptom] = Field(default_factory=list)
    previous_therapy: bool = False
    last_therapy_session: date | None = None
    therapy_procedures: list[TherapyProcedure] = Field(default_factory=lambda: list(TherapyProcedure))
    preferred_therapist_gender: TherapistGenderPreference = TherapistGenderPreference.ANY
    open_to_group_therapy: bool = False
    group_only: bool = False
    languages: list[str] = Field(default_factory=lambda: [GERMAN])
    needs_shared_language: bool | None = None
    max_travel_km: int = DEFAULT_MAX_TRAVEL_KM
    travel_mode: TravelMode = TravelMode.TRANSIT
    max_travel_minutes: int | None = None
    availability: dict[Weekday, list[str]] = Field(default_factory=dict)
    excluded_therapist_ids: list[uuid.UUID] = Field(default_factory=list)
    notes: str | None = None
    status: PatientStatus
    location: Location = Field(default_factory=Location.unknown)
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def location_flagged(self) -> bool:
        """True when the address could not be located: staff must check it (an unknown
        location never passes a distance check in matching)."""
        return not self.location.is_known

    @computed_field  # type: ignore[prop-decorator]
    @property
    def shared_language_required(self) -> bool:
        """Effective language rule for matching (see `needs_shared_language`)."""
        if self.needs_shared_language is not None:
            return self.needs_shared_language
        return GERMAN not in self.languages

    @classmethod
    def register(
        cls, draft: PatientDraft, *, now: datetime, location: Location, patient_id: uuid.UUID | None = None
    ) -> Patient:
        return cls(
            id=patient_id or uuid.uuid4(),
            status=PatientStatus.OPEN,
            location=location,
            created_at=now,
            updated_at=now,
            **draft.model_dump(),
        )

    def profile(self) -> dict[str, Any]:
        """The editable fields (those of `PatientDraft`) as Python values."""
        return {name: getattr(self, name) for name in PatientDraft.model_fields}

    def revised(
        self, draft: PatientDraft, *, status: PatientStatus | None, location: Location, now: datetime
    ) -> Patient:
        """This patient with the draft's fields, the given status (None keeps it) and location."""
        return self.model_copy(
            update={
                **draft.model_dump(),
                "status": status or self.status,
                "location": location,
                "updated_at": now,
            }
        )

    def address_differs(self, draft: PatientDraft) -> bool:
        return (self.postcode, self.street, self.city) != (draft.postcode, draft.street, draft.city)

    def event_payload(self) -> dict[str, Any]:
        """Payload of `patient.created|updated`, built through its contract
        (contracts.patients.PatientSnapshot): only what matching needs, no name, contact or
        free text, the birth date coarsened to its month."""
        return PatientSnapshot.of(self.model_dump(mode="json")).model_dump(mode="json")

    def audit_view(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"location_flagged", "shared_language_required"})


def changed_fields(before: Patient, after: Patient) -> tuple[dict[str, Any], dict[str, Any]]:
    """(old values, new values) of the fields that differ, in JSON form, for the audit log."""
    old, new = before.audit_view(), after.audit_view()
    names = [name for name in new if name != "updated_at" and old.get(name) != new[name]]
    return {name: old.get(name) for name in names}, {name: new[name] for name in names}


def merge_patch(current: Patient, patch: PatientPatch) -> tuple[PatientDraft, PatientStatus | None]:
    """Apply a PATCH to the current record and validate the result as a whole (cross-field
    rules included). Raises PatientValidationError naming the fields."""
    changes = patch.changes()
    status = changes.pop("status", None)
    merged = current.profile()
    for name, value in changes.items():
        if value is None:
            field = PatientDraft.model_fields[name]
            merged[name] = field.get_default(call_default_factory=True)
        else:
            merged[name] = value
    # Rules that imply another field follow the field the client changed.
    if changes.get("group_only") is True and "open_to_group_therapy" not in changes:
        merged["open_to_group_therapy"] = True
    if changes.get("previous_therapy") is False and "last_therapy_session" not in changes:
        merged["last_therapy_session"] = None
    return validated(PatientDraft, merged), status


# --- erasure, events, queries ------------------------------------------------------------------

# What an erased patient's row keeps: its id and when it was erased (a tombstone). Every other
# column is emptied (adapters/store.py; checked column by column in the tests); the anonymous
# facts statistics need go to `patient_statistics`, without the id (domain/statistics.py).
STATISTICS_FIELDS: Final = ("id", "erased_at")


class PatientDeleted(BaseModel):
    """Answer to an erasure and payload of `patient.deleted`: no personal data."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    erased_at: datetime


class ErasureRequest(BaseModel):
    """Optional reason recorded in the audit log (e.g. the request's reference number)."""

    model_config = ConfigDict(extra="forbid")

    reason: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
            AfterValidator(_printable),
        ]
        | None
    ) = None


class PatientErasedError(GoneError):
    """The patient existed but their personal data was erased (HTTP 410 Gone)."""

    code = "patient_erased"


class PatientValidationError(FieldValidationError):
    """A combination of fields breaks a rule (HTTP 422), with the same body shape as request
    validation: `errors` names each offending field."""


Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], data: dict[str, Any], *, location: FieldLocation = "body") -> Model:
    """Validate `data` as `model`; pydantic errors become PatientValidationError naming fields."""
    return validate_as(model, data, PatientValidationError, location=location)


class PatientSort(StrEnum):
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    UPDATED_AT = "updated_at"
    UPDATED_AT_DESC = "-updated_at"
    LAST_NAME = "last_name"
    LAST_NAME_DESC = "-last_name"
    BIRTH_DATE = "birth_date"
    BIRTH_DATE_DESC = "-birth_date"
    POSTCODE = "postcode"
    POSTCODE_DESC = "-postcode"

    @property
    def field(self) -> str:
        return self.value.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")


SearchText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_printable)
]


class PatientQuery(BaseModel):
    """Filters of the patient list. Text filters are case-insensitive; `q` (free text) matches when
    every word occurs in the first or the last name; `insurer` matches part of the insurer's
    name; `created_from`/`created_to` are inclusive UTC dates. Erased patients are never listed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: tuple[PatientStatus, ...] = ()
    postcode_prefix: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,5}$")] | None = None
    insurer: SearchText | None = None
    q: SearchText | None = None
    created_from: date | None = None
    created_to: date | None = None
    sort: PatientSort = PatientSort.CREATED_AT_DESC
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    limit: int = Field(default=50, ge=1, le=200)

    @field_validator("status", mode="before")
    @classmethod
    def _no_status_is_any(cls, value: Any) -> Any:
        return () if value is None else value

    @field_validator("created_to")
    @classmethod
    def _range_in_order(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("created_from")
        if value is not None and start is not None and start > value:
            raise FieldRuleError("inconsistent", "created_to liegt vor created_from")
        return value

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    @property
    def name_terms(self) -> list[str]:
        return self.q.split()[:5] if self.q else []

    def created_bounds(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC for the inclusive date range."""
        start = datetime.combine(self.created_from, datetime.min.time(), UTC) if self.created_from else None
        end = None
        if self.created_to is not None and self.created_to < date.max:
            end = datetime.combine(self.created_to + timedelta(days=1), datetime.min.time(), UTC)
        return start, end
