"""Composition root of the outbox relays, and the wiring every service's composition root shares
(publishing after commit, the SQS adapter of the consumers).

The Kafka bridge and /health are composed next to their code (`kafka_bridge.build_consumer`,
`health.deployed_checks`): only those two functions import the broker client, which lives in its
own layer. Each builder reads its settings when it is called; handlers call it at module level,
so a missing or invalid variable fails the cold start naming it. Engines and clients are created
lazily, on first use, and kept for the warm environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Engine

from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.eventbridge import default_publisher
from therapy_platform.platform.metrics import FlushedMetrics, RecordingMetrics
from therapy_platform.platform.metrics_emf import EmfMetrics
from therapy_platform.platform.outbox import SqlOutboxStore
from therapy_platform.platform.outbox_relay import PUBLISH_NOW_LIMIT, PublishNow
from therapy_platform.platform.outbox_retry import DEFAULT_RETENTION, OutboxRetryPolicy
from therapy_platform.platform.ports import EventPublisher, OutboxBacklog, RelayOutboxStore
from therapy_platform.platform.settings import OutboxRelaySettings
from therapy_platform.platform.sqs import SqsQueueAdapter

# ---------------------------------------------------------------- shared by the services' roots


def publish_after_commit(
    schema: str,
    *,
    engine: Callable[[], Engine] = default_engine,
    publisher: Callable[[], EventPublisher] = default_publisher,
    limit: int = PUBLISH_NOW_LIMIT,
) -> PublishNow:
    """The after-commit hook of a deployed unit of work writing `schema`'s outbox: publishes the
    events the transaction committed at once (the scheduled relay sweeps what it could not, and
    everything of a transaction that wrote more than `limit` events). Integration tests pass
    their own engine and bus."""
    return PublishNow(store=lambda: SqlOutboxStore(engine(), schema), publisher=publisher, limit=limit)


@cache
def sqs_queues() -> SqsQueueAdapter:
    """The consumers' `queues` (dead letters, retry backoff): one SQS client per warm environment."""
    return SqsQueueAdapter.from_env()


# ---------------------------------------------------------------- outbox relays


@dataclass(frozen=True)
class OutboxRelayService:
    """What the relay of one service's outbox uses; unit tests build one from fakes."""

    schema: str
    store: Callable[[], RelayOutboxStore]
    publisher: Callable[[], EventPublisher]
    backlog: Callable[[], OutboxBacklog]
    policy: OutboxRetryPolicy = field(default_factory=OutboxRetryPolicy)
    retention: timedelta = DEFAULT_RETENTION
    metrics: FlushedMetrics = field(default_factory=RecordingMetrics)  # OutboxLag; the handler flushes
    clock: Callable[[], datetime] = utc_now


def outbox_relay(settings: OutboxRelaySettings | None = None) -> OutboxRelayService:
    """The relay of the outbox in DB_SCHEMA, publishing to EVENT_BUS_NAME as EVENT_SOURCE,
    parking rows after OUTBOX_MAX_ATTEMPTS, purging published rows after OUTBOX_RETENTION_DAYS."""
    settings = settings or OutboxRelaySettings.from_env()
    schema = settings.service_schema
    return OutboxRelayService(
        schema=schema,
        store=lambda: SqlOutboxStore(default_engine(), schema),
        publisher=default_publisher,
        policy=OutboxRetryPolicy(max_attempts=settings.max_attempts),
        retention=timedelta(days=settings.retention_days),
        backlog=lambda: SqlOutboxStore(default_engine(), schema),
        metrics=EmfMetrics(schema),
    )
