"""Bridge from the event bus (delivered through SQS) to Kafka topics: what is Kafka-specific.

Each SQS message carries an EventBridge event whose `detail` is a BusMessage. The consumer
runtime (platform/consumer.py) decodes the batch, dead-letters poison and sets the backoff; this
module says what the bridge does with the decoded events:
- every event goes to its family's topic, keyed by the entity id, as the envelope's wire form;
  the whole batch goes to the broker in one round trip;
- an erasure (`patient.deleted`) is followed by a tombstone (the patient id as key, a null
  value) on the same compacted topic: compaction then drops every earlier record of that
  patient, and the tombstone itself after `delete.retention.ms` (platform/kafka_topics.py);
- an event type without a topic can never be delivered: poison (to the dead-letter queue with
  the reason) instead of being retried;
- an event the broker did not take is offered again after the backoff (RetryLaterError).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from therapy_platform.platform.bootstrap import sqs_queues
from therapy_platform.platform.consumer import (
    Delivery,
    PoisonMessageError,
    QueueConsumer,
    QueueControl,
    RetryLaterError,
    RetryPolicy,
    bus_event_kind,
    decode_bus_message,
)
from therapy_platform.platform.events import BusMessage, UnknownEventTypeError, topic_for
from therapy_platform.platform.kafka import KafkaEventSink
from therapy_platform.platform.ports import EventSink
from therapy_platform.platform.settings import ConsumerSettings, KafkaSettings

LOGGER = logging.getLogger(__name__)
CONSUMER_NAME = "kafka-bridge"


def decode_bridgeable(body: str) -> BusMessage:
    """A bus message whose event type has a topic; anything else is poison, with the reason."""
    message = decode_bus_message(body)
    try:
        topic_for(message.envelope.event_type)
    except UnknownEventTypeError as error:
        raise PoisonMessageError(str(error)) from error
    return message


# Erasures whose topic is compacted by the erased person's id: the bridge writes a tombstone.
TOMBSTONE_EVENTS: Final = frozenset({"patient.deleted"})


def kafka_record(message: BusMessage) -> tuple[str, str, bytes]:
    """(topic, key, value) of one event: consumers key by entity id to keep its events in order."""
    value = json.dumps(message.envelope.to_wire(), separators=(",", ":")).encode()
    return topic_for(message.envelope.event_type), message.key, value


def kafka_records(message: BusMessage) -> list[tuple[str, str, bytes | None]]:
    """The records of one event: the event, and after an erasure the tombstone keyed by the
    erased entity's id (same topic and key, so the same partition, after the event)."""
    topic, key, value = kafka_record(message)
    records: list[tuple[str, str, bytes | None]] = [(topic, key, value)]
    if message.envelope.event_type in TOMBSTONE_EVENTS:
        erased = str(message.envelope.payload.get("id") or key)
        records.append((topic, erased, None))
    return records


@dataclass(frozen=True)
class KafkaBridge:
    """The bridge's batch handler: sends every decoded event of the batch at once and answers,
    per SQS message id, None (the broker acknowledged it) or RetryLaterError."""

    sink: Callable[[], EventSink]

    def __call__(self, batch: Sequence[tuple[Delivery, BusMessage]]) -> dict[str, Exception | None]:
        per_message = [kafka_records(message) for _, message in batch]
        errors = iter(self.sink().send_all([record for records in per_message for record in records]))
        answers: dict[str, Exception | None] = {}
        for (delivery, _), records in zip(batch, per_message, strict=True):
            # A message is done when every one of its records was taken (a retry resends the
            # event and its tombstone: both are idempotent for a consumer and for compaction).
            failed = [error for error in (next(errors) for _ in records) if error is not None]
            answers[delivery.message_id] = (
                RetryLaterError(f"broker did not take it: {failed[0]}") if failed else None
            )
        return answers


def kafka_bridge_consumer(
    sink: Callable[[], EventSink],
    *,
    queues: Callable[[], QueueControl] | None = None,
    dead_letter_queue_url: str | None = None,
    retry: RetryPolicy | None = None,
    logger: logging.Logger | Any = LOGGER,
) -> QueueConsumer[BusMessage]:
    """The Kafka bridge on the consumer runtime (`sink` is called once per batch, lazily: the
    producer connects on first use)."""
    return QueueConsumer(
        name=CONSUMER_NAME,
        decode=decode_bridgeable,
        kind_of=bus_event_kind,
        batch_handler=KafkaBridge(sink),
        queues=queues,
        dead_letter_queue_url=dead_letter_queue_url,
        retry=retry or RetryPolicy(),
        logger=logger,
    )


def build_consumer(logger: logging.Logger | Any) -> QueueConsumer[BusMessage]:
    """The deployed bridge (KAFKA_*, DEAD_LETTER_QUEUE_URL, RETRY_BASE/MAX_SECONDS), read at cold
    start; the producer connects on the first batch."""
    settings = ConsumerSettings.from_env()
    sink = KafkaEventSink(KafkaSettings.from_env())
    return kafka_bridge_consumer(
        lambda: sink,
        queues=sqs_queues,
        dead_letter_queue_url=settings.dead_letter_queue_url,
        retry=settings.retry_policy(),
        logger=logger,
    )
