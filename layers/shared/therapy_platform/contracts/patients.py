"""Payloads the patient service publishes (`patient.*`, Kafka topic `patient-events`).

Produced by `patients/use_cases.py` (registration, PUT/PATCH, bulk upsert, the status that
follows a search, erasure). Consumed by
- the matching service: its read model keeps the minimal `patient.created|updated` payload
  (`matching/domain/read_models.py`, read by `matching/domain/candidates.py`); `patient.deleted`
  leaves a tombstone and cancels the patient's unfinished search (`matching/use_cases/jobs.py`);
- the communication service (`communication/use_cases/events.py`): unknown-location alerts,
  erasure (contact data it looks up at send time, never from events);
- anyone on Kafka, through the bridge (`patient.deleted` also writes a tombstone there).
Which field is there for whom: docs/events.md.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

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
    DIVERSE = "diverse"
    ANY = "any"


BirthMonth = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
_Postcode = Annotated[str, StringConstraints(max_length=10)]
_Code = Annotated[str, StringConstraints(min_length=1, max_length=60)]


def birth_month_of(birth_date: date | None) -> str | None:
    """ "YYYY-MM": enough for age rules, not the birth date."""
    return None if birth_date is None else f"{birth_date.year:04d}-{birth_date.month:02d}"


class PatientSnapshot(EventPayload):
    """Payload of `patient.created` and `patient.updated`: what matching needs of the patient
    after the change, and nothing else (GDPR Art. 5(1)(c), 25). No name, birth date, street,
    city, email, phone, insurer or notes: the communication service looks contact data up in
    the patient service when it sends (`contracts/contacts.py`). Produced by the patient
    service; consumed by the matching read model, the communication service (unknown-location
    alert) and Kafka. Every field is documented in docs/events.md."""

    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_serialization_defaults_required=True)

    id: uuid.UUID
    gender: Gender = Gender.UNSPECIFIED
    birth_month: BirthMonth | None = Field(default=None, description='"YYYY-MM": age rules only')
    postcode: _Postcode
    insurance_type: InsuranceType = InsuranceType.STATUTORY
    symptoms: list[Symptom] = Field(default_factory=list)
    previous_therapy: bool = False
    therapy_procedures: list[TherapyProcedure] = Field(default_factory=lambda: list(TherapyProcedure))
    preferred_therapist_gender: TherapistGenderPreference = TherapistGenderPreference.ANY
    open_to_group_therapy: bool = False
    group_only: bool = False
    languages: list[_Code] = Field(default_factory=lambda: [GERMAN])
    needs_shared_language: bool | None = None
    max_travel_km: int = 25
    travel_mode: TravelMode = TravelMode.TRANSIT
    max_travel_minutes: int | None = Field(
        default=None, description="Limit in estimated minutes by travel_mode (null: km only)"
    )
    availability: dict[Weekday, list[str]] = Field(default_factory=dict)
    excluded_therapist_ids: list[uuid.UUID] = Field(default_factory=list)
    status: PatientStatus
    location: Location = Field(default_factory=Location.unknown)
    created_at: datetime
    updated_at: datetime
    location_flagged: bool = Field(
        description="True when the address could not be located: staff must check it (an unknown\n"
        "location never passes a distance check in matching)."
    )
    shared_language_required: bool = Field(
        description="Effective language rule for matching (see `needs_shared_language`)."
    )

    @classmethod
    def of(cls, record: dict[str, Any]) -> PatientSnapshot:
        """The payload of a patient record (the patient API's JSON): only the fields above,
        the birth date coarsened to its month."""
        birth = record.get("birth_date")
        values = {
            **record,
            "birth_month": birth_month_of(date.fromisoformat(birth) if isinstance(birth, str) else birth),
        }
        return cls.model_validate(values)


class PatientDeleted(EventPayload):
    """Payload of `patient.deleted` (GDPR erasure): no personal data, the id and the time only.
    Produced by the patient service; consumed by the matching service (tombstone, cancels the
    unfinished search), the communication service (contact erased, emails redacted) and Kafka."""

    id: uuid.UUID
    erased_at: datetime


class PatientSelfRegistered(EventPayload):
    """Payload of `patient.self_registered`: a patient registered themselves on the website
    (a Kafka record of `patient-registrations` became this patient). Ids and the time only:
    the communication service looks the contact up and sends the German confirmation. Written
    in the same transaction as the patient's `patient.created`. Produced by the patient
    service's registration intake; consumed by the communication service and Kafka."""

    id: uuid.UUID = Field(description="The patient's id")
    registration_id: uuid.UUID = Field(description="The website's id of the registration")
    registered_at: datetime
