"""The unit of work every service's transaction runs in, SQL or in memory.

One transaction per `with` block: the change, its audit rows and its outbox events commit
together or not at all. Once the block has committed and given its connection back, the unit of
work hands the events the transaction wrote to its after-commit hook (`PublishNow`: publish them
at once, best effort) and runs the callbacks registered with `on_commit` (queueing emails, say).
What fails after the commit is logged, never raised: the change is durable, and the scheduled
relay publishes what the hook could not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import ClassVar, Self

from sqlalchemy import Connection, Engine, Transaction
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from therapy_platform.platform.database import connect
from therapy_platform.platform.errors import ConflictError, DependencyUnavailableError
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
    in-memory ones of the unit tests, so both behave alike. `commit()` marks what the transaction
    wrote as committed; the hooks run once the connection is given back (`_run_after_commit`),
    because a Lambda's pool holds one connection and publishing needs it to claim outbox rows."""

    publish: AfterCommit | None = None
    outbox: RecordingOutbox

    def _reset_hooks(self) -> None:
        self._callbacks: list[Callable[[], object]] = []
        self._committed_events: list[EventEnvelope] = []
        self._committed_callbacks: list[Callable[[], object]] = []

    def on_commit(self, callback: Callable[[], object]) -> None:
        self._callbacks.append(callback)

    def _mark_committed(self) -> None:
        self._committed_events.extend(self.outbox.written)
        self.outbox.written = []
        self._committed_callbacks.extend(self._callbacks)
        self._callbacks = []

    def _discard_uncommitted(self) -> None:
        self.outbox.written = []
        self._callbacks = []

    def _run_after_commit(self) -> None:
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

    def _after_commit(self) -> None:
        """Commit-time hooks for in-memory units of work, which hold no connection."""
        self._mark_committed()
        self._run_after_commit()


def refusal(error: DBAPIError) -> str:
    """Why the database refused a statement, without the values (they may be personal data):
    the violated constraint's name, else the SQLSTATE code. (pg8000 puts the server's error
    fields in args[0].)"""
    details = error.orig.args[0] if error.orig is not None and error.orig.args else None
    if isinstance(details, dict) and details.get("n"):
        return f"the database refused the values (constraint {details['n']})"
    if isinstance(details, dict) and details.get("C"):
        return f"the database refused a value (SQLSTATE {details['C']})"
    return "the database refused the values (a constraint)"


