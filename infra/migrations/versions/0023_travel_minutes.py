"""Reach by travel time (issue 16 section 3, docs/matching.md "Reach by travel time"): a patient
may limit their reach in estimated minutes by car or public transport (`max_travel_minutes`,
5-240, NULL: km only), and may prefer a diverse therapist (`preferred_therapist_gender`
'diverse').

Revision ID: 0023_travel_minutes
Revises: 0022_registration_intake
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_travel_minutes"
down_revision = "0022_registration_intake"
branch_labels = None
depends_on = None

SCHEMA = "patient_service"
TABLE = "patients"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("max_travel_minutes", sa.SmallInteger, nullable=True), schema=SCHEMA)
    op.create_check_constraint(
        "patients_travel_minutes_range",
        TABLE,
        "max_travel_minutes IS NULL OR max_travel_minutes BETWEEN 5 AND 240",
        schema=SCHEMA,
    )
    op.drop_constraint("patients_preferred_gender_known", TABLE, schema=SCHEMA, type_="check")
    op.create_check_constraint(
        "patients_preferred_gender_known",
        TABLE,
        "preferred_therapist_gender IN ('male', 'female', 'diverse', 'any')",
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.execute(
        f"UPDATE {SCHEMA}.{TABLE} SET preferred_therapist_gender = 'any' "
        "WHERE preferred_therapist_gender = 'diverse'"
    )
    op.drop_constraint("patients_preferred_gender_known", TABLE, schema=SCHEMA, type_="check")
    op.create_check_constraint(
        "patients_preferred_gender_known",
        TABLE,
        "preferred_therapist_gender IN ('male', 'female', 'any')",
        schema=SCHEMA,
    )
    op.drop_constraint("patients_travel_minutes_range", TABLE, schema=SCHEMA, type_="check")
    op.drop_column(TABLE, "max_travel_minutes", schema=SCHEMA)
