"""Payloads the therapist service publishes (`therapist.*`, Kafka topic `therapist-events`).

Produced by `therapists/use_cases.py` (staff create/replace/patch, block/unblock/deactivate/
reactivate, cooling periods, bulk loads) and `therapists/imports/use_cases.py` (the 116117
directory import: `therapist.imported` for new therapists, `therapist.updated` for changes).
Consumed today by
- the matching service: its read model keeps the payload whole (`matching/domain/
  read_models.py`, read by `matching/domain/candidates.py`); a blocked or deactivated
  therapist's draft bundles are discarded (`matching/use_cases/jobs.py`);
- the communication service (`communication/use_cases/events.py`, fields read through
  `communication/domain/tracking.py`): the contact a "place found" email names;
- anyone on Kafka, through the bridge.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from therapy_platform.contracts.base import EventPayload
from therapy_platform.contracts.languages import LanguageCode
from therapy_platform.contracts.schedule import WeeklySchedule
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.platform.geography.locations import Location

# The formats the therapist service guarantees for what it stores (and so sends).
_Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
_ShortText = Annotated[str, StringConstraints(min_length=1, max_length=60)]
_Street = Annotated[str, StringConstraints(min_length=1, max_length=200)]
_Postcode = Annotated[str, StringConstraints(pattern=r"^\d{5}$")]
_Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
_Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()/\-]{6,30}$")]
_Website = Annotated[
    str, StringConstraints(max_length=300, pattern=r"^(https?://)?[^\s/.]+(\.[^\s/.]+)+(/\S*)?$")
]
_SymptomCode = Annotated[str, StringConstraints(min_length=1, max_length=60)]
_Age = Annotated[int, Field(ge=0, le=120)]


class TherapistStatus(StrEnum):
    """Only `active` therapists receive bundles; `inactive` is a soft delete."""

    ACTIVE = "active"
    BLOCKED = "blocked"
    INACTIVE = "inactive"


class TherapistSnapshot(EventPayload):
    """Payload of `therapist.created|imported|updated|blocked|unblocked`: the whole therapist
    record after the change (the therapist API's public model). Produced by the therapist
    service; consumed by the matching read model, the communication service and Kafka."""

    # The matching read model keeps this payload whole: fields a newer producer adds are kept
    # (and re-serialised) rather than dropped. Every field is always sent, so the schema
    # requires each one (defaults only help parsing).
    model_config = ConfigDict(frozen=True, extra="allow", json_schema_serialization_defaults_required=True)

    salutation: _ShortText | None = Field(default=None, description='e.g. "Herr", "Frau"')
    gender: Gender = Gender.UNSPECIFIED
    title: _ShortText | None = Field(default=None, description='e.g. "Dr.", "Prof. Dr.", "Dipl.-Psych."')
    first_name: _Name
    last_name: _Name
    street: _Street | None = None
    postcode: _Postcode = Field(description="German postcode (PLZ), 5 digits, leading zeros kept")
    city: _Name | None = None
    phone: _Phone | None = None
    fax: _Phone | None = None
    email: _Email | None = Field(default=None, description="Therapists sharing an email are one practice")
    website: _Website | None = None
    statutory_seat: bool = Field(default=False, description="Holds a statutory insurance seat (Kassensitz)")
    procedures: list[TherapyProcedure] = Field(
        default_factory=list, description="Offered procedures: VT, TP, AP, ST"
    )
    languages: list[LanguageCode] = Field(
        default_factory=lambda: ["de"], description="ISO 639-1 codes of the languages therapy is offered in"
    )
    phone_windows: WeeklySchedule = Field(
        default_factory=dict, description='When the practice answers the phone: {"mon": ["08:00-09:00"]}'
    )
    working_hours: WeeklySchedule = Field(default_factory=dict, description="Therapy hours, same shape")
    preferred_age_min: _Age | None = Field(default=None, description="Youngest patient age (none = any)")
    preferred_age_max: _Age | None = Field(default=None, description="Oldest patient age (none = any)")
    preferred_patient_gender: Gender | None = Field(default=None, description="None = no preference")
    offers_group_therapy: bool = False
    group_only: bool = Field(default=False, description="Takes only patients open to group therapy")
    symptom_preferences: list[_SymptomCode] = Field(default_factory=list)
    potentially_available: bool = Field(default=False, description="May have a free place soon")
    id: uuid.UUID
    directory_id: str | None = Field(description="Id in the 116117 directory, when imported from it")
    status: TherapistStatus
    block_reason: str | None = Field(description="Why staff blocked the therapist (only while blocked)")
    next_contact_allowed_on: date | None = Field(description="Cooling period: no contact before this day")
    staff_edited_fields: list[str] = Field(description="Fields staff set by hand; imports never touch them")
    location: Location
    location_flagged: bool = Field(description="True when the address could not be located")
    practice_key: str | None = Field(description="Normalised email shared by the practice's therapists")
    # GDPR Art. 21: the therapist objected to further inquiries. Matching sends no bundle to
    # them (nor to their practice's shared mailbox). Only the flag travels: not when or how.
    contact_opt_out: bool = Field(default=False, description="The therapist objected to further inquiries")
    created_at: datetime
    updated_at: datetime


# --- therapist erasure (issue 12, item 2) -------------------------------------------------------


class TherapistDeleted(EventPayload):
    """Payload of `therapist.deleted` (GDPR erasure of a therapist, POST
    /api/v2/therapists/{id}/erase): no personal data, the id and the time only. Produced by the
    therapist service; consumed by the matching service (read model tombstone, open bundles to
    the therapist withdrawn, bundle rows scrubbed) and the communication service (contact
    erased, emails, replies and phone-call tasks scrubbed, queued emails cancelled), and Kafka."""

    id: uuid.UUID
    erased_at: datetime
