"""Therapist service: stores the cooling periods the matching service starts
(`cooling.period_started`, a `contracts.bundles` payload delivered through SQS at least once;
applying is idempotent: cooling only ever grows)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.bundles import CoolingPeriodStarted
from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.consumer import Handled, bus_consumer
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.events import BusMessage
from therapy_platform.platform.sqs import SqsQueueAdapter
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.use_cases import apply_matching_cooling

logger = Logger(service="therapist-service")


def store_cooling(message: BusMessage) -> Handled:
    cooling = CoolingPeriodStarted.model_validate(message.envelope.payload)
    outcome = apply_matching_cooling(
        SqlTherapistUnitOfWork(default_engine()),
        cooling.therapist_id,
        cooling.next_contact_allowed_on,
        cause=cooling.cause,
        now=utc_now(),
    )
    detail = {"therapist_id": str(cooling.therapist_id), "changed": bool(outcome and outcome.events)}
    return Handled("", message.envelope.event_type, "done", detail)


consumer = bus_consumer(
    "therapist-matching-events",
    {"cooling.period_started": store_cooling},
    queues=SqsQueueAdapter.from_env,
    dead_letter_queue_url=os.environ.get("DEAD_LETTER_QUEUE_URL") or None,
    logger=logger,
)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.handle(event)
