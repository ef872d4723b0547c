"""Ports every service shares: the unit of work and its transactional outbox, the record of
events a consumer has handled, the relay's store, the bus and the Kafka sink."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from therapy_platform.platform.events import BusMessage, EventEnvelope


class Outbox(Protocol):
    """Events written in the same transaction as the change they describe."""

    def add(self, key: str, envelope: EventEnvelope) -> None: ...

    def add_many(self, events: Sequence[tuple[str, EventEnvelope]]) -> None: ...


@dataclass(frozen=True)
class OutboxRecord:
    id: int
    message: BusMessage
    attempts: int = 0  # failed attempts so far


@dataclass(frozen=True)
class PublishOutcome:
    """Result of publishing one message: `error` is None when the bus accepted it. `transient`:
    the bus was unreachable or throttling, which says nothing about this message."""

    record_id: int
    error: str | None = None
    transient: bool = False


@dataclass(frozen=True)
class FailedAttempt:
    """What a refused row becomes (platform/outbox_retry.py decides): its attempts, the reason,
    when it is due again (None: at once), or when it was parked (None: not parked)."""

    record_id: int
    attempts: int
    last_error: str
    next_attempt_at: datetime | None
    parked_at: datetime | None


@dataclass(frozen=True)
class ParkedRow:
    """A parked outbox row as staff see it: ids, type and reason, never the payload."""

    id: int
    event_id: uuid.UUID
    event_type: str
    created_at: datetime
    attempts: int
    parked_at: datetime
    last_error: str | None


class OutboxBatch(Protocol):
    """Unpublished outbox rows, locked so that concurrent relays skip them."""

    @property
    def records(self) -> Sequence[OutboxRecord]: ...

    def mark_published(self, record_ids: Sequence[int], at: datetime) -> None: ...

    def record_failures(self, failures: Sequence[FailedAttempt]) -> None: ...


class OutboxStore(Protocol):
    def claim(
        self, limit: int, *, due_at: datetime, event_ids: Sequence[uuid.UUID] | None = None
    ) -> AbstractContextManager[OutboxBatch]:
        """Unpublished, unparked rows whose next attempt is due at `due_at`, oldest first."""
        ...


class OutboxUpkeep(Protocol):
    """What the relay and operators do besides publishing: purge and parked rows."""

    def purge_published(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` rows published before `before`; returns how many."""
        ...

    def parked_count(self) -> int: ...

    def parked(self, limit: int) -> list[ParkedRow]: ...

    def requeue(self, event_ids: Sequence[uuid.UUID]) -> int:
        """Parked rows among `event_ids` become due at once with no attempts; returns how many."""
        ...


class RelayOutboxStore(OutboxStore, OutboxUpkeep, Protocol):
    """The relay function's store: one service's outbox."""


class OutboxBacklog(Protocol):
    """How far behind the relay is: when the oldest row still unpublished was written."""

    def oldest_unpublished_at(self) -> datetime | None: ...


class EventPublisher(Protocol):
    def publish(self, records: Sequence[OutboxRecord]) -> list[PublishOutcome]: ...


class EventSink(Protocol):
    """Where bridged events go (Kafka). `send_all` returns one error (or None) per message."""

    def send_all(self, messages: Sequence[tuple[str, str, bytes | None]]) -> list[str | None]: ...


class ProcessedEvents(Protocol):
    """Which events a consumer has handled (`<schema>.processed_events`): claimed in the same
    transaction as the handler's changes, so a redelivered event changes nothing."""

    def first_time(self, event_id: uuid.UUID, consumer: str, at: datetime) -> bool: ...


AfterCommit = Callable[[Sequence[EventEnvelope]], None]
"""Called with the events a transaction wrote, once it has committed (publish them at once)."""


class UnitOfWork(Protocol):
    """`with uow:` opens the transaction; leaving it without `commit()` rolls everything back.
    Events written to `outbox` are published right after `commit()` by the unit of work's
    after-commit hook (best effort; the scheduled relay publishes what that misses). A service's
    unit of work adds its repositories and audit log."""

    @property
    def outbox(self) -> Outbox: ...

    def on_commit(self, callback: Callable[[], object]) -> None:
        """Run `callback` once this transaction has committed (never if it rolls back)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...
