"""Ports for events: the transactional outbox, the relay's store, the bus and the Kafka sink."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from therapy_platform.platform.events import BusMessage, EventEnvelope


class Outbox(Protocol):
    """Events written in the same transaction as the change they describe."""

    def add(self, key: str, envelope: EventEnvelope) -> None: ...

    def add_many(self, events: Sequence[tuple[str, EventEnvelope]]) -> None: ...


@dataclass(frozen=True)
class OutboxRecord:
    id: int
    message: BusMessage


@dataclass(frozen=True)
class PublishOutcome:
    """Result of publishing one message: `error` is None when the bus accepted it."""

    record_id: int
    error: str | None = None


class OutboxBatch(Protocol):
    """Unpublished outbox rows, locked so that concurrent relays skip them."""

    @property
    def records(self) -> Sequence[OutboxRecord]: ...

    def mark_published(self, record_ids: Sequence[int]) -> None: ...

    def record_failures(self, failures: Sequence[PublishOutcome]) -> None: ...


class OutboxStore(Protocol):
    def claim(
        self, limit: int, *, event_ids: Sequence[uuid.UUID] | None = None
    ) -> AbstractContextManager[OutboxBatch]: ...


class EventPublisher(Protocol):
    def publish(self, records: Sequence[OutboxRecord]) -> list[PublishOutcome]: ...


class EventSink(Protocol):
    """Where bridged events go (Kafka). `send_all` returns one error (or None) per message."""

    def send_all(self, messages: Sequence[tuple[str, str, bytes]]) -> list[str | None]: ...
