"""Patient: the person waiting for a therapy place.

This is the walking-skeleton subset of the patient record (names, birth date, postcode, city,
contact). The full record (symptoms, availability, preferences ...) builds on it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

PRODUCER = "patient-service"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Postcode = Annotated[str, StringConstraints(pattern=r"^\d{5}$")]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()/\-]{6,30}$")]


def _plausible_birth_date(value: date | None) -> date | None:
    # Patients are adults or adolescents in treatment; nobody older than 120 years.
    if value is None:
        return value
    today = datetime.now(UTC).date()
    if value > today:
        raise ValueError("birth date lies in the future")
    if value.year < today.year - 120:
        raise ValueError("birth date is more than 120 years ago")
    return value


class PatientStatus(StrEnum):
    OPEN = "open"
    SEARCHING = "searching"
    IN_THERAPY = "in_therapy"
    THERAPY_FINISHED = "therapy_finished"
    SEARCH_CANCELLED = "search_cancelled"
    THERAPY_CANCELLED = "therapy_cancelled"


class PatientDraft(BaseModel):
    """What staff send to register a patient."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    first_name: Name
    last_name: Name
    birth_date: Annotated[date | None, AfterValidator(_plausible_birth_date)] = None
    postcode: Postcode = Field(description="German postcode (PLZ), 5 digits, leading zeros kept")
    city: Name | None = None
    email: Email | None = None
    phone: Phone | None = None


class Patient(BaseModel):
    """A stored patient as the API returns it."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    first_name: str
    last_name: str
    birth_date: date | None
    postcode: str
    city: str | None
    email: str | None
    phone: str | None
    status: PatientStatus
    created_at: datetime
    updated_at: datetime

    @classmethod
    def register(cls, draft: PatientDraft, *, now: datetime, patient_id: uuid.UUID | None = None) -> Patient:
        return cls(
            id=patient_id or uuid.uuid4(),
            status=PatientStatus.OPEN,
            created_at=now,
            updated_at=now,
            **draft.model_dump(),
        )

    def event_payload(self) -> dict[str, Any]:
        """Payload of patient events. Carries what downstream read models need."""
        return self.model_dump(mode="json")
