"""Matching service read models of patients and therapists, fed by events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "matching_service"


def upgrade() -> None:
    for name in ("patient_profiles", "therapist_profiles"):
        op.create_table(
            name,
            sa.Column("id", sa.Uuid, primary_key=True),
            sa.Column("data", JSONB),
            sa.Column("source_event_id", sa.Uuid, nullable=False),
            sa.Column("source_timestamp", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            schema=SCHEMA,
        )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("consumer", sa.String(60), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for name in ("processed_events", "therapist_profiles", "patient_profiles"):
        op.drop_table(name, schema=SCHEMA)