class SqlUnitOfWork(AfterCommitHooks):
    """A service's subclass names its schema (whose outbox it writes) and binds its repositories
    to the block's connection in `_bind`."""

    schema: ClassVar[str]
    processed_events: SqlProcessedEvents

    def __init__(
        self,
        engine: Engine,
        *,
        publish: AfterCommit | None = None,
        shared: SharedTransaction | None = None,
    ) -> None:
        self._engine = engine
        self.publish = publish
        self._shared = shared

    def _bind(self, connection: Connection) -> None:
        raise NotImplementedError

    def _bind_stage(self, stage: ChunkStage) -> None:
        """Replace the repositories `_bind` bound with the stage's (a service with a stage
        overrides this)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._transaction: Transaction | None
        self._stage = self._shared.stage if self._shared is not None else None
        if self._stage is not None:
            # A staged chunk (ChunkStage): no savepoint; writes are held in memory.
            assert self._shared is not None
            self._connection = self._shared.connection()
            self._transaction = None
            self.outbox = RecordingOutbox(self._stage.outbox)
            self.processed_events = SqlProcessedEvents(self._connection, self.schema)
            self._reset_hooks()
            self._bind(self._connection)
            self._bind_stage(self._stage)
            return self
        if self._shared is not None:
            # A savepoint in the shared transaction: commit releases it, leaving rolls back to it.
            self._connection = self._shared.connection()
            self._transaction = self._connection.begin_nested()
        else:
            self._connection = connect(self._engine)
            self._transaction = self._connection.begin()
        self.outbox = RecordingOutbox(SqlOutbox(self._connection, self.schema))
        self.processed_events = SqlProcessedEvents(self._connection, self.schema)
        self._reset_hooks()
        self._bind(self._connection)
        return self

    def commit(self) -> None:
        if self._stage is not None:
            self._stage.commit_row()
            self._mark_committed()
            return
        assert self._transaction is not None
        self._transaction.commit()
        self._mark_committed()
        # Later work in the same block runs in a new transaction (rounds commit in steps); in a
        # shared transaction it joins that one directly (no savepoint of its own: the units of
        # work of a bulk load commit last, and two round trips per row are saved).
        if self._shared is None and not self._connection.closed and not self._connection.in_transaction():
            self._transaction = self._connection.begin()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._shared is not None:
            try:
                if self._stage is not None:
                    self._stage.discard_row()
                elif self._transaction is not None and self._transaction.is_active:
                    self._transaction.rollback()
            finally:
                self._discard_uncommitted()
            # Durable only when the shared transaction commits: its hooks run then.
            events, self._committed_events = self._committed_events, []
            callbacks, self._committed_callbacks = self._committed_callbacks, []
            self._shared.defer(self.publish, events, callbacks)
            if (
                self._stage is None
                and isinstance(exc, DBAPIError)
                and not isinstance(exc, (OperationalError, InterfaceError))
            ):
                # A row of a bulk write the database refused (a constraint, a value it cannot
                # store): its savepoint is rolled back; the row is rejected, the others go on.
                raise ConflictError(refusal(exc)) from exc
            return
        try:
            if self._transaction is not None and self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._connection.close()
            self._discard_uncommitted()
        # The connection is back in the pool: now publish what committed (even if the block
        # raised after a commit: those events are durable).
        self._run_after_commit()


class SharedTransaction:
    """One connection and one transaction that many units of work join, each as a savepoint
    (`SqlUnitOfWork(engine, shared=...)`): what one of them commits is released into the shared
    transaction, what fails rolls back to its savepoint and leaves the others' work alone.
    Nothing is durable until `commit()`; the units' after-commit hooks (publishing, callbacks)
    run then (each publish hook once, with the events of every unit that used it, in order), and
    are dropped by `rollback()`. Used by the operators' bulk loads to commit a
    chunk of rows at a time (platform/bulk_load.py)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._transaction: Transaction | None = None
        self._deferred: list[tuple[AfterCommit | None, list[EventEnvelope], list[Callable[[], object]]]] = []
        self.stage: ChunkStage | None = None  # while set, joining units of work write to it

    def connection(self) -> Connection:
        """The shared connection, in its transaction (begun on first use)."""
        if self._connection is None:
            self._connection = connect(self._engine)
        if self._transaction is None or not self._transaction.is_active:
            self._transaction = self._connection.begin()
        return self._connection

    def defer(
        self, publish: AfterCommit | None, events: list[EventEnvelope], callbacks: list[Callable[[], object]]
    ) -> None:
        if events or callbacks:
            self._deferred.append((publish, events, callbacks))

    def commit(self) -> None:
        """Commit what the units released so far, then run their after-commit hooks. A lost
        connection becomes DependencyUnavailableError; nothing of this transaction is kept."""
        transaction, self._transaction = self._transaction, None
        if transaction is not None and transaction.is_active:
            try:
                transaction.commit()
            except (OperationalError, InterfaceError) as error:
                self._deferred = []
                self.close()
                raise DependencyUnavailableError("the database connection was lost") from error
        deferred, self._deferred = self._deferred, []
        # One publish per hook for the whole chunk (one outbox claim, PutEvents in parallel), not
        # one per unit of work: per row, the claims cost more than the chunk's writes.
        batches: list[tuple[AfterCommit, list[EventEnvelope]]] = []
        for publish, events, _ in deferred:
            if events and publish is not None:
                if batches and batches[-1][0] is publish:
                    batches[-1][1].extend(events)
                else:
                    batches.append((publish, list(events)))
        for publish, events in batches:
            try:
                publish(events)
            except Exception:
                LOGGER.warning("publishing after commit failed; the scheduled relay will", exc_info=True)
        for _, _, callbacks in deferred:
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    LOGGER.warning("an after-commit step failed", exc_info=True)

    def rollback(self) -> None:
        transaction, self._transaction = self._transaction, None
        self._deferred = []
        if transaction is not None and transaction.is_active:
            try:
                transaction.rollback()
            except (OperationalError, InterfaceError):
                LOGGER.warning("rolling back the shared transaction failed", exc_info=True)

    def close(self) -> None:
        self.rollback()
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except (OperationalError, InterfaceError):
                LOGGER.warning("closing the shared connection failed", exc_info=True)


