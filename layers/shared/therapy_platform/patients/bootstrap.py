"""Composition root of the patient service: what its functions use, as deployed.

`build()` gives the `PatientService` the API handler works with: the PostgreSQL unit of work in
`patient_service` whose committed events are published at once (after-commit hook; the scheduled
relay sends what that misses), the in-process geocoder (postcode centroids offline, Nominatim
only when NOMINATIM_ENABLED=true, no cache: docs/geocoding.md) and the clock.
`search_events_consumer()` is the consumer of `search.status_changed` (the patient's status
follows the search), once per eventId in the patient's transaction. Nothing connects while
building: the engine and the AWS clients are created on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from sqlalchemy import Engine

from therapy_platform.contracts.personal_data import InvokedParts
from therapy_platform.patients.adapters.field_cipher import default_field_cipher
from therapy_platform.patients.adapters.parked_registrations import SqlParkedRegistrations
from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
from therapy_platform.patients.adapters.tables import PATIENT_SCHEMA
from therapy_platform.patients.intake_settings import IntakeSettings
from therapy_platform.patients.ports import FieldCipher, PatientUnitOfWork
from therapy_platform.patients.settings import PatientSettings
from therapy_platform.patients.use_cases import PatientService, follow_search_status
from therapy_platform.platform.bootstrap import publish_after_commit, sqs_queues
from therapy_platform.platform.consumer import (
    Handled,
    QueueConsumer,
    QueueControl,
    bus_consumer,
    once_per_event,
)
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.eventbridge import default_publisher
from therapy_platform.platform.events import BusMessage, EventEnvelope
from therapy_platform.platform.geography.locator import default_locator
from therapy_platform.platform.idempotency import SqlIdempotencyStore
from therapy_platform.platform.lambda_invoke import default_functions
from therapy_platform.platform.ports import EventPublisher

LOGGER = logging.getLogger(__name__)
SETTINGS = PatientSettings.from_env()  # at import = cold start: a bad variable fails naming it

SEARCH_EVENTS_CONSUMER: Final = "patient-search-events"

__all__ = ["SEARCH_EVENTS_CONSUMER", "SETTINGS", "PatientService", "build", "search_events_consumer"]


def build(
    settings: PatientSettings = SETTINGS,
    *,
    engine: Callable[[], Engine] = default_engine,
    publisher: Callable[[], EventPublisher] = default_publisher,
    cipher: Callable[[], FieldCipher] = default_field_cipher,
) -> PatientService:
    """The deployed service (tests pass their own engine, bus and field cipher). Patient fields
    in `ENCRYPTED_FIELDS` are sealed with FIELD_ENCRYPTION_KEY_ID's data keys (field_cipher.py)."""
    publish = publish_after_commit(PATIENT_SCHEMA, engine=engine, publisher=publisher)
    return PatientService(
        unit_of_work=lambda: SqlPatientUnitOfWork(engine(), publish=publish, cipher=cipher()),
        geocoder=default_locator(settings.nominatim),
        personal_data_parts=InvokedParts(_invoke, settings.personal_data.names()),
    )


def _invoke(function_name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    return default_functions().invoke(function_name, payload)


def search_events_consumer(
    settings: PatientSettings = SETTINGS,
    *,
    service: PatientService | None = None,
    queues: Callable[[], QueueControl] = sqs_queues,
    logger: logging.Logger | Any = LOGGER,
) -> QueueConsumer[BusMessage]:
    """The patient's status follows their search (`search.status_changed`, delivered through SQS
    at least once): each event is applied once, in one transaction with its eventId claim in
    `patient_service.processed_events`. Tests pass a service and queues of in-memory fakes."""
    service = service if service is not None else build(settings)

    def follow(uow: PatientUnitOfWork, envelope: EventEnvelope) -> Handled:
        outcome = follow_search_status(uow, envelope, geocoder=service.geocoder, now=service.clock())
        detail = {
            "patient_id": str(envelope.payload.get("patient_id")),
            "search_status": str(envelope.payload.get("status")),
            "changed": bool(outcome.events),
        }
        return Handled("", envelope.event_type, "done", detail)

    return bus_consumer(
        SEARCH_EVENTS_CONSUMER,
        once_per_event(
            SEARCH_EVENTS_CONSUMER,
            service.unit_of_work,
            {"search.status_changed": follow},
        ),
        queues=queues,
        dead_letter_queue_url=settings.consumer.dead_letter_queue_url,
        retry=settings.consumer.retry_policy(),
        logger=logger,
    )


def idempotency_keys() -> SqlIdempotencyStore:
    """The `Idempotency-Key`s of this service's creating POSTs (table `idempotency_keys` in its schema)."""
    return SqlIdempotencyStore(default_engine, PATIENT_SCHEMA)


def parked_registrations() -> SqlParkedRegistrations:
    """Self-registrations that did not become a patient (`patient_service.parked_registrations`)."""
    return SqlParkedRegistrations(default_engine)


def registration_secret(settings: IntakeSettings) -> Callable[[], bytes]:
    """The HMAC key of the website's signatures, read from Secrets Manager when first needed
    (Powertools caches it for REGISTRATION_SECRET_MAX_AGE seconds)."""

    def read() -> bytes:
        from aws_lambda_powertools.utilities import parameters  # boto3 only when it is used

        value = parameters.get_secret(settings.secret_arn, max_age=settings.secret_max_age)
        return value.encode("utf-8") if isinstance(value, str) else bytes(value)

    return read
