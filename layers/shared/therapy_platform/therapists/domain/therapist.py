"""Therapist: a psychotherapist the platform may send bundles to.

Rules that live here: field validation (names, address, contact data, time windows, languages,
age range), the status machine (active / blocked / inactive), which fields staff own, how a
therapist's practice is derived, and the shape of events and audit entries.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from therapy_platform.contracts.languages import LanguageCode
from therapy_platform.contracts.schedule import WeeklySchedule
from therapy_platform.contracts.therapists import TherapistSnapshot
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.platform.errors import ConflictError
from therapy_platform.platform.geography.locations import Location
from therapy_platform.platform.validation import FieldRuleError, FieldValidationError

PRODUCER: Final = "therapist-service"

# A cooling period further ahead than this is almost certainly a typo (2062 for 2026).
MAX_COOLING_DAYS: Final = 730


# ---------------------------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------------------------


class ContactOptOutReason(StrEnum):
    """How a therapist objected to further inquiries (GDPR Art. 21). A code, never free text:
    what the therapist wrote stays in the reply, not on the record, the bus or the audit log."""

    REPLY = "reply"  # an email reply saying so, recognised by the communication service
    PHONE = "phone"  # told staff on the phone
    EMAIL = "email"  # wrote to staff (not a reply the platform recognised)
    LETTER = "letter"  # by post
    OTHER = "other"


class TherapistStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"  # never receives a bundle (enforced by matching, which reads this status)
    INACTIVE = "inactive"  # soft-deleted: kept because bundles and history reference it


def _sorted_unique(values: Iterable[Any]) -> list[Any]:
    return sorted(set(values))


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


WEBSITE_MAX_LENGTH: Final = 300


def _website(value: str) -> str:
    # Staff paste "www.praxis.de" as often as full URLs; store one form.
    url = value if re.match(r"^https?://", value, re.IGNORECASE) else f"https://{value}"
    if len(url) > WEBSITE_MAX_LENGTH:  # checked after the scheme is added: that is what is stored
        raise FieldRuleError("too_long", f"die Adresse ist länger als {WEBSITE_MAX_LENGTH} Zeichen")
    return url


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Street = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Postcode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{5}$")]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()/\-]{6,30}$")]
Website = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=300, pattern=r"^(https?://)?[^\s/.]+(\.[^\s/.]+)+(/\S*)?$"
    ),
    AfterValidator(_website),
]
Languages = Annotated[list[LanguageCode], AfterValidator(_sorted_unique)]
Procedures = Annotated[
    list[Annotated[TherapyProcedure, BeforeValidator(_upper)]], AfterValidator(_sorted_unique)
]
# Symptom codes: any non-empty code for now. The fixed symptom list belongs to the patient
# record; once it is shared, therapist preferences should be checked against it.
SymptomCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
SymptomCodes = Annotated[list[SymptomCode], AfterValidator(_sorted_unique)]
Age = Annotated[int, Field(ge=0, le=120)]
DirectoryId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
GenderValue = Annotated[Gender, BeforeValidator(_lower)]


# ---------------------------------------------------------------------------------------------
# Input models
# ---------------------------------------------------------------------------------------------


class TherapistDraft(BaseModel):
    """What staff send to create (POST) or fully replace (PUT) a therapist.

    Operational fields are not part of it: status (block/unblock/DELETE), the cooling period
    (its own endpoint), the directory id (owned by imports) and the computed location.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    salutation: ShortText | None = Field(default=None, description='e.g. "Herr", "Frau"')
    gender: GenderValue = Gender.UNSPECIFIED
    title: ShortText | None = Field(default=None, description='e.g. "Dr.", "Prof. Dr.", "Dipl.-Psych."')
    first_name: Name
    last_name: Name
    street: Street | None = None
    postcode: Postcode = Field(description="German postcode (PLZ), 5 digits, leading zeros kept")
    city: Name | None = None
    phone: Phone | None = None
    fax: Phone | None = None
    email: Email | None = Field(default=None, description="Therapists sharing an email are one practice")
    website: Website | None = None
    statutory_seat: bool = Field(default=False, description="Holds a statutory insurance seat (Kassensitz)")
    procedures: Procedures = Field(default_factory=list, description="Offered procedures: VT, TP, AP, ST")
    languages: Languages = Field(
        default_factory=lambda: ["de"], description="ISO 639-1 codes of the languages therapy is offered in"
    )
    phone_windows: WeeklySchedule = Field(
        default_factory=dict, description='When the practice answers the phone: {"mon": ["08:00-09:00"]}'
    )
    working_hours: WeeklySchedule = Field(default_factory=dict, description="Therapy hours, same shape")
    preferred_age_min: Age | None = Field(default=None, description="Youngest patient age (none = any)")
    preferred_age_max: Age | None = Field(default=None, description="Oldest patient age (none = any)")
    preferred_patient_gender: GenderValue | None = Field(default=None, description="None = no preference")
    offers_group_therapy: bool = False
    group_only: bool = Field(default=False, description="Takes only patients open to group therapy")
    symptom_preferences: SymptomCodes = Field(default_factory=list)
    potentially_available: bool = Field(default=False, description="May have a free place soon")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = cross_field_problems(self)
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("inconsistent", message),
                        loc=(name,),
                        input=getattr(self, name),
                    )
                    for name, message in problems
                ],
            )
        return self


