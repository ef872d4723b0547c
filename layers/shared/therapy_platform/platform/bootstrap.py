"""Composition root of the platform's own functions (Kafka bridge, outbox relays, health) and the
wiring every service's composition root shares (publishing after commit, the SQS adapter).

Each builder reads its settings when it is called; handlers call it at module level, so a missing
or invalid variable fails the cold start naming it. Engines and clients are created lazily, on
first use, and kept for the warm environment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from therapy_platform.platform.consumer import QueueConsumer
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.eventbridge import default_publisher
from therapy_platform.platform.events import BusMessage
from therapy_platform.platform.health import Check
from therapy_platform.platform.kafka import KafkaEventSink
from therapy_platform.platform.kafka_bridge import kafka_bridge_consumer
from therapy_platform.platform.outbox import SqlOutboxStore
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.platform.ports import EventPublisher, OutboxStore
from therapy_platform.platform.settings import (
    ConsumerSettings,
    EventBusSettings,
    KafkaSettings,
    OutboxRelaySettings,
)
from therapy_platform.platform.sqs import SqsQueueAdapter

# ---------------------------------------------------------------- shared by the services' roots


def publish_after_commit(schema: str) -> PublishNow:
    """The after-commit hook of a deployed unit of work writing `schema`'s outbox: publishes the
    events the transaction committed at once (the scheduled relay sweeps what it could not)."""
    return PublishNow(store=lambda: SqlOutboxStore(default_engine(), schema), publisher=default_publisher)


@cache
def sqs_queues() -> SqsQueueAdapter:
    """The consumers' `queues` (dead letters, retry backoff): one SQS client per warm environment."""
    return SqsQueueAdapter.from_env()


# ---------------------------------------------------------------- the Kafka bridge


def kafka_bridge(logger: logging.Logger | Any) -> QueueConsumer[BusMessage]:
    """The bus-to-Kafka consumer (KAFKA_*, DEAD_LETTER_QUEUE_URL, RETRY_BASE/MAX_SECONDS)."""
    settings = ConsumerSettings.from_env()
    sink = KafkaEventSink(KafkaSettings.from_env())  # connects on the first batch
    return kafka_bridge_consumer(
        lambda: sink,
        queues=sqs_queues,
        dead_letter_queue_url=settings.dead_letter_queue_url,
        retry=settings.retry_policy(),
        logger=logger,
    )


# ---------------------------------------------------------------- outbox relays


@dataclass(frozen=True)
class OutboxRelayService:
    """What the relay of one service's outbox uses; unit tests build one from fakes."""

    schema: str
    store: Callable[[], OutboxStore]
    publisher: Callable[[], EventPublisher]


def outbox_relay(settings: OutboxRelaySettings | None = None) -> OutboxRelayService:
    """The relay of the outbox in DB_SCHEMA, publishing to EVENT_BUS_NAME as EVENT_SOURCE."""
    settings = settings or OutboxRelaySettings.from_env()
    schema = settings.service_schema
    return OutboxRelayService(
        schema=schema,
        store=lambda: SqlOutboxStore(default_engine(), schema),
        publisher=default_publisher,
    )


# ---------------------------------------------------------------- health


def _database_answers() -> None:
    from sqlalchemy import text

    with default_engine().connect() as connection:
        connection.execute(text("SELECT 1"))


def _bus_answers(bus_name: str) -> Check:
    def check() -> None:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 1})
        boto3.client("events", config=config).describe_event_bus(Name=bus_name)

    return check


def health_checks() -> dict[str, Check]:
    """The dependencies /health reports on (EVENT_BUS_NAME, KAFKA_*; the database as configured)."""
    bus = EventBusSettings.from_env()
    broker = KafkaEventSink(KafkaSettings.from_env())
    return {"database": _database_answers, "bus": _bus_answers(bus.bus_name), "broker": broker.check}
