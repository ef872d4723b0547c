"""Keeps the matching service's read models of patients and therapists up to date from the
`patient.*` / `therapist.*` events on the bus (delivered through SQS, at least once), and
reacts: an erased patient's search is cancelled, a blocked therapist's drafts are discarded."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.matching.adapters.read_models import SqlProfileStore
from therapy_platform.matching.adapters.store import SqlMatchingUnitOfWork
from therapy_platform.matching.use_cases.jobs import react_to_profile_event
from therapy_platform.matching.use_cases.read_models import apply_profile_event
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.events import BusMessage

logger = Logger(service="matching-read-models")
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def _store() -> SqlProfileStore:
    return SqlProfileStore(default_engine())


def _unit_of_work() -> SqlMatchingUnitOfWork:
    return SqlMatchingUnitOfWork(default_engine())


def record_handler(record: SQSRecord) -> None:
    # A body that is not a bus message raises: the record fails, is retried and, after
    # maxReceiveCount, lands in the read-model queue's DLQ for staff to inspect.
    message = BusMessage.model_validate(json.loads(record.body)["detail"])
    changed = apply_profile_event(_store(), message.envelope)
    # Reactions run on every delivery (not only the first): they are idempotent, and a crash
    # between applying and reacting must not lose the reaction.
    acted_on = react_to_profile_event(_unit_of_work(), message.envelope, now=datetime.now(UTC))
    logger.info(
        "profile event applied",
        extra={
            "event_type": message.envelope.event_type,
            "key": message.key,
            "changed": changed,
            "acted_on": [str(i) for i in acted_on],
        },
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
