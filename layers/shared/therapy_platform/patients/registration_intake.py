"""Use case of the self-registration intake: one Kafka record of `patient-registrations` becomes
a patient, or is parked for staff (docs/registration-intake.md).

Per record:
1. signature and content are checked (`domain/registration.py`); a record that fails is parked
   with its reason (no content kept) and nothing else happens;
2. with the flag `self_registration_intake` off, a valid record is parked as `intake_paused`
   (the registration id stays unclaimed, so the website may send it again later);
3. otherwise, in ONE transaction of the patient service: the registration id is claimed in
   `processed_events` (consumer `registration-intake`); a claimed id is a replay and changes
   nothing; else the patient is stored (status `open`, the status at registration), audited
   (actor `self-registration`), and `patient.created` + `patient.self_registered` are written
   to the outbox. The communication service answers `patient.self_registered` with the German
   confirmation email.

A failure of the database raises (the event source redelivers the batch); bad records never do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from therapy_platform.contracts.patients import PatientSelfRegistered
from therapy_platform.patients.domain.patient import PRODUCER, Patient
from therapy_platform.patients.domain.registration import (
    SIGNATURE_HEADER,
    ParkedRegistration,
    ParkReason,
    Rejection,
    fingerprint,
    read_registration,
)
from therapy_platform.patients.ports import ParkedRegistrations, PatientAuditEntry
from therapy_platform.patients.ports import PatientAuditAction as Action
from therapy_platform.patients.use_cases import PatientService
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.kafka_records import KafkaRecord
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.publishing import record_event
from therapy_platform.platform.rest.pagination import Page

INTAKE_CONSUMER: Final = "registration-intake"
INTAKE_ACTOR: Final = "self-registration"


class IntakeStatus(StrEnum):
    CREATED = "created"
    REPLAYED = "replayed"  # the registration id was taken in before: nothing new
    PARKED = "parked"


@dataclass(frozen=True)
class IntakeResult:
    """What happened to one record (ids and codes only: it is logged)."""

    position: str
    status: IntakeStatus
    registration_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    reason: ParkReason | None = None
    problems: tuple[str, ...] = ()


def _timestamp(record: KafkaRecord) -> datetime | None:
    return datetime.fromtimestamp(record.timestamp / 1000, tz=UTC) if record.timestamp > 0 else None


def _park(
    parked: ParkedRegistrations, record: KafkaRecord, rejection: Rejection, now: datetime
) -> IntakeResult:
    parked.park(
        ParkedRegistration(
            parked_at=now,
            reason=rejection.reason,
            registration_id=rejection.registration_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            record_timestamp=_timestamp(record),
            value_sha256=fingerprint(record.value),
            problems=rejection.problems,
        )
    )
    return IntakeResult(
        record.position,
        IntakeStatus.PARKED,
        registration_id=rejection.registration_id,
        reason=rejection.reason,
        problems=rejection.problems,
    )


def self_registered_payload(
    patient_id: uuid.UUID, registration_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """`patient.self_registered`, built through its contract: ids and the time only."""
    return PatientSelfRegistered(
        id=patient_id, registration_id=registration_id, registered_at=now
    ).model_dump(mode="json")


def take_in_registration(
    service: PatientService,
    parked: ParkedRegistrations,
    record: KafkaRecord,
    *,
    secret: bytes,
    intake_enabled: Callable[[], bool],
) -> Outcome[IntakeResult]:
    """One record: a new patient, a replay that changes nothing, or a parked record."""
    now = service.clock()
    read = read_registration(
        record.value, signature=record.header(SIGNATURE_HEADER), key=record.key, secret=secret
    )
    if isinstance(read, Rejection):
        return Outcome(_park(parked, record, read, now))
    if not intake_enabled():
        return Outcome(_park(parked, record, Rejection(ParkReason.INTAKE_PAUSED, read.registration_id), now))
    # Located before the transaction opens: a slow geocoder holds no connection.
    location = service.geocoder.locate(
        postcode=read.patient.postcode, street=read.patient.street, city=read.patient.city
    )
    patient = Patient.register(read.patient, now=now, location=location)
    with service.unit_of_work() as uow:
        if not uow.processed_events.first_time(read.registration_id, INTAKE_CONSUMER, now):
            return Outcome(IntakeResult(record.position, IntakeStatus.REPLAYED, read.registration_id))
        uow.patients.add(patient)
        uow.audit.record(
            [
                PatientAuditEntry(
                    INTAKE_ACTOR,
                    Action.CREATE,
                    patient.id,
                    now,
                    after=patient.audit_view(),
                    reason=f"self-registration {read.registration_id}",
                )
            ]
        )
        events: list[EventEnvelope] = [
            record_event(
                uow.outbox,
                "patient.created",
                producer=PRODUCER,
                key=patient.id,
                payload=patient.event_payload(),
                now=now,
            ),
            record_event(
                uow.outbox,
                "patient.self_registered",
                producer=PRODUCER,
                key=patient.id,
                payload=self_registered_payload(patient.id, read.registration_id, now),
                now=now,
            ),
        ]
        uow.commit()
    result = IntakeResult(record.position, IntakeStatus.CREATED, read.registration_id, patient.id)
    return Outcome(result, tuple(events))


def list_parked(parked: ParkedRegistrations, *, page: int, limit: int) -> Outcome[Page[ParkedRegistration]]:
    """Parked records for staff, newest first (no personal data in them: nothing to audit)."""
    items, total = parked.recent(limit=limit, offset=(page - 1) * limit)
    return Outcome(Page[ParkedRegistration](items=items, total=total, page=page, limit=limit))
