"""Payloads the patient service publishes (`patient.*`, Kafka topic `patient-events`).

Produced by `patients/use_cases.py` (registration, PUT/PATCH, bulk upsert, the status that
follows a search, erasure). Consumed today by
- the matching service: its read model keeps `patient.created|updated` whole
  (`matching/domain/read_models.py`, read by `matching/domain/candidates.py`); `patient.deleted`
  leaves a tombstone and cancels the patient's unfinished search (`matching/use_cases/jobs.py`);
- the communication service (`communication/use_cases/events.py`, fields read through
  `communication/domain/tracking.py`): contact data, unknown-location alerts, erasure;
- anyone on Kafka, through the bridge.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

from therapy_platform.contracts.base import EventPayload
from therapy_platform.contracts.languages import GERMAN
from therapy_platform.contracts.schedule import Weekday
from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.platform.geography.locations import Location, TravelMode


class InsuranceType(StrEnum):
    """How the patient is insured (kept after an erasure, for statistics)."""

    STATUTORY = "statutory"  # gesetzlich versichert
    PRIVATE = "private"
    SELF_PAY = "self_pay"


class PatientStatus(StrEnum):
    """Where the patient stands; `searching` / `in_therapy` follow the matching search."""

    OPEN = "open"
    SEARCHING = "searching"
    IN_THERAPY = "in_therapy"
    THERAPY_FINISHED = "therapy_finished"
    SEARCH_CANCELLED = "search_cancelled"
    THERAPY_CANCELLED = "therapy_cancelled"


class TherapistGenderPreference(StrEnum):
    """The patient's wish about the therapist's gender."""

    MALE = "male"
    FEMALE = "female"
    ANY = "any"


class PatientSnapshot(EventPayload):
    """Payload of `patient.created` and `patient.updated`: the whole patient record after the
    change (the patient API's public model). Produced by the patient service; consumed by the
    matching read model, the communication service and Kafka. Types are those of the stored
    record, not today's input rules: a stored record stays valid when the rules move on."""

    # The matching read model keeps this payload whole: fields a newer producer adds are kept
    # (and re-serialised) rather than dropped.
    model_config = ConfigDict(frozen=True, extra="allow")

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
    max_travel_km: int = 25
    travel_mode: TravelMode = TravelMode.TRANSIT
    availability: dict[Weekday, list[str]] = Field(default_factory=dict)
    excluded_therapist_ids: list[uuid.UUID] = Field(default_factory=list)
    notes: str | None = None
    status: PatientStatus
    location: Location = Field(default_factory=Location.unknown)
    created_at: datetime
    updated_at: datetime
    # Derived by the producer and always sent (computed fields of the patient API's model).
    location_flagged: bool = Field(
        description="True when the address could not be located: staff must check it (an unknown\n"
        "location never passes a distance check in matching)."
    )
    shared_language_required: bool = Field(
        description="Effective language rule for matching (see `needs_shared_language`)."
    )


class PatientDeleted(EventPayload):
    """Payload of `patient.deleted` (GDPR erasure): no personal data, the id and the time only.
    Produced by the patient service; consumed by the matching service (tombstone, cancels the
    unfinished search), the communication service (contact erased, emails redacted) and Kafka."""

    id: uuid.UUID
    erased_at: datetime
