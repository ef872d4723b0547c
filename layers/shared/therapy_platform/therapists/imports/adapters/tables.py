"""SQLAlchemy Core tables of the directory import, in the therapist service's schema
(`therapist_service`): listings, import reports and their items. The DDL lives in
infra/migrations/versions/0008_directory_import.py; this only describes it."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Double, Integer, String, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

from therapy_platform.platform.tables import metadata
from therapy_platform.therapists.adapters.tables import THERAPIST_SCHEMA

directory_listings = Table(
    "directory_listings",
    metadata,
    Column("directory_id", String(100), primary_key=True),
    Column("therapist_id", Uuid, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("postcode", String(5)),
    Column("latitude", Double),
    Column("longitude", Double),
    Column("provenance", JSONB, nullable=False),
    Column("review_reason", String(60)),
    Column("review_since", DateTime(timezone=True)),
    Column("first_import_id", Uuid, nullable=False),
    Column("last_import_id", Uuid, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    schema=THERAPIST_SCHEMA,
)

directory_imports = Table(
    "directory_imports",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("source", String(1000), nullable=False),
    Column("source_version", String(200)),
    Column("region", String(20)),
    Column("complete_source", Boolean, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("counts", JSONB, nullable=False),
    Column("skip_reasons", JSONB, nullable=False),
    Column("warnings", Integer, nullable=False),
    Column("error", Text),
    schema=THERAPIST_SCHEMA,
)

directory_import_items = Table(
    "directory_import_items",
    metadata,
    Column("import_id", Uuid, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("outcome", String(20), nullable=False),
    Column("position", String(60)),
    Column("directory_id", String(100)),
    Column("therapist_id", Uuid),
    Column("name", String(210)),
    Column("reason", String(60), nullable=False),
    Column("message", Text, nullable=False),
    schema=THERAPIST_SCHEMA,
)
