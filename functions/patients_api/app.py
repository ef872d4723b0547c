"""Patient service REST API: POST /api/v2/patients, GET /api/v2/patients/{patient_id}."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.adapters.database import default_engine
from therapy_platform.adapters.eventbridge import EventBridgePublisher
from therapy_platform.adapters.outbox import SqlOutboxStore
from therapy_platform.adapters.patients import SqlPatientUnitOfWork
from therapy_platform.adapters.tables import PATIENT_SCHEMA
from therapy_platform.api.rest import create_resolver
from therapy_platform.domain.patients import Patient, PatientDraft
from therapy_platform.logic.outbox_relay import relay_outbox
from therapy_platform.logic.patients import get_patient, register_patient
from therapy_platform.ports import EventPublisher, OutboxStore, PatientUnitOfWork
from therapy_platform.settings import EventPublisherSettings

logger = Logger(service="patient-service")
app = create_resolver(logger)


@dataclass
class Dependencies:
    """Adapters the routes use; unit tests swap in in-memory fakes."""

    unit_of_work: Callable[[], PatientUnitOfWork]
    outbox_store: Callable[[], OutboxStore]
    publisher: Callable[[], EventPublisher]


@cache
def _publisher() -> EventBridgePublisher:
    settings = EventPublisherSettings.from_env()
    return EventBridgePublisher.from_settings(settings.bus_name, settings.source)


deps = Dependencies(
    unit_of_work=lambda: SqlPatientUnitOfWork(default_engine()),
    outbox_store=lambda: SqlOutboxStore(default_engine(), PATIENT_SCHEMA),
    publisher=_publisher,
)


@app.post("/api/v2/patients")
def create_patient(draft: PatientDraft) -> Response[Patient]:
    patient, event = register_patient(deps.unit_of_work(), draft, now=datetime.now(UTC))
    logger.info("patient registered", extra={"patient_id": str(patient.id)})
    _publish_now(event.event_id)
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=patient,
        headers={"Location": f"/api/v2/patients/{patient.id}"},
    )


@app.get("/api/v2/patients/<patient_id>")
def read_patient(patient_id: Annotated[uuid.UUID, Path(description="Patient id (UUID)")]) -> Patient:
    return get_patient(deps.unit_of_work(), patient_id)


def _publish_now(event_id: uuid.UUID) -> None:
    """Publish the event we just committed without waiting for the scheduled relay.
    Best effort: if the bus is unreachable the row stays in the outbox for the relay."""
    try:
        report = relay_outbox(deps.outbox_store(), deps.publisher(), event_ids=[event_id])
        if report.failed:
            logger.warning("event left in outbox for the relay", extra={"errors": report.errors})
    except Exception:
        logger.warning("immediate publish failed; the scheduled relay will retry", exc_info=True)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
