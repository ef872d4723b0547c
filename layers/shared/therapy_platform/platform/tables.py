"""The one SQLAlchemy MetaData every service's tables register in, and the outbox table every
service schema has. Migrations (infra/migrations) own the DDL; table definitions only describe
what the code reads and writes."""

from __future__ import annotations

from functools import cache

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
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
