"""Therapist service: stores the cooling periods the matching service starts
(`cooling.period_started`, delivered through SQS at least once; applying is idempotent)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.matching.domain.bundles import CoolingPeriodStarted
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.events import BusMessage
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.use_cases import apply_matching_cooling

logger = Logger(service="therapist-service")
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def _engine() -> Any:
    return default_engine()


def record_handler(record: SQSRecord) -> None:
    message = BusMessage.model_validate(json.loads(record.body)["detail"])
    if message.envelope.event_type != "cooling.period_started":
        logger.info("event ignored", extra={"event_type": message.envelope.event_type})
        return
    cooling = CoolingPeriodStarted.model_validate(message.envelope.payload)
    outcome = apply_matching_cooling(
        SqlTherapistUnitOfWork(_engine()),
        uuid.UUID(str(cooling.therapist_id)),
        date.fromisoformat(str(cooling.next_contact_allowed_on)),
        cause=cooling.cause,
        now=datetime.now(UTC),
    )
    logger.info(
        "cooling period applied",
        extra={"therapist_id": str(cooling.therapist_id), "changed": bool(outcome and outcome.events)},
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
