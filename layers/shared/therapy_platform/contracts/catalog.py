"""The catalogue of domain events: event type -> payload contract model. The JSON Schemas in
events/schemas/ are generated from it (infra/tools/event_schemas.py) and checked in CI.

The payload models live in contracts/ (one module per producing service), not in the
services: a change to a service's API or domain model does not change an event, and
tests/unit/test_event_contracts.py proves each producer still sends what its contract says."""

from __future__ import annotations

from typing import Final

from therapy_platform.contracts.base import EventPayload
from therapy_platform.contracts.bundles import (
    BundleResponseReceived,
    BundleSent,
    BundleSnapshot,
    CoolingPeriodStarted,
)
from therapy_platform.contracts.communication import (
    EmailStatusChanged,
    OptOutReceived,
    PhoneCallCompleted,
    PhoneCallScheduled,
)
from therapy_platform.contracts.patients import PatientDeleted, PatientSelfRegistered, PatientSnapshot
from therapy_platform.contracts.searches import SearchSnapshot, SearchStatusChanged
from therapy_platform.contracts.therapists import TherapistDeleted, TherapistSnapshot

EVENT_PAYLOADS: Final[dict[str, type[EventPayload]]] = {
    "patient.created": PatientSnapshot,
    "patient.updated": PatientSnapshot,
    "patient.deleted": PatientDeleted,
    "patient.self_registered": PatientSelfRegistered,
    "therapist.created": TherapistSnapshot,
    "therapist.imported": TherapistSnapshot,
    "therapist.updated": TherapistSnapshot,
    "therapist.blocked": TherapistSnapshot,
    "therapist.unblocked": TherapistSnapshot,
    "therapist.deleted": TherapistDeleted,
    "search.created": SearchSnapshot,
    "search.updated": SearchSnapshot,
    "search.status_changed": SearchStatusChanged,
    "bundle.created": BundleSnapshot,
    "bundle.sent": BundleSent,
    "bundle.response_received": BundleResponseReceived,
    "bundle.expired": BundleSnapshot,
    "cooling.period_started": CoolingPeriodStarted,
    "email.queued": EmailStatusChanged,
    "email.sent": EmailStatusChanged,
    "email.failed": EmailStatusChanged,
    "email.opt_out_received": OptOutReceived,
    "phone_call.scheduled": PhoneCallScheduled,
    "phone_call.completed": PhoneCallCompleted,
}
