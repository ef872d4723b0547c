"""Patient use cases."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from therapy_platform.domain.errors import NotFoundError
from therapy_platform.domain.events import EventEnvelope, new_envelope
from therapy_platform.domain.patients import PRODUCER, Patient, PatientDraft
from therapy_platform.ports import PatientUnitOfWork


def register_patient(
    uow: PatientUnitOfWork, draft: PatientDraft, *, now: datetime
) -> tuple[Patient, EventEnvelope]:
    """Store a new patient and its `patient.created` event in one transaction."""
    patient = Patient.register(draft, now=now)
    event = new_envelope("patient.created", PRODUCER, patient.event_payload(), now=now)
    with uow:
        uow.patients.add(patient)
        uow.outbox.add(str(patient.id), event)
        uow.commit()
    return patient, event


def get_patient(uow: PatientUnitOfWork, patient_id: uuid.UUID) -> Patient:
    with uow:
        patient = uow.patients.get(patient_id)
    if patient is None:
        raise NotFoundError(f"patient {patient_id} does not exist")
    return patient


UnitOfWorkFactory = Callable[[], PatientUnitOfWork]
