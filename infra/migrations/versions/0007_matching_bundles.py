"""Matching service: patient searches, bundles, bundle members, rounds, audit log, staff alerts,
and the cooling periods matching itself started (until the therapist service confirms them).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "matching_service"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "searches",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),  # the start of waiting
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("total_requested_contacts", sa.Integer, nullable=False),
        sa.Column("placed_therapist_id", sa.Uuid),
        sa.Column("placed_at", TS),
        sa.Column("status_reason", sa.Text),
        sa.Column("notes", sa.Text),
        sa.CheckConstraint("status IN ('active','paused','placed','cancelled')", name="search_status"),
        sa.CheckConstraint("total_requested_contacts >= 0", name="search_contact_budget"),
        schema=SCHEMA,
    )
    # One unfinished search per patient, enforced by the database (two concurrent POSTs).
    op.create_index(
        "searches_one_unfinished_per_patient",
        "searches",
        ["patient_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('active', 'paused')"),
    )
    op.create_index("searches_patient", "searches", ["patient_id", "created_at"], schema=SCHEMA)
    op.create_index("searches_status_waiting", "searches", ["status", "created_at", "id"], schema=SCHEMA)

    op.create_table(
        "search_exclusions",
        sa.Column("search_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.searches.id"), primary_key=True),
        sa.Column("therapist_id", sa.Uuid, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("excluded_at", TS, nullable=False),
        sa.Column("excluded_by", sa.String(100), nullable=False),
        schema=SCHEMA,
    )

    op.create_table(
        "rounds",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("run_date", sa.Date, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("trigger", sa.String(20), nullable=False),  # schedule | api | operator
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("parameters", JSONB, nullable=False),
        sa.Column("summary", JSONB),
        schema=SCHEMA,
    )

    op.create_table(
        "bundles",
        sa.Column("id", sa.Uuid, primary_key=True),
        # The human reference "B<number>" in email subjects and on the phone.
        sa.Column("number", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("therapist_id", sa.Uuid, nullable=False),
        sa.Column("practice_key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),  # round | staff | follow_up
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("round_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.rounds.id")),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("sent_at", TS),
        sa.Column("channel", sa.String(10)),
        sa.Column("reminder_sent_at", TS),
        sa.Column("answered_at", TS),
        sa.Column("expired_at", TS),
        sa.Column("discarded_at", TS),
        sa.Column("discard_reason", sa.Text),
        sa.Column("response_type", sa.String(30)),
        sa.Column("accepted_count", sa.SmallInteger),
        sa.Column("rejected_count", sa.SmallInteger),
        sa.Column("no_response_count", sa.SmallInteger),
        sa.Column("response", JSONB),  # the recorded outcomes, to recognise an identical repeat
        sa.Column("applied_filters", ARRAY(sa.String(40)), nullable=False),
        sa.Column("skipped_filters", ARRAY(sa.String(40)), nullable=False),
        sa.Column("notes", sa.Text),
        sa.CheckConstraint(
            "status IN ('draft','sent','answered','expired','discarded')", name="bundle_status"
        ),
        schema=SCHEMA,
    )
    # The database's own guarantee behind "one open bundle per practice" (and therapist: a
    # therapist without email is a practice of their own), whatever the application does.
    op.create_index(
        "bundles_one_open_per_practice",
        "bundles",
        ["practice_key"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('draft', 'sent')"),
    )
    op.create_index("bundles_therapist", "bundles", ["therapist_id", "created_at"], schema=SCHEMA)
    op.create_index("bundles_status_created", "bundles", ["status", "created_at", "id"], schema=SCHEMA)
    op.create_index("bundles_round", "bundles", ["round_id"], schema=SCHEMA)

    op.create_table(
        "bundle_members",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("bundle_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.bundles.id"), nullable=False),
        sa.Column("search_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.searches.id"), nullable=False),
        sa.Column("patient_id", sa.Uuid, nullable=False),
        sa.Column("position", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(30)),
        sa.Column("responded_at", TS),
        sa.Column("notes", sa.Text),
        sa.CheckConstraint("position BETWEEN 1 AND 6", name="member_position"),
        sa.CheckConstraint(
            "status IN ('pending','accepted','rejected','no_response','withdrawn','conflict')",
            name="member_status",
        ),
        sa.UniqueConstraint("bundle_id", "search_id", name="member_once_per_bundle"),
        sa.UniqueConstraint("bundle_id", "position", name="member_position_unique"),
        schema=SCHEMA,
    )
    op.create_index("bundle_members_search", "bundle_members", ["search_id"], schema=SCHEMA)

    op.create_table(
        "therapist_cooling",
        # Cooling periods matching started itself; the therapist service learns them through
        # cooling.period_started, and the read model catches up. Whichever is newer counts.
        sa.Column("therapist_id", sa.Uuid, primary_key=True),
        sa.Column("next_contact_allowed_on", sa.Date, nullable=False),
        sa.Column("set_at", TS, nullable=False),
        sa.Column("bundle_id", sa.Uuid),
        schema=SCHEMA,
    )

    op.create_table(
        "staff_alerts",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("bundle_id", sa.Uuid),
        sa.Column("search_id", sa.Uuid),
        sa.Column("therapist_id", sa.Uuid),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("resolved_at", TS),
        schema=SCHEMA,
    )
    op.create_index(
        "staff_alerts_open",
        "staff_alerts",
        ["created_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("entity_id", sa.Uuid, nullable=False),
        sa.Column("before", JSONB),
        sa.Column("after", JSONB),
        sa.Column("reason", sa.Text),
        schema=SCHEMA,
    )
    op.create_index("audit_log_entity", "audit_log", ["entity_id", "at"], schema=SCHEMA)
    op.create_index("audit_log_at", "audit_log", ["at"], schema=SCHEMA)
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {SCHEMA}.audit_log FROM {SCHEMA}_access")


def downgrade() -> None:
    for table in (
        "audit_log",
        "staff_alerts",
        "therapist_cooling",
        "bundle_members",
        "bundles",
        "rounds",
        "search_exclusions",
        "searches",
    ):
        op.drop_table(table, schema=SCHEMA)
