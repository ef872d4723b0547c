"""Payloads the therapist service publishes (`therapist.*`, Kafka topic `therapist-events`).

Produced by `therapists/use_cases.py` (staff create/replace/patch, block/unblock/deactivate/
reactivate, cooling periods, bulk loads) and `therapists/imports/use_cases.py` (the 116117
directory import: `therapist.imported` for new therapists, `therapist.updated` for changes).
Consumed by
- the matching service: its read model keeps the minimal payload (`matching/domain/
  read_models.py`, read by `matching/domain/candidates.py`); a blocked or deactivated
  therapist's draft bundles are discarded (`matching/use_cases/jobs.py`);
- the communication service: unknown-location alerts (contacts it looks up at send time);
- anyone on Kafka, through the bridge.
Which field is there for whom: docs/events.md.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from therapy_platform.contracts.base import EventPayload
from therapy_platform.contracts.languages import LanguageCode
from therapy_platform.contracts.practices import (
    PRACTICE_KEY_PATTERN,
    hashed_practice_key,
    owner_name_rank,
    title_rank,
)
from therapy_platform.contracts.schedule import WeeklySchedule
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.platform.geography.locations import Location

# The formats the therapist service guarantees for what it stores (and so sends).
_Postcode = Annotated[str, StringConstraints(pattern=r"^\d{5}$")]
_SymptomCode = Annotated[str, StringConstraints(min_length=1, max_length=60)]
_PracticeKey = Annotated[str, StringConstraints(pattern=PRACTICE_KEY_PATTERN)]
_Age = Annotated[int, Field(ge=0, le=120)]


class TherapistStatus(StrEnum):
    """Only `active` therapists receive bundles; `inactive` is a soft delete."""

    ACTIVE = "active"
    BLOCKED = "blocked"
    INACTIVE = "inactive"


class TherapistSnapshot(EventPayload):
    """Payload of `therapist.created|imported|updated|blocked|unblocked`: what matching needs of
    the therapist after the change, and nothing else (GDPR Art. 5(1)(c), 25). No name, title,
    street, city, email, phone, fax, website or block reason: whether the therapist can be
    written to or called travels as two booleans, the practice as a hashed key with the owner
    ranks (`contracts/practices.py`); the communication service looks contact data up in the
    therapist service when it sends (`contracts/contacts.py`). Produced by the therapist
    service; consumed by the matching read model, the communication service (unknown-location
    alert) and Kafka. Every field is documented in docs/events.md."""

    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_serialization_defaults_required=True)

    id: uuid.UUID
    gender: Gender = Gender.UNSPECIFIED
    postcode: _Postcode = Field(description="German postcode (PLZ), 5 digits, leading zeros kept")
    from_directory: bool = Field(default=False, description="Imported from the public 116117 directory")
    reachable_by_email: bool = Field(default=False, description="Has an email address (inquiry by email)")
    reachable_by_phone: bool = Field(default=False, description="Has a phone number (inquiry by phone)")
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
    status: TherapistStatus
    next_contact_allowed_on: date | None = Field(description="Cooling period: no contact before this day")
    location: Location
    location_flagged: bool = Field(description="True when the address could not be located")
    practice_key: _PracticeKey | None = Field(
        description='"p:" + SHA-256 (32 hex digits) of the address the practice shares; none: solo'
    )
    owner_name_rank: int = Field(
        default=0, ge=0, description="Length of the last name when the practice address carries it, else 0"
    )
    title_rank: int = Field(default=0, ge=0, le=2, description="2 Prof., 1 Dr., 0 other")
    # GDPR Art. 21: the therapist objected to further inquiries. Matching sends no bundle to
    # them (nor to their practice's shared mailbox). Only the flag travels: not when or how.
    contact_opt_out: bool = Field(default=False, description="The therapist objected to further inquiries")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: dict[str, Any]) -> TherapistSnapshot:
        """The payload of a therapist record (the therapist API's JSON): contacts reduced to
        booleans, the practice to its hashed key and the owner ranks."""
        email = record.get("email")
        values = {
            **record,
            "from_directory": record.get("directory_id") is not None,
            "reachable_by_email": bool(email),
            "reachable_by_phone": bool(record.get("phone")),
            "practice_key": hashed_practice_key(email),
            "owner_name_rank": owner_name_rank(str(record.get("last_name") or ""), email),
            "title_rank": title_rank(record.get("title")),
        }
        return cls.model_validate(values)


# --- therapist erasure (issue 12, item 2) -------------------------------------------------------


class TherapistDeleted(EventPayload):
    """Payload of `therapist.deleted` (GDPR erasure of a therapist, POST
    /api/v2/therapists/{id}/erase): no personal data, the id and the time only. Produced by the
    therapist service; consumed by the matching service (read model tombstone, open bundles to
    the therapist withdrawn, bundle rows scrubbed) and the communication service (contact
    erased, emails, replies and phone-call tasks scrubbed, queued emails cancelled), and Kafka."""

    id: uuid.UUID
    erased_at: datetime