def cross_field_problems(draft: TherapistDraft) -> list[tuple[str, str]]:
    """Rules across fields, each naming every field involved."""
    problems: list[tuple[str, str]] = []
    low, high = draft.preferred_age_min, draft.preferred_age_max
    if low is not None and high is not None and low > high:
        problems.append(("preferred_age_min", "darf preferred_age_max nicht übersteigen"))
        problems.append(("preferred_age_max", "darf preferred_age_min nicht unterschreiten"))
    if draft.group_only and not draft.offers_group_therapy:
        problems.append(("group_only", "wer nur Gruppenpatienten nimmt, muss Gruppentherapie anbieten"))
        problems.append(("offers_group_therapy", "muss true sein, solange group_only true ist"))
    return problems


EDITABLE_FIELDS: Final = tuple(TherapistDraft.model_fields)
ADDRESS_FIELDS: Final = frozenset({"street", "postcode", "city"})
# A PATCH with null for these clears them to empty rather than failing: "no languages" etc.
_EMPTY_WHEN_NULL: Final[dict[str, Any]] = {
    "procedures": [],
    "languages": [],
    "phone_windows": {},
    "working_hours": {},
    "symptom_preferences": [],
}


class TherapistPatch(BaseModel):
    """Partial update: only the fields sent change; explicit null clears an optional field.
    Each field is checked on its own here; rules across fields run on the merged record."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    salutation: ShortText | None = None
    gender: GenderValue | None = None
    title: ShortText | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    street: Street | None = None
    postcode: Postcode | None = None
    city: Name | None = None
    phone: Phone | None = None
    fax: Phone | None = None
    email: Email | None = None
    website: Website | None = None
    statutory_seat: bool | None = None
    procedures: Procedures | None = None
    languages: Languages | None = None
    phone_windows: WeeklySchedule | None = None
    working_hours: WeeklySchedule | None = None
    preferred_age_min: Age | None = None
    preferred_age_max: Age | None = None
    preferred_patient_gender: GenderValue | None = None
    offers_group_therapy: bool | None = None
    group_only: bool | None = None
    symptom_preferences: SymptomCodes | None = None
    potentially_available: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (null included), as plain values."""
        sent = self.model_dump(include=self.model_fields_set)
        return {
            name: _EMPTY_WHEN_NULL[name] if value is None and name in _EMPTY_WHEN_NULL else value
            for name, value in sent.items()
        }


_LIST_FIELDS: Final = ("procedures", "languages", "symptom_preferences")
_SCHEDULE_FIELDS: Final = ("phone_windows", "working_hours")
_FLAG_FIELDS: Final = ("statutory_seat", "offers_group_therapy", "group_only", "potentially_available")
_GERMAN_FLAGS: Final = {"ja": True, "nein": False, "j": True}


