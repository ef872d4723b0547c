"""The communication service's reactions to other services' events (use_cases/events.py):
bundle inquiries by email or phone-call task, closing bundles, conflict and unknown-location
alerts, withdrawal notices, patient emails on search start and placement, contact read models.

Bus rule -> SQS -> this function, on the platform's consumer runtime (bootstrap.events_consumer):
each event reacts once per eventId in one transaction with its claim; a message whose contact
has not arrived yet, or that fails for any other reason, is offered again after a backoff
(partial batch failures); an unreadable one goes to the dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.bootstrap import build_follow_up, events_consumer, stored_mail

logger = Logger(service="communication-events")
service = build_follow_up(stored_mail=stored_mail())
consumer = events_consumer(lambda: service, logger=logger)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.handle(event)
