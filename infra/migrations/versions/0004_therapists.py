"""Therapists and the therapist service's audit log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "therapist_service"


def upgrade() -> None:
    # Trigram indexes make free-text search (LIKE '%text%') fast. pg_trgm is a trusted
    # extension shipped with PostgreSQL and available on Aurora.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "therapists",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("directory_id", sa.String(100)),
        sa.Column("salutation", sa.String(60)),
        sa.Column("gender", sa.String(20), nullable=False),
        sa.Column("title", sa.String(60)),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("street", sa.String(200)),
        sa.Column("postcode", sa.String(5), nullable=False),
        sa.Column("city", sa.String(100)),
        sa.Column("phone", sa.String(40)),
        sa.Column("fax", sa.String(40)),
        sa.Column("email", sa.String(254)),
        sa.Column("website", sa.String(310)),
        sa.Column("statutory_seat", sa.Boolean, nullable=False),
        sa.Column("procedures", ARRAY(sa.String(2)), nullable=False, server_default="{}"),
        sa.Column("languages", ARRAY(sa.String(2)), nullable=False, server_default="{}"),
        sa.Column("phone_windows", JSONB, nullable=False, server_default="{}"),
        sa.Column("working_hours", JSONB, nullable=False, server_default="{}"),
        sa.Column("preferred_age_min", sa.SmallInteger),
        sa.Column("preferred_age_max", sa.SmallInteger),
        sa.Column("preferred_patient_gender", sa.String(20)),
        sa.Column("offers_group_therapy", sa.Boolean, nullable=False),
        sa.Column("group_only", sa.Boolean, nullable=False),
        sa.Column("symptom_preferences", ARRAY(sa.String(60)), nullable=False, server_default="{}"),
        sa.Column("potentially_available", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("block_reason", sa.Text),
        sa.Column("next_contact_allowed_on", sa.Date),
        sa.Column("staff_edited_fields", ARRAY(sa.String(60)), nullable=False, server_default="{}"),
        sa.Column("latitude", sa.Double),
        sa.Column("longitude", sa.Double),
        sa.Column("location_precision", sa.String(10), nullable=False),
        sa.Column("location_flagged", sa.Boolean, nullable=False),
        sa.Column("practice_key", sa.String(254)),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        # The database guards the invariants too, so no writer (tools, hand-fixes) breaks them.
        sa.CheckConstraint("postcode ~ '^[0-9]{5}$'", name="therapists_postcode_format"),
        sa.CheckConstraint(
            "gender IN ('male', 'female', 'diverse', 'unspecified')", name="therapists_gender_known"
        ),
        sa.CheckConstraint("status IN ('active', 'blocked', 'inactive')", name="therapists_status_known"),
        sa.CheckConstraint(
            "(status = 'blocked') = (block_reason IS NOT NULL)", name="therapists_block_reason_iff_blocked"
        ),
        sa.CheckConstraint(
            "procedures <@ ARRAY['VT', 'TP', 'AP', 'ST']::varchar[]", name="therapists_procedures_known"
        ),
        sa.CheckConstraint(
            "preferred_age_min IS NULL OR preferred_age_min BETWEEN 0 AND 120",
            name="therapists_age_min_range",
        ),
        sa.CheckConstraint(
            "preferred_age_max IS NULL OR preferred_age_max BETWEEN 0 AND 120",
            name="therapists_age_max_range",
        ),
        sa.CheckConstraint(
            "preferred_age_min IS NULL OR preferred_age_max IS NULL"
            " OR preferred_age_min <= preferred_age_max",
            name="therapists_age_range_ordered",
        ),
        sa.CheckConstraint(
            "NOT group_only OR offers_group_therapy", name="therapists_group_only_offers_groups"
        ),
        sa.CheckConstraint(
            "location_precision IN ('address', 'postcode', 'unknown')", name="therapists_precision_known"
        ),
        sa.CheckConstraint(
            "(location_precision = 'unknown') = (latitude IS NULL AND longitude IS NULL)"
            " AND (latitude IS NULL) = (longitude IS NULL)",
            name="therapists_coordinates_match_precision",
        ),
        sa.CheckConstraint(
            "location_flagged = (location_precision = 'unknown')", name="therapists_flagged_iff_unknown"
        ),
        schema=SCHEMA,
    )
    # One record per directory entry; imports match on it.
    op.create_index(
        "therapists_directory_id",
        "therapists",
        ["directory_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("directory_id IS NOT NULL"),
    )
    # Filters of GET /api/v2/therapists and the eligibility query of matching.
    op.create_index("therapists_status", "therapists", ["status", "next_contact_allowed_on"], schema=SCHEMA)
    op.create_index(
        "therapists_postcode_prefix",
        "therapists",
        [sa.text("postcode varchar_pattern_ops")],
        schema=SCHEMA,
    )
    op.create_index(
        "therapists_procedures", "therapists", ["procedures"], schema=SCHEMA, postgresql_using="gin"
    )
    op.create_index(
        "therapists_languages", "therapists", ["languages"], schema=SCHEMA, postgresql_using="gin"
    )
    op.create_index(
        "therapists_search_text",
        "therapists",
        [sa.text("search_text gin_trgm_ops")],
        schema=SCHEMA,
        postgresql_using="gin",
    )
    op.create_index(
        "therapists_next_contact",
        "therapists",
        ["next_contact_allowed_on"],
        schema=SCHEMA,
        postgresql_where=sa.text("next_contact_allowed_on IS NOT NULL"),
    )
    op.create_index(
        "therapists_flags", "therapists", ["offers_group_therapy", "potentially_available"], schema=SCHEMA
    )
    # Practices (shared email) and the bulk load's "same email + last name + postcode" match.
    op.create_index("therapists_practice_postcode", "therapists", ["practice_key", "postcode"], schema=SCHEMA)
    # Sort keys of the list endpoint (ties broken by id).
    op.create_index("therapists_created_at", "therapists", ["created_at", "id"], schema=SCHEMA)
    op.create_index("therapists_updated_at", "therapists", ["updated_at", "id"], schema=SCHEMA)
    op.create_index("therapists_last_name", "therapists", ["last_name", "id"], schema=SCHEMA)
    # Staff work through the records that could not be located.
    op.create_index(
        "therapists_location_flagged",
        "therapists",
        ["id"],
        schema=SCHEMA,
        postgresql_where=sa.text("location_flagged"),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("entity_id", sa.Uuid, nullable=False),
        sa.Column("before", JSONB),
        sa.Column("after", JSONB),
        sa.Column("reason", sa.Text),
        schema=SCHEMA,
    )
    op.create_index("audit_log_entity", "audit_log", ["entity_id", "at"], schema=SCHEMA)
    op.create_index("audit_log_at", "audit_log", ["at"], schema=SCHEMA)
    # The audit trail is append-only for the service itself: it may add entries, never rewrite
    # them. (Default privileges from 0001 granted UPDATE and DELETE; take them back here.)
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {SCHEMA}.audit_log FROM {SCHEMA}_access")


def downgrade() -> None:
    op.drop_table("audit_log", schema=SCHEMA)
    op.drop_table("therapists", schema=SCHEMA)
