"""Therapist service: stores the cooling periods the matching service starts
(`cooling.period_started`, delivered through SQS at least once; see
`therapists.bootstrap.cooling_events_consumer`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.therapists.bootstrap import build, cooling_events_consumer

logger = Logger(service="therapist-service")
service = build()  # unit tests swap in one built from in-memory fakes
consumer = cooling_events_consumer(lambda: service, logger=logger)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.handle(event)
