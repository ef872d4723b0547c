"""Geocoding cache (Nominatim answers for addresses and points).

The postcode table needs no database table: it ships as a file with the shared layer
(therapy_platform/platform/geography/data/plz_geocoord.csv) and is read into memory, so postcode lookups and
distances work without the database.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "geocoding_service"


def upgrade() -> None:
    # Reachable by geocoding_service_access through the default privileges set in 0001.
    op.create_table(
        "geocode_cache",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),  # normalised address or point: unbounded
        sa.Column("found", sa.Boolean, nullable=False),
        sa.Column("payload", sa.dialects.postgresql.JSONB),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('address', 'reverse')", name="geocode_cache_kind"),
        sa.CheckConstraint("found = (payload IS NOT NULL)", name="geocode_cache_found_has_payload"),
        sa.CheckConstraint("expires_at > fetched_at", name="geocode_cache_expiry_after_fetch"),
        schema=SCHEMA,
    )
    op.create_index("geocode_cache_expires_at", "geocode_cache", ["expires_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("geocode_cache", schema=SCHEMA)
