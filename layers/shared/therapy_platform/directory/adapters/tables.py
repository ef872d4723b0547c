"""SQLAlchemy Core table of the scraping service (schema `scraping_service`): its run records.
The DDL lives in infra/migrations/versions/0008_directory_import.py; this only describes it."""

from __future__ import annotations

from typing import Final

from sqlalchemy import Column, DateTime, Integer, String, Table, Uuid
from sqlalchemy.dialects.postgresql import JSONB

from therapy_platform.platform.tables import metadata

SCRAPING_SCHEMA: Final = "scraping_service"

scrape_runs = Table(
    "runs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("region", String(20), nullable=False),
    Column("trigger", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("requests", Integer, nullable=False),
    Column("pages", Integer, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("enriched", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("error_messages", JSONB, nullable=False),
    Column("raw_object_key", String(200)),
    schema=SCRAPING_SCHEMA,
)
