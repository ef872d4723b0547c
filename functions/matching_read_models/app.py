"""Keeps the matching service's read models of patients and therapists up to date from the
`patient.*` / `therapist.*` events on the bus (delivered through SQS, at least once), and
reacts: an erased patient's search is cancelled, a blocked therapist's drafts are discarded.
Each event is applied and reacted to once, in one transaction with its eventId claim."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.matching import bootstrap
from therapy_platform.platform.metrics_emf import flushed

logger = Logger(service="matching-read-models")
service = bootstrap.build()
consumer = bootstrap.profile_event_consumer(service, logger=logger)


@logger.inject_lambda_context
@flushed(service.metrics)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.handle(event)
