"""The catalogue of domain events: event type -> payload model. The JSON Schemas in
events/schemas/ are generated from it (infra/tools/event_schemas.py) and checked in CI."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

from therapy_platform.communication.domain.emails import EmailEvent
from therapy_platform.communication.domain.phone_calls import PhoneCallCompleted, PhoneCallScheduled
from therapy_platform.matching.domain.bundles import (
    Bundle,
    BundleSent,
    CoolingPeriodStarted,
    ResponseRecorded,
)
from therapy_platform.matching.domain.searches import PatientSearch, SearchStatusChanged
from therapy_platform.patients.domain.patient import Patient, PatientDeleted
from therapy_platform.therapists.domain.therapist import Therapist

EVENT_PAYLOADS: Final[dict[str, type[BaseModel]]] = {
    "patient.created": Patient,
    "patient.updated": Patient,
    "patient.deleted": PatientDeleted,
    "therapist.created": Therapist,
    "therapist.imported": Therapist,
    "therapist.updated": Therapist,
    "therapist.blocked": Therapist,
    "therapist.unblocked": Therapist,
    "search.created": PatientSearch,
    "search.updated": PatientSearch,
    "search.status_changed": SearchStatusChanged,
    "bundle.created": Bundle,
    "bundle.sent": BundleSent,
    "bundle.response_received": ResponseRecorded,
    "bundle.expired": Bundle,
    "cooling.period_started": CoolingPeriodStarted,
    "email.queued": EmailEvent,
    "email.sent": EmailEvent,
    "email.failed": EmailEvent,
    "phone_call.scheduled": PhoneCallScheduled,
    "phone_call.completed": PhoneCallCompleted,
}
