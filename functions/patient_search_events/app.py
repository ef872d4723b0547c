"""Patient service: the patient's status follows their search (`search.status_changed`,
delivered through SQS at least once; applying is idempotent)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.matching.domain.searches import SearchStatusChanged
from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
from therapy_platform.patients.use_cases import follow_search_status
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.events import BusMessage
from therapy_platform.platform.geography.locator import default_locator

logger = Logger(service="patient-service")
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def _engine() -> Any:
    return default_engine()


def record_handler(record: SQSRecord) -> None:
    message = BusMessage.model_validate(json.loads(record.body)["detail"])
    if message.envelope.event_type != "search.status_changed":
        logger.info("event ignored", extra={"event_type": message.envelope.event_type})
        return
    change = SearchStatusChanged.model_validate(message.envelope.payload)
    result = follow_search_status(
        SqlPatientUnitOfWork(_engine()),
        change.patient_id,
        change.status.value,
        geocoder=default_locator(),
        now=datetime.now(UTC),
    )
    logger.info(
        "patient status follows search",
        extra={
            "patient_id": str(change.patient_id),
            "search_status": change.status.value,
            "changed": bool(result.events),
        },
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
