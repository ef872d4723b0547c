"""Erased patients leave anonymous statistics, not a pseudonymous row (issue 12 item 2).

- `patient_service.patient_statistics`: one row per erased patient with anonymous facts only
  (patients/domain/statistics.py): a random key (no sequence that follows the erasure order),
  months instead of dates, an age band instead of the birth year, the 2-digit postcode region,
  codes only, no free text and nothing that links back to the patient.
- `patient_service.patients`: an erased row becomes a tombstone (id and erasure time only), so
  the columns a live record needs become nullable, guarded by two checks (a live record is
  complete, an erased one holds nothing but its id and erasure time). Rows erased before this
  migration are moved into `patient_statistics` and reduced the same way.

- Audit logs stay append-only, except that an erasure may blank values and free-text reasons:
  the patient service's role may now also update `reason`; the matching service's role may
  update `before`, `after` and `reason` (nothing else, and never delete).

Downgrade drops the statistics (they cannot be put back on the rows: nothing links them) and
fills the tombstones' required columns with neutral values; postcode region '00' (no German
region) marks them, so a later upgrade moves no invented facts into the statistics.

Revision ID: 0018_perasure
Revises: 0017_terasure
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0018_perasure"
down_revision = "0017_terasure"
branch_labels = None
depends_on = None

SCHEMA = "patient_service"
MATCHING = "matching_service"

# NOT NULL on a live record, NULL on a tombstone (with their neutral values for the downgrade).
REQUIRED_WHEN_LIVE = {
    "gender": "'unspecified'",
    "postcode_prefix": "'00'",
    "insurance_type": "'statutory'",
    "symptoms": "'{}'::text[]",
    "previous_therapy": "false",
    "therapy_procedures": "'{VT,TP,AP,ST}'::text[]",
    "preferred_therapist_gender": "'any'",
    "open_to_group_therapy": "false",
    "group_only": "false",
    "max_travel_km": "25",
    "travel_mode": "'transit'",
    "status": "'therapy_finished'",
    "created_at": "erased_at",
    "updated_at": "erased_at",
}
TOMBSTONE = ("id", "erased_at")

AGE_BAND = (
    "CASE WHEN p.birth_year IS NULL THEN NULL"
    " WHEN extract(year FROM p.erased_at) - p.birth_year < 18 THEN '0-17'"
    " WHEN extract(year FROM p.erased_at) - p.birth_year < 25 THEN '18-24'"
    " WHEN extract(year FROM p.erased_at) - p.birth_year < 35 THEN '25-34'"
    " WHEN extract(year FROM p.erased_at) - p.birth_year < 45 THEN '35-44'"
    " WHEN extract(year FROM p.erased_at) - p.birth_year < 55 THEN '45-54'"
    " WHEN extract(year FROM p.erased_at) - p.birth_year < 65 THEN '55-64'"
    " ELSE '65+' END"
)


def upgrade() -> None:
    op.create_table(
        "patient_statistics",
        sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("registered_month", sa.Date, nullable=False),
        sa.Column("erased_month", sa.Date, nullable=False),
        sa.Column("age_band", sa.String(10)),
        sa.Column("gender", sa.String(20), nullable=False),
        sa.Column("postcode_region", sa.String(2), nullable=False),
        sa.Column("insurance_type", sa.String(20), nullable=False),
        sa.Column("symptoms", ARRAY(sa.Text), nullable=False),
        sa.Column("previous_therapy", sa.Boolean, nullable=False),
        sa.Column("therapy_procedures", ARRAY(sa.Text), nullable=False),
        sa.Column("preferred_therapist_gender", sa.String(10), nullable=False),
        sa.Column("open_to_group_therapy", sa.Boolean, nullable=False),
        sa.Column("group_only", sa.Boolean, nullable=False),
        sa.Column("travel_mode", sa.String(10), nullable=False),
        sa.Column("final_status", sa.String(30), nullable=False),
        sa.CheckConstraint("extract(day FROM registered_month) = 1", name="patient_statistics_month"),
        sa.CheckConstraint("extract(day FROM erased_month) = 1", name="patient_statistics_erased_month"),
        sa.CheckConstraint("postcode_region ~ '^[0-9]{2}$'", name="patient_statistics_region"),
        schema=SCHEMA,
    )
    # Rows erased before: their facts move (in random order), then they become tombstones.
    op.execute(
        f"INSERT INTO {SCHEMA}.patient_statistics (registered_month, erased_month, age_band, gender,"
        " postcode_region, insurance_type, symptoms, previous_therapy, therapy_procedures,"
        " preferred_therapist_gender, open_to_group_therapy, group_only, travel_mode, final_status)"
        " SELECT date_trunc('month', p.created_at AT TIME ZONE 'UTC')::date,"
        f" date_trunc('month', p.erased_at AT TIME ZONE 'UTC')::date, {AGE_BAND}, p.gender,"
        " p.postcode_prefix, p.insurance_type, p.symptoms, p.previous_therapy, p.therapy_procedures,"
        " p.preferred_therapist_gender, p.open_to_group_therapy, p.group_only, p.travel_mode, p.status"
        f" FROM {SCHEMA}.patients p WHERE p.erased_at IS NOT NULL AND p.gender IS NOT NULL"
        # '00' (no German postcode region) marks a tombstone a downgrade filled: no facts to move.
        " AND p.postcode_prefix <> '00' ORDER BY random()"
    )
    for column in REQUIRED_WHEN_LIVE:
        op.alter_column("patients", column, nullable=True, schema=SCHEMA)
    op.execute(
        f"UPDATE {SCHEMA}.patients SET "
        + ", ".join(f"{column} = NULL" for column in (*REQUIRED_WHEN_LIVE, "birth_year"))
        + " WHERE erased_at IS NOT NULL"
    )
    op.create_check_constraint(
        "patients_live_is_complete",
        "patients",
        "erased_at IS NOT NULL OR (" + " AND ".join(f"{c} IS NOT NULL" for c in REQUIRED_WHEN_LIVE) + ")",
        schema=SCHEMA,
    )
    op.create_check_constraint(
        "patients_erased_is_tombstone",
        "patients",
        "erased_at IS NULL OR ("
        + " AND ".join(f"{c} IS NULL" for c in (*REQUIRED_WHEN_LIVE, "birth_year"))
        + ")",
        schema=SCHEMA,
    )


    op.execute(f"GRANT UPDATE (reason) ON {SCHEMA}.audit_log TO {SCHEMA}_access")
    op.execute(f"GRANT UPDATE (before, after, reason) ON {MATCHING}.audit_log TO {MATCHING}_access")


def downgrade() -> None:
    op.execute(f"REVOKE UPDATE (before, after, reason) ON {MATCHING}.audit_log FROM {MATCHING}_access")
    op.execute(f"REVOKE UPDATE (reason) ON {SCHEMA}.audit_log FROM {SCHEMA}_access")
    op.drop_constraint("patients_erased_is_tombstone", "patients", schema=SCHEMA)
    op.drop_constraint("patients_live_is_complete", "patients", schema=SCHEMA)
    op.execute(
        f"UPDATE {SCHEMA}.patients SET "
        + ", ".join(f"{column} = {value}" for column, value in REQUIRED_WHEN_LIVE.items())
        + " WHERE erased_at IS NOT NULL"
    )
    for column in REQUIRED_WHEN_LIVE:
        op.alter_column("patients", column, nullable=False, schema=SCHEMA)
    op.drop_table("patient_statistics", schema=SCHEMA)
