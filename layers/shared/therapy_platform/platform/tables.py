"""The one SQLAlchemy MetaData every service's tables register in, and the outbox table every
service schema has. Migrations (infra/migrations) own the DDL; table definitions only describe
what the code reads and writes."""

from __future__ import annotations

from functools import cache

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()


@cache
def outbox_table(schema: str) -> Table:
    """Each service schema has its own outbox with the same shape."""
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("event_type", String(80), nullable=False),
        Column("aggregate_key", String(80), nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text),
        Column("next_attempt_at", DateTime(timezone=True)),  # NULL: due at once
        Column("parked_at", DateTime(timezone=True)),  # set: not tried again until re-queued
        schema=schema,
    )


@cache
def processed_events_table(schema: str) -> Table:
    """Events a consumer in `schema` has handled (schemas whose service consumes events)."""
    existing = metadata.tables.get(f"{schema}.processed_events")
    if existing is not None:
        return existing
    return Table(
        "processed_events",
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("consumer", String(60), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
        schema=schema,
    )


@cache
def idempotency_keys_table(schema: str) -> Table:
    """`Idempotency-Key`s of the service's creating POSTs (platform/idempotency.py): one row per
    route, acting user and key; `status_code` NULL while the first request runs."""
    return Table(
        "idempotency_keys",
        metadata,
        Column("route", String(200), nullable=False),
        Column("actor", String(200), nullable=False),
        Column("key", String(100), nullable=False),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer),
        Column("body", Text),
        Column("location", Text),
        Column("created_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("route", "actor", "key"),
        Index(f"{schema}_idempotency_keys_created_at", "created_at"),
        schema=schema,
    )
