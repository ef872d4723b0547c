"""Patient service: the patient's status follows their search (`search.status_changed`,
delivered through SQS at least once; each event is applied once, a redelivery changes nothing).
The consumer is built by therapy_platform.patients.bootstrap."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.patients.bootstrap import search_events_consumer

logger = Logger(service="patient-service")
consumer = search_events_consumer(logger=logger)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.handle(event)
