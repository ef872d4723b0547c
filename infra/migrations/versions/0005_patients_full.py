"""The full patient record: needs and preferences, location, erasure, and the audit log.

Existing walking-skeleton rows stay valid: they get the defaults, no symptoms (staff must add
1-6 before the next change is accepted) and an unknown location (flagged; the next save
geocodes again).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from schemas import access_role

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "patient_service"

# Personal data: emptied when a patient is erased (GDPR). Mirrors domain/patients.py, where
# STATISTICS_FIELDS lists what an erased row keeps.
PERSONAL_COLUMNS = (
    "salutation",
    "first_name",
    "last_name",
    "birth_date",
    "street",
    "postcode",
    "city",
    "email",
    "phone",
    "health_insurer",
    "last_therapy_session",
    "languages",
    "needs_shared_language",
    "availability",
    "excluded_therapist_ids",
    "notes",
    "latitude",
    "longitude",
    "location_precision",
)


ADDED_COLUMNS = (
    "salutation", "gender", "birth_year", "street", "postcode_prefix", "health_insurer",
    "insurance_type", "symptoms", "previous_therapy", "last_therapy_session", "therapy_procedures",
    "preferred_therapist_gender", "open_to_group_therapy", "group_only", "languages",
    "needs_shared_language", "max_travel_km", "travel_mode", "availability", "excluded_therapist_ids",
    "notes", "latitude", "longitude", "location_precision", "erased_at",
)  # fmt: skip


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    columns: list[sa.Column[Any]] = [
        sa.Column("salutation", sa.String(30)),
        sa.Column("gender", sa.String(20), nullable=False, server_default="unspecified"),
        sa.Column("birth_year", sa.SmallInteger),
        sa.Column("street", sa.String(200)),
        sa.Column("postcode_prefix", sa.String(2)),
        sa.Column("health_insurer", sa.String(100)),
        sa.Column("insurance_type", sa.String(20), nullable=False, server_default="statutory"),
        sa.Column("symptoms", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("previous_therapy", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("last_therapy_session", sa.Date),
        sa.Column(
            "therapy_procedures",
            ARRAY(sa.Text),
            nullable=False,
            server_default=sa.text("'{VT,TP,AP,ST}'::text[]"),
        ),
        sa.Column("preferred_therapist_gender", sa.String(10), nullable=False, server_default="any"),
        sa.Column("open_to_group_therapy", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("group_only", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("languages", ARRAY(sa.Text), server_default=sa.text("'{de}'::text[]")),
        sa.Column("needs_shared_language", sa.Boolean),
        sa.Column("max_travel_km", sa.SmallInteger, nullable=False, server_default="25"),
        sa.Column("travel_mode", sa.String(10), nullable=False, server_default="transit"),
        sa.Column("availability", JSONB, server_default=sa.text("'{}'::jsonb")),
        sa.Column("excluded_therapist_ids", ARRAY(sa.Uuid), server_default=sa.text("'{}'::uuid[]")),
        sa.Column("notes", sa.Text),
        sa.Column("latitude", sa.Double),
        sa.Column("longitude", sa.Double),
        sa.Column("location_precision", sa.String(10)),
        sa.Column("erased_at", sa.DateTime(timezone=True)),
    ]
    table = "patients"
    for new_column in columns:
        op.add_column(table, new_column, schema=SCHEMA)

    # Backfill what the skeleton rows can give, then tighten.
    op.execute(
        f"UPDATE {SCHEMA}.patients SET postcode_prefix = left(postcode, 2), "
        "birth_year = extract(year FROM birth_date), location_precision = 'unknown'"
    )
    op.alter_column(table, "postcode_prefix", nullable=False, schema=SCHEMA)
    # Erasure empties these.
    for column in ("first_name", "last_name", "postcode"):
        op.alter_column(table, column, nullable=True, schema=SCHEMA)

    checks = {
        "patients_status_known": _in(
            "status",
            ("open", "searching", "in_therapy", "therapy_finished", "search_cancelled", "therapy_cancelled"),
        ),
        "patients_gender_known": _in("gender", ("male", "female", "diverse", "unspecified")),
        "patients_preferred_gender_known": _in("preferred_therapist_gender", ("male", "female", "any")),
        "patients_travel_mode_known": _in("travel_mode", ("car", "transit")),
        "patients_insurance_type_known": _in("insurance_type", ("statutory", "private", "self_pay")),
        "patients_travel_km_range": "max_travel_km BETWEEN 1 AND 200",
        "patients_postcode_prefix_format": "postcode_prefix ~ '^[0-9]{2}$'",
        "patients_symptoms_count": "cardinality(symptoms) <= 6",
        "patients_procedures_count": "cardinality(therapy_procedures) BETWEEN 1 AND 4",
        "patients_group_only_is_group": "NOT group_only OR open_to_group_therapy",
        "patients_session_needs_previous": "last_therapy_session IS NULL OR previous_therapy",
        "patients_location_precision_known": "location_precision IN ('address', 'postcode', 'unknown')",
        "patients_location_matches_precision": (
            "location_precision IS NULL OR (location_precision IN ('address', 'postcode')) "
            "= (latitude IS NOT NULL AND longitude IS NOT NULL)"
        ),
        # A live record has its identity; an erased one has no personal data at all.
        "patients_live_has_identity": (
            "erased_at IS NOT NULL OR (first_name IS NOT NULL AND last_name IS NOT NULL "
            "AND postcode IS NOT NULL AND location_precision IS NOT NULL)"
        ),
        "patients_erased_has_no_personal_data": (
            "erased_at IS NULL OR (" + " AND ".join(f"{column} IS NULL" for column in PERSONAL_COLUMNS) + ")"
        ),
    }
    for name, condition in checks.items():
        op.create_check_constraint(name, table, condition, schema=SCHEMA)

    # Postcode prefix filters (LIKE '52%') need pattern ops; equality works with it too.
    op.drop_index("patients_postcode", table_name=table, schema=SCHEMA)
    op.execute(f"CREATE INDEX patients_postcode ON {SCHEMA}.patients (postcode varchar_pattern_ops)")
    live = sa.text("erased_at IS NULL")
    op.create_index(
        "patients_live_created", table, ["created_at", "id"], schema=SCHEMA, postgresql_where=live
    )
    op.create_index("patients_live_status", table, ["status"], schema=SCHEMA, postgresql_where=live)
    op.execute(
        f"CREATE INDEX patients_last_name ON {SCHEMA}.patients (lower(last_name), lower(first_name), id) "
        "WHERE erased_at IS NULL"
    )
    # Bulk loads match existing patients by email + last name + birth date.
    op.execute(
        f"CREATE INDEX patients_identity ON {SCHEMA}.patients (lower(email), lower(last_name), birth_date) "
        "WHERE erased_at IS NULL"
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("entity_type", sa.String(30), nullable=False, server_default="patient"),
        sa.Column("entity_id", sa.Uuid, nullable=False),
        sa.Column("before", JSONB),
        sa.Column("after", JSONB),
        sa.Column("reason", sa.Text),
        schema=SCHEMA,
    )
    op.create_index("audit_log_entity", "audit_log", ["entity_id", "at"], schema=SCHEMA)
    op.create_index("audit_log_at", "audit_log", ["at"], schema=SCHEMA)
    # The trail is append-only for the service: no deletes, and updates only of the recorded
    # values (blanked when a patient is erased); who, what and when can never change.
    role = access_role(SCHEMA)
    op.execute(f"REVOKE UPDATE, DELETE ON {SCHEMA}.audit_log FROM {role}")
    op.execute(f"GRANT UPDATE (before, after) ON {SCHEMA}.audit_log TO {role}")


def downgrade() -> None:
    op.drop_table("audit_log", schema=SCHEMA)
    for index in ("patients_identity", "patients_last_name", "patients_live_status", "patients_live_created"):
        op.drop_index(index, table_name="patients", schema=SCHEMA)
    op.drop_index("patients_postcode", table_name="patients", schema=SCHEMA)
    op.create_index("patients_postcode", "patients", ["postcode"], schema=SCHEMA)
    # Erased rows cannot go back to the skeleton's NOT NULL columns.
    op.execute(f"DELETE FROM {SCHEMA}.patients WHERE erased_at IS NOT NULL")
    for column in ("first_name", "last_name", "postcode"):
        op.alter_column("patients", column, nullable=False, schema=SCHEMA)
    for column in ADDED_COLUMNS:  # their check constraints go with them
        op.drop_column("patients", column, schema=SCHEMA)
