"""The unit of work every service's transaction runs in, SQL or in memory.

One transaction per `with` block: the change, its audit rows and its outbox events commit
together or not at all. After `commit()` the unit of work hands the events the transaction wrote
to its after-commit hook (`PublishNow`: publish them at once, best effort) and runs the callbacks
registered with `on_commit` (queueing emails, say). What fails after the commit is logged, never
raised: the change is durable, and the scheduled relay publishes what the hook could not.

The SQL unit of work runs those hooks when the block ends, once its connection is back in the
pool: a function's engine holds one connection (platform.database), and publishing reads the
outbox through it, so a hook run while the block still held the connection would wait for it
until the pool's timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import ClassVar, Self

from sqlalchemy import Connection, Engine

from therapy_platform.platform.database import connect
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.outbox import SqlOutbox, SqlProcessedEvents
from therapy_platform.platform.ports import AfterCommit, Outbox

LOGGER = logging.getLogger(__name__)


class RecordingOutbox:
    """The transaction's outbox, remembering what was written so that the after-commit hook can
    publish exactly those events."""

    def __init__(self, inner: Outbox) -> None:
        self._inner = inner
        self.written: list[EventEnvelope] = []

    def add(self, key: str, envelope: EventEnvelope) -> None:
        self._inner.add(key, envelope)
        self.written.append(envelope)

    def add_many(self, events: Sequence[tuple[str, EventEnvelope]]) -> None:
        self._inner.add_many(events)
        self.written.extend(envelope for _, envelope in events)


class AfterCommitHooks:
    """What happens once a transaction has committed; shared by the SQL unit of work and the
    in-memory ones of the unit tests, so both behave alike."""

    publish: AfterCommit | None = None
    outbox: RecordingOutbox

    def _reset_hooks(self) -> None:
        self._callbacks: list[Callable[[], object]] = []
        self._committed_events: list[EventEnvelope] = []
        self._committed_callbacks: list[Callable[[], object]] = []

    def on_commit(self, callback: Callable[[], object]) -> None:
        self._callbacks.append(callback)

    def _after_commit(self) -> None:
        """Run the hooks for what the transaction just committed."""
        self._set_aside_committed()
        self._run_committed_hooks()

    def _set_aside_committed(self) -> None:
        """Keep what the transaction just committed for `_run_committed_hooks`; what is written
        after this (and may roll back) is not included."""
        self._committed_events.extend(self.outbox.written)
        self._committed_callbacks.extend(self._callbacks)
        self.outbox.written, self._callbacks = [], []

    def _run_committed_hooks(self) -> None:
        events, self._committed_events = self._committed_events, []
        callbacks, self._committed_callbacks = self._committed_callbacks, []
        if events and self.publish is not None:
            try:
                self.publish(events)
            except Exception:
                LOGGER.warning("publishing after commit failed; the scheduled relay will", exc_info=True)
        for callback in callbacks:
            try:
                callback()
            except Exception:
                LOGGER.warning("an after-commit step failed", exc_info=True)


class SqlUnitOfWork(AfterCommitHooks):
    """A service's subclass names its schema (whose outbox it writes) and binds its repositories
    to the block's connection in `_bind`."""

    schema: ClassVar[str]
    processed_events: SqlProcessedEvents

    def __init__(self, engine: Engine, *, publish: AfterCommit | None = None) -> None:
        self._engine = engine
        self.publish = publish

    def _bind(self, connection: Connection) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._connection = connect(self._engine)
        self._transaction = self._connection.begin()
        self.outbox = RecordingOutbox(SqlOutbox(self._connection, self.schema))
        self.processed_events = SqlProcessedEvents(self._connection, self.schema)
        self._reset_hooks()
        self._bind(self._connection)
        return self

    def commit(self) -> None:
        self._transaction.commit()
        self._set_aside_committed()  # the hooks run when the block ends
        # Later work in the same block runs in a new transaction (rounds commit in steps).
        if not self._connection.closed and not self._connection.in_transaction():
            self._transaction = self._connection.begin()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._connection.close()
        # The connection is back in the pool: publishing may read the outbox through it.
        self._run_committed_hooks()
