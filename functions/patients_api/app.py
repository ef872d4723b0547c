"""Patient service REST API: POST /api/v2/patients, GET /api/v2/patients/{patient_id}."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from typing_extensions import Annotated

from therapy_platform.adapters.database import default_engine
from therapy_platform.adapters.eventbridge import EventBridgePublisher
from therapy_platform.adapters.outbox import SqlOutboxStore
from therapy_platform.adapters.patients import SqlPatientUnitOfWork
from therapy_platform.adapters.tables import PATIENT_SCHEMA
from therapy_platform.api.rest import create_resolver
from therapy_platform.domain.patients import Patient, PatientDraft
from therapy_platform.logic.outbox_relay import relay_outbox
from therapy_platform.logic.patients import get_patient, register_patient
from therapy_platform.settings import EventBusSettings

logger = Logger(service="patient-service")
app = create_resolver(logger)


@cache
def _publisher() -> EventBridgePublisher:
    settings = EventBusSettings.from_env()
    return EventBridgePublisher.from_settings(settings.bus_name, settings.source)


@app.post("/api/v2/patients")
def create_patient(draft: PatientDraft) -> Response[Patient]:
    patient, event = register_patient(SqlPatientUnitOfWork(default_engine()), draft, now=datetime.now(UTC))
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
    return get_patient(SqlPatientUnitOfWork(default_engine()), patient_id)


def _publish_now(event_id: uuid.UUID) -> None:
    """Publish the event we just committed without waiting for the scheduled relay.
    Best effort: if the bus is unreachable the row stays in the outbox for the relay."""
    try:
        report = relay_outbox(SqlOutboxStore(default_engine(), PATIENT_SCHEMA), _publisher(), event_ids=[event_id])
        if report.failed:
            logger.warning("event left in outbox for the relay", extra={"errors": report.errors})
    except Exception:  # noqa: BLE001 - the change is committed; the relay will publish it later
        logger.warning("immediate publish failed; the scheduled relay will retry", exc_info=True)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
