"""Transactional outbox in PostgreSQL: rows written with the change, claimed by relays with
FOR UPDATE SKIP LOCKED so that concurrent relays never publish the same row at once (only rows
due: not parked, backoff over), purged after a retention once published; and the record of
handled events that makes consumers idempotent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from therapy_platform.platform.database import transaction
from therapy_platform.platform.events import BusMessage, EventEnvelope
from therapy_platform.platform.ports import FailedAttempt, OutboxRecord, ParkedRow
from therapy_platform.platform.sql_bulk import bulk_insert
from therapy_platform.platform.tables import outbox_table, processed_events_table


class SqlOutbox:
    """Writes events inside the caller's transaction."""

    def __init__(self, connection: Connection, schema: str) -> None:
        self._connection = connection
        self._table = outbox_table(schema)

    def add(self, key: str, envelope: EventEnvelope) -> None:
        self._connection.execute(
            self._table.insert().values(
                event_id=envelope.event_id,
                event_type=envelope.event_type,
                aggregate_key=key,
                envelope=envelope.to_wire(),
                created_at=envelope.timestamp,
                attempts=0,
            )
        )

    def add_many(self, events: Sequence[tuple[str, EventEnvelope]]) -> None:
        """Many events in multi-row INSERTs (a national round writes tens of thousands)."""
        rows = [
            {
                "event_id": envelope.event_id,
                "event_type": envelope.event_type,
                "aggregate_key": key,
                "envelope": envelope.to_wire(),
                "created_at": envelope.timestamp,
                "attempts": 0,
            }
            for key, envelope in events
        ]
        bulk_insert(self._connection, self._table, rows)


class SqlProcessedEvents:
    """Claims an eventId for a consumer inside the caller's transaction."""

    def __init__(self, connection: Connection, schema: str) -> None:
        self._connection = connection
        self._schema = schema

    def first_time(self, event_id: uuid.UUID, consumer: str, at: datetime) -> bool:
        table = processed_events_table(self._schema)
        row = self._connection.execute(
            insert(table)
            .values(event_id=event_id, consumer=consumer, processed_at=at)
            .on_conflict_do_nothing()
            .returning(table.c.event_id)
        ).first()
        return row is not None


class SqlOutboxBatch:
    def __init__(self, connection: Connection, schema: str, records: Sequence[OutboxRecord]) -> None:
        self._connection = connection
        self._table = outbox_table(schema)
        self.records = records

    def mark_published(self, record_ids: Sequence[int], at: datetime) -> None:
        if not record_ids:
            return
        table = self._table
        self._connection.execute(
            update(table)
            .where(table.c.id.in_(list(record_ids)))
            .values(published_at=at, next_attempt_at=None, last_error=None)
        )

    def record_failures(self, failures: Sequence[FailedAttempt]) -> None:
        if not failures:
            return
        table = self._table
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                attempts=bindparam("b_attempts"),
                last_error=bindparam("b_last_error"),
                next_attempt_at=bindparam("b_next_attempt_at"),
                parked_at=bindparam("b_parked_at"),
            )
        )
        self._connection.execute(
            statement,
            [
                {
                    "b_id": failure.record_id,
                    "b_attempts": failure.attempts,
                    "b_last_error": failure.last_error,
                    "b_next_attempt_at": failure.next_attempt_at,
                    "b_parked_at": failure.parked_at,
                }
                for failure in failures
            ],
        )


class SqlOutboxStore:
    def __init__(self, engine: Engine, schema: str) -> None:
        self._engine = engine
        self._schema = schema
        self._table = outbox_table(schema)

    @contextmanager
    def claim(
        self, limit: int, *, due_at: datetime, event_ids: Sequence[uuid.UUID] | None = None
    ) -> Iterator[SqlOutboxBatch]:
        table = self._table
        query = (
            select(table.c.id, table.c.aggregate_key, table.c.envelope, table.c.attempts)
            .where(
                table.c.published_at.is_(None),
                table.c.parked_at.is_(None),
                or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= due_at),
            )
            .order_by(table.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if event_ids is not None:
            query = query.where(table.c.event_id.in_(list(event_ids)))
        with transaction(self._engine) as connection:
            rows = connection.execute(query).all()
            records = [
                OutboxRecord(
                    id=row.id,
                    message=BusMessage(
                        key=row.aggregate_key, envelope=EventEnvelope.model_validate(row.envelope)
                    ),
                    attempts=row.attempts,
                )
                for row in rows
            ]
            yield SqlOutboxBatch(connection, self._schema, records)

    def oldest_unpublished_at(self) -> datetime | None:
        """Of the rows still to publish: parked rows wait for staff and are counted apart, or one
        parked row would make the lag grow for ever."""
        with transaction(self._engine) as connection:
            table = self._table
            oldest: datetime | None = connection.execute(
                select(func.min(table.c.created_at)).where(
                    table.c.published_at.is_(None), table.c.parked_at.is_(None)
                )
            ).scalar_one()
            return oldest

    def pending_count(self) -> int:
        """Rows not yet published and not parked."""
        with transaction(self._engine) as connection:
            table = self._table
            count = connection.execute(
                select(func.count())
                .select_from(table)
                .where(table.c.published_at.is_(None), table.c.parked_at.is_(None))
            ).scalar_one()
            return int(count)

    def purge_published(self, before: datetime, limit: int) -> int:
        table = self._table
        oldest = (
            select(table.c.id)
            .where(table.c.published_at < before)
            .order_by(table.c.published_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        with transaction(self._engine) as connection:
            result = connection.execute(delete(table).where(table.c.id.in_(oldest)))
            return int(result.rowcount)

    def parked_count(self) -> int:
        table = self._table
        with transaction(self._engine) as connection:
            count = connection.execute(
                select(func.count()).select_from(table).where(table.c.parked_at.is_not(None))
            ).scalar_one()
            return int(count)

    def parked(self, limit: int) -> list[ParkedRow]:
        table = self._table
        query = (
            select(
                table.c.id,
                table.c.event_id,
                table.c.event_type,
                table.c.created_at,
                table.c.attempts,
                table.c.parked_at,
                table.c.last_error,
            )
            .where(table.c.parked_at.is_not(None))
            .order_by(table.c.id)
            .limit(limit)
        )
        with transaction(self._engine) as connection:
            return [ParkedRow(**row._mapping) for row in connection.execute(query)]

    def requeue(self, event_ids: Sequence[uuid.UUID]) -> int:
        if not event_ids:
            return 0
        table = self._table
        with transaction(self._engine) as connection:
            result = connection.execute(
                update(table)
                .where(table.c.event_id.in_(list(event_ids)), table.c.parked_at.is_not(None))
                .values(parked_at=None, next_attempt_at=None, attempts=0)
            )
            return int(result.rowcount)
