"""SQLAlchemy Core tables used by the adapters. Migrations (infra/migrations) own the DDL;
these definitions only describe what the code reads and writes."""

from __future__ import annotations

from functools import cache

from sqlalchemy import BigInteger, Column, Date, DateTime, Integer, MetaData, String, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

PATIENT_SCHEMA = "patient_service"

patients = Table(
    "patients",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("birth_date", Date),
    Column("postcode", String(5), nullable=False),
    Column("city", String(100)),
    Column("email", String(254)),
    Column("phone", String(40)),
    Column("status", String(30), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    schema=PATIENT_SCHEMA,
)


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
