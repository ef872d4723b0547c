"""Transactional outbox in PostgreSQL: rows written with the change, claimed by relays with
FOR UPDATE SKIP LOCKED so that concurrent relays never publish the same row at once; and the
record of handled events that makes consumers idempotent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, case, func, select, update
from sqlalchemy.dialects.postgresql import insert

from therapy_platform.platform.database import transaction
from therapy_platform.platform.events import BusMessage, EventEnvelope
from therapy_platform.platform.ports import OutboxRecord, PublishOutcome
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

    def mark_published(self, record_ids: Sequence[int]) -> None:
        if not record_ids:
            return
        table = self._table
        self._connection.execute(
            update(table)
            .where(table.c.id.in_(list(record_ids)))
            .values(published_at=datetime.now(UTC), attempts=table.c.attempts + 1, last_error=None)
        )

    def record_failures(self, failures: Sequence[PublishOutcome]) -> None:
        if not failures:
            return
        table = self._table
        errors = {failure.record_id: (failure.error or "unknown error")[:2000] for failure in failures}
        self._connection.execute(
            update(table)
            .where(table.c.id.in_(list(errors)))
            .values(attempts=table.c.attempts + 1, last_error=case(errors, value=table.c.id))
        )


class SqlOutboxStore:
    def __init__(self, engine: Engine, schema: str) -> None:
        self._engine = engine
        self._schema = schema
        self._table = outbox_table(schema)

    @contextmanager
    def claim(self, limit: int, *, event_ids: Sequence[uuid.UUID] | None = None) -> Iterator[SqlOutboxBatch]:
        table = self._table
        query = (
            select(table.c.id, table.c.aggregate_key, table.c.envelope)
            .where(table.c.published_at.is_(None))
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
                )
                for row in rows
            ]
            yield SqlOutboxBatch(connection, self._schema, records)

    def oldest_unpublished_at(self) -> datetime | None:
        with transaction(self._engine) as connection:
            table = self._table
            oldest: datetime | None = connection.execute(
                select(func.min(table.c.created_at)).where(table.c.published_at.is_(None))
            ).scalar_one()
            return oldest

    def pending_count(self) -> int:
        with transaction(self._engine) as connection:
            table = self._table
            count = connection.execute(
                select(func.count()).select_from(table).where(table.c.published_at.is_(None))
            ).scalar_one()
            return int(count)