class StagedOutbox:
    """The outbox of a staged chunk: a row's events, kept when the row commits."""

    def __init__(self, stage: ChunkStage) -> None:
        self._stage = stage

    def add(self, key: str, envelope: EventEnvelope) -> None:
        self._stage.later(lambda: self._stage.events.append((key, envelope)))

    def add_many(self, events: Sequence[tuple[str, EventEnvelope]]) -> None:
        kept = list(events)
        self._stage.later(lambda: self._stage.events.extend(kept))


class ChunkStage:
    """The writes of a chunk of bulk-loaded rows, held in memory and written set-based at the
    chunk's end (one statement per table) instead of several statements per row.

    While a SharedTransaction's `stage` is set, the units of work joining it bind the stage's
    repositories (`SqlUnitOfWork._bind_stage`): reads answer from what `begin` fetched for the
    whole chunk at once (a service's stage reads every record the chunk's rows may match, and
    sees the rows staged before), writes are recorded per row: kept when the row's unit of work
    commits (`commit_row`), dropped when it does not (`discard_row`), as a savepoint would.
    `flush` writes the kept rows; if the database refuses any of it (ConflictError), the caller
    rolls the chunk back and loads it again row by row with savepoints, which finds the row."""

    def __init__(self, shared: SharedTransaction, schema: str) -> None:
        self.shared = shared
        self.schema = schema
        self.outbox = StagedOutbox(self)
        self.events: list[tuple[str, EventEnvelope]] = []
        self._row: list[Callable[[], None]] = []

    def later(self, apply: Callable[[], None]) -> None:
        """Apply when the current row commits."""
        self._row.append(apply)

    def commit_row(self) -> None:
        applies, self._row = self._row, []
        for apply in applies:
            apply()

    def discard_row(self) -> None:
        self._row = []

    def _clear(self) -> None:
        """Forget the chunk (a service's stage clears its own records too)."""
        self.events = []
        self._row = []

    def _start(self) -> Connection:
        """Forget the last chunk and join the shared transaction: its units of work stage."""
        self._clear()
        self.shared.stage = self
        return self.shared.connection()

    def _write(self, connection: Connection) -> None:
        """The service's tables, then `_write_events`."""
        self._write_events(connection)

    def _write_events(self, connection: Connection) -> None:
        if self.events:
            SqlOutbox(connection, self.schema).add_many(self.events)

    def flush(self) -> None:
        """Write what the chunk's rows committed. ConflictError: the database refused a value
        (the transaction is then unusable: roll back); DependencyUnavailableError: it is gone."""
        try:
            self._write(self.shared.connection())
        except (OperationalError, InterfaceError) as error:
            raise DependencyUnavailableError("the database connection was lost") from error
        except DBAPIError as error:
            # Rare (a value only the database checks); the chunk then runs row by row.
            LOGGER.warning("a staged chunk was refused, loading it row by row: %s", refusal(error))
            raise ConflictError("the database refused a value of the chunk") from error

    def end(self) -> None:
        """Stop staging: the shared transaction's units of work use savepoints again."""
        if self.shared.stage is self:
            self.shared.stage = None
        self._clear()
