"""Kafka bridge: consumes the bus's SQS queue and produces each event to its Kafka topic.

Partial batch failures: messages the broker could not take are reported back to SQS and made
visible again with exponential backoff; poison messages go straight to the dead-letter queue.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SqsModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.platform.kafka import KafkaEventSink
from therapy_platform.platform.kafka_bridge import QueuedEvent, bridge_batch, retry_delay_seconds
from therapy_platform.platform.settings import BridgeSettings, KafkaSettings
from therapy_platform.platform.sqs import SqsQueueAdapter

logger = Logger(service="kafka-bridge")


@cache
def _sink() -> KafkaEventSink:
    return KafkaEventSink(KafkaSettings.from_env())


@cache
def _queues() -> SqsQueueAdapter:
    return SqsQueueAdapter.from_env()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = BridgeSettings.from_env()
    batch = parse(event=event, model=SqsModel)
    queued = [
        QueuedEvent(
            message_id=record.messageId,
            body=str(record.body),
            receive_count=int(record.attributes.ApproximateReceiveCount),
        )
        for record in batch.Records
    ]
    receipts = {record.messageId: (record.receiptHandle, record.eventSourceARN) for record in batch.Records}
    counts = {item.message_id: item.receive_count for item in queued}
    report = bridge_batch(queued, _sink())

    failures = [message_id for message_id, _ in report.retry]
    bodies = {item.message_id: item.body for item in queued}
    for message_id, reason in report.poison:
        logger.error(
            "poison message sent to the dead-letter queue", extra={"message_id": message_id, "reason": reason}
        )
        try:
            _queues().send_to_dead_letter(settings.dead_letter_queue_url, bodies[message_id], reason)
        except Exception:
            logger.exception("could not dead-letter the message; leaving it to SQS redrive")
            failures.append(message_id)
    for message_id, error in report.retry:
        delay = retry_delay_seconds(
            counts[message_id], base=settings.retry_base_seconds, cap=settings.retry_max_seconds
        )
        receipt, queue_arn = receipts[message_id]
        _queues().delay_retry(queue_arn, receipt, delay)
        logger.warning(
            "broker did not take the event; retrying",
            extra={"message_id": message_id, "error": error, "retry_in_s": delay},
        )
    logger.info(
        "bridge batch done",
        extra={"delivered": len(report.delivered), "retry": len(report.retry), "poison": len(report.poison)},
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
