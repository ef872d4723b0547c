"""Patients (walking-skeleton subset of the record).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("birth_date", sa.Date),
        sa.Column("postcode", sa.String(5), nullable=False),
        sa.Column("city", sa.String(100)),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(40)),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("postcode ~ '^[0-9]{5}$'", name="patients_postcode_format"),
        schema="patient_service",
    )
    op.create_index("patients_postcode", "patients", ["postcode"], schema="patient_service")


def downgrade() -> None:
    op.drop_table("patients", schema="patient_service")