class TherapistImportRow(TherapistPatch):
    """One row of an operator bulk load (CSV or JSON): the draft's fields plus the directory id.

    Blank cells and nulls mean "not provided" (a load never blanks a known value). CSV cells are
    accepted in spreadsheet form: lists as "VT, TP" (comma, semicolon or |), schedules as JSON
    text, flags as true/false, yes/no, ja/nein, 1/0.
    """

    directory_id: DirectoryId | None = None

    @model_validator(mode="before")
    @classmethod
    def _blank_cells_are_absent(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        return {
            key: value
            for key, value in data.items()
            if value is not None and not (isinstance(value, str) and not value.strip())
        }

    @field_validator(*_LIST_FIELDS, mode="before")
    @classmethod
    def _split_list_cell(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in re.split(r"[,;|]", value) if part.strip()]
        return value

    @field_validator(*_SCHEDULE_FIELDS, mode="before")
    @classmethod
    def _parse_schedule_cell(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as error:
                raise FieldRuleError("invalid_json", 'erwartet JSON wie {"mon": ["08:00-09:00"]}') from error
        return value

    @field_validator(*_FLAG_FIELDS, mode="before")
    @classmethod
    def _german_flags(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _GERMAN_FLAGS.get(value.strip().lower(), value)
        return value

    def provided(self) -> dict[str, Any]:
        """The draft fields this row carries."""
        return self.model_dump(include=self.model_fields_set - {"directory_id"})


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class StatusChange(BaseModel):
    """Body of block / unblock / reactivate: why staff do it (kept in the audit log)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Reason


class CoolingPeriodChange(BaseModel):
    """Body of PUT /cooling-period. null ends the cooling period."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    next_contact_allowed_on: date | None = Field(description="First day the therapist may be contacted again")
    reason: Reason


class ContactOptOut(BaseModel):
    """Body of POST .../opt-out (staff): how the therapist objected. A code, no free text."""

    model_config = ConfigDict(extra="forbid")

    reason: ContactOptOutReason = Field(description="How the therapist objected: phone, email, letter, other")


class ContactOptIn(BaseModel):
    """Body of POST .../opt-in (admin): why contact is allowed again (kept in the audit log),
    e.g. the therapist asked in writing to receive inquiries again."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Reason


class CoolingPeriod(BaseModel):
    therapist_id: uuid.UUID
    next_contact_allowed_on: date | None
    in_cooling_period: bool = Field(description="True while next_contact_allowed_on lies after today")


# ---------------------------------------------------------------------------------------------
# The therapist
# ---------------------------------------------------------------------------------------------


class TherapistAction(StrEnum):
    BLOCK = "block"
    UNBLOCK = "unblock"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"


TRANSITIONS: Final[dict[tuple[TherapistStatus, TherapistAction], TherapistStatus]] = {
    (TherapistStatus.ACTIVE, TherapistAction.BLOCK): TherapistStatus.BLOCKED,
    (TherapistStatus.BLOCKED, TherapistAction.UNBLOCK): TherapistStatus.ACTIVE,
    (TherapistStatus.ACTIVE, TherapistAction.DEACTIVATE): TherapistStatus.INACTIVE,
    (TherapistStatus.BLOCKED, TherapistAction.DEACTIVATE): TherapistStatus.INACTIVE,
    (TherapistStatus.INACTIVE, TherapistAction.REACTIVATE): TherapistStatus.ACTIVE,
}
TARGET_STATUS: Final[dict[TherapistAction, TherapistStatus]] = {
    action: target for (_, action), target in TRANSITIONS.items()
}


def next_status(current: TherapistStatus, action: TherapistAction) -> TherapistStatus:
    """The status after `action`, or ConflictError (409) naming both states."""
    target = TRANSITIONS.get((current, action))
    if target is None:
        wanted = TARGET_STATUS[action]
        raise ConflictError(
            f"cannot {action} a therapist whose status is {current}: {current} -> {wanted} is not allowed",
            details={"current_status": str(current), "requested_status": str(wanted)},
        )
    return target


def practice_key(email: str | None) -> str | None:
    """Therapists sharing an email address are one practice."""
    return email.strip().lower() if email and email.strip() else None


def search_text(first_name: str, last_name: str, city: str | None, email: str | None) -> str:
    """What free-text search looks in (name, city, email), case-folded."""
    return " ".join(part for part in (first_name, last_name, city or "", email or "") if part).casefold()


class Therapist(TherapistDraft):
    """A stored therapist as the API returns it and as therapist events carry it."""

    # Every field is always present in responses and events: the schema says so.
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_serialization_defaults_required=True)

    id: uuid.UUID
    directory_id: str | None = Field(description="Id in the 116117 directory, when imported from it")
    status: TherapistStatus
    block_reason: str | None
    next_contact_allowed_on: date | None = Field(description="Cooling period: no contact before this day")
    staff_edited_fields: list[str] = Field(description="Fields staff set by hand; imports never touch them")
    location: Location
    location_flagged: bool = Field(description="True when the address could not be located")
    practice_key: str | None = Field(description="Normalised email shared by the practice's therapists")
    contact_opt_out_at: datetime | None = Field(
        default=None, description="When the therapist objected to further inquiries (None: no objection)"
    )
    contact_opt_out_reason: ContactOptOutReason | None = Field(
        default=None, description="How the therapist objected (a code); kept exactly while opted out"
    )
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="after")
    def _block_reason_only_when_blocked(self) -> Therapist:
        if (self.status is TherapistStatus.BLOCKED) != (self.block_reason is not None):
            raise ValueError("a block reason is kept exactly while the therapist is blocked")
        if (self.contact_opt_out_at is None) != (self.contact_opt_out_reason is None):
            raise ValueError("an opt-out has both its time and its reason, or neither")
        return self

    @property
    def contact_opt_out(self) -> bool:
        """True while the therapist objects to inquiries: matching sends them no bundle."""
        return self.contact_opt_out_at is not None

    def opted_out(self, reason: ContactOptOutReason, *, now: datetime) -> Therapist:
        """The therapist after objecting. An existing opt-out stays as it was (the first
        objection's time and way are the record; repeating it changes nothing)."""
        if self.contact_opt_out:
            return self
        return self.model_copy(
            update={"contact_opt_out_at": now, "contact_opt_out_reason": reason, "updated_at": now}
        )

    def opted_in(self, *, now: datetime) -> Therapist:
        """The therapist after an admin allowed contact again (the therapist asked for it)."""
        if not self.contact_opt_out:
            return self
        return self.model_copy(
            update={"contact_opt_out_at": None, "contact_opt_out_reason": None, "updated_at": now}
        )

    @classmethod
    def create(
        cls,
        draft: TherapistDraft,
        *,
        location: Location,
        now: datetime,
        staff_edited_fields: Iterable[str] = (),
        directory_id: str | None = None,
        therapist_id: uuid.UUID | None = None,
    ) -> Therapist:
        fields = draft.model_dump()
        return cls(
            id=therapist_id or uuid.uuid4(),
            directory_id=directory_id,
            status=TherapistStatus.ACTIVE,
            block_reason=None,
            next_contact_allowed_on=None,
            staff_edited_fields=sorted(set(staff_edited_fields)),
            location=location,
            location_flagged=not location.is_known,
            practice_key=practice_key(draft.email),
            created_at=now,
            updated_at=now,
            **fields,
        )

    def draft(self) -> TherapistDraft:
        return TherapistDraft.model_validate(self.model_dump(include=set(EDITABLE_FIELDS)))

    def editable_values(self) -> dict[str, Any]:
        return self.model_dump(include=set(EDITABLE_FIELDS))

    def address_differs(self, draft: TherapistDraft) -> bool:
        return any(getattr(self, name) != getattr(draft, name) for name in ADDRESS_FIELDS)

    def with_fields(
        self, draft: TherapistDraft, *, location: Location, now: datetime, by_staff: bool
    ) -> tuple[Therapist, list[str]]:
        """The therapist with the draft's values; returns the names of the fields that changed.
        Changes made by staff are remembered so that imports leave those fields alone."""
        new_values = draft.model_dump()
        changed = [name for name in EDITABLE_FIELDS if new_values[name] != getattr(self, name)]
        if not changed and location == self.location:
            return self, []
        staff_fields = set(self.staff_edited_fields) | (set(changed) if by_staff else set())
        updated = self.model_copy(
            update={
                **new_values,
                "staff_edited_fields": sorted(staff_fields),
                "location": location,
                "location_flagged": not location.is_known,
                "practice_key": practice_key(draft.email),
                "updated_at": now,
            }
        )
        return Therapist.model_validate(updated.model_dump()), changed

    def transition(self, action: TherapistAction, *, reason: str, now: datetime) -> Therapist:
        status = next_status(self.status, action)
        return self.model_copy(
            update={
                "status": status,
                "block_reason": reason if status is TherapistStatus.BLOCKED else None,
                "updated_at": now,
            }
        )

    def with_cooling_period(self, until: date | None, *, now: datetime) -> Therapist:
        return self.model_copy(update={"next_contact_allowed_on": until, "updated_at": now})

    def in_cooling_period(self, today: date) -> bool:
        return self.next_contact_allowed_on is not None and self.next_contact_allowed_on > today

    def cooling_period(self, today: date) -> CoolingPeriod:
        return CoolingPeriod(
            therapist_id=self.id,
            next_contact_allowed_on=self.next_contact_allowed_on,
            in_cooling_period=self.in_cooling_period(today),
        )

    def event_payload(self) -> dict[str, Any]:
        """Payload of therapist.* events, built through the published contract
        (contracts/therapists.py): only what matching needs, no name, contact or free text, so
        that what goes on the bus is what the contract says, whatever this model grows."""
        record = self.model_dump(mode="json")
        # Of an objection the bus learns only that there is one, not when or how.
        record["contact_opt_out"] = self.contact_opt_out
        return TherapistSnapshot.of(record).model_dump(mode="json")

    def audit_record(self) -> dict[str, Any]:
        """The whole record (the `after` of a new therapist's audit entry, kept in this service)."""
        return self.model_dump(mode="json")


OPT_OUT_FIELDS: Final = ("contact_opt_out_at", "contact_opt_out_reason")


def check_cooling_date(until: date | None, *, today: date) -> None:
    """A cooling period set by staff ends today or later (null ends it), within MAX_COOLING_DAYS."""
    if until is None:
        return
    if until < today:
        problem = FieldRuleError(
            "in_past", f"liegt in der Vergangenheit (heute ist {today}); null beendet die Sperrfrist"
        )
    elif until > today + timedelta(days=MAX_COOLING_DAYS):
        problem = FieldRuleError("too_far_ahead", f"liegt mehr als {MAX_COOLING_DAYS} Tage in der Zukunft")
    else:
        return
    raise TherapistValidationError.for_fields({"next_contact_allowed_on": problem})


# ---------------------------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------------------------

SortKey = Literal[
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "last_name",
    "-last_name",
    "postcode",
    "-postcode",
    "next_contact_allowed_on",
    "-next_contact_allowed_on",
]
PostcodePrefix = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{1,5}$")]


class TherapistQuery(BaseModel):
    """Filters of GET /api/v2/therapists; every filter given must hold (AND)."""

    model_config = ConfigDict(frozen=True)

    status: TherapistStatus | None = None
    postcode_prefix: PostcodePrefix | None = None
    procedure: TherapyProcedure | None = None
    language: LanguageCode | None = None
    offers_group_therapy: bool | None = None
    potentially_available: bool | None = None
    in_cooling_period: bool | None = None
    q: str | None = Field(default=None, max_length=100, description="Free text in name, city or email")
    page: int = Field(default=1, ge=1)
    limit: int = Field(default=50, ge=1, le=200)
    sort: SortKey = "created_at"

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    @property
    def text(self) -> str | None:
        folded = (self.q or "").strip().casefold()
        return folded or None


# ---------------------------------------------------------------------------------------------
# Audit and errors
# ---------------------------------------------------------------------------------------------


class TherapistAuditEntry(BaseModel):
    """One audited staff action (or operator bulk load) on a therapist."""

    model_config = ConfigDict(frozen=True)

    actor: str = Field(min_length=1, max_length=100)
    action: str = Field(min_length=1, max_length=40)
    entity_id: uuid.UUID
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None = None
    at: datetime


def field_values(therapist: Therapist, names: Iterable[str]) -> dict[str, Any]:
    """The given fields of a therapist as JSON-ready values (audit before/after)."""
    return therapist.model_dump(mode="json", include=set(names))


class TherapistValidationError(FieldValidationError):
    """Input that fails validation after merging with the stored record (PATCH, bulk rows).
    Same body as request validation: 422 with every offending field named."""
