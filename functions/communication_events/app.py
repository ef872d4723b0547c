"""Communication service's reactions to other services' events (logic/communication_events.py):
bundle inquiries by email or phone-call task, closing bundles, conflict and unknown-location
alerts, withdrawal notices, patient emails on search start and placement, contact read models.

SQS batch (bus rule -> queue -> this function) with partial failures: a message whose contact
has not arrived yet, or that fails for any other reason, is reported failed and offered again
after the visibility timeout; after maxReceiveCount it lands in the dead-letter queue. A
redelivered event finds its eventId in `processed_events` and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.bootstrap import default_context
from therapy_platform.communication.use_cases.events import (
    CommunicationContext,
    ContactMissingError,
    describe,
    handle_event,
)
from therapy_platform.platform.events import BusMessage

logger = Logger(service="communication-events")
processor = BatchProcessor(event_type=EventType.SQS)


@dataclass
class Dependencies:
    """What the handler uses; unit tests swap in fakes."""

    context: Callable[[], CommunicationContext]


dependencies = Dependencies(context=default_context)


def record_handler(record: SQSRecord) -> None:
    # A body that is not a bus message raises: the record fails on every receive and reaches the
    # dead-letter queue after maxReceiveCount.
    message = BusMessage.model_validate(json.loads(record.body)["detail"])
    try:
        outcome = handle_event(dependencies.context(), message.envelope)
    except ContactMissingError as error:
        logger.warning(
            "contact not known yet; the event is tried again later",
            extra={"event_type": message.envelope.event_type, "key": message.key, "reason": str(error)},
        )
        raise
    logger.info("event handled", extra={"key": message.key, **describe(outcome)})


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
