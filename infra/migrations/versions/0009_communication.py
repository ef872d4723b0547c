"""Communication service: emails, delivery attempts, phone-call tasks, inbound replies.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMA = "communication_service"

EMAIL_KINDS = (
    "bundle_inquiry",
    "bundle_reminder",
    "withdrawal_notice",
    "patient_search_started",
    "patient_place_found",
    "staff_conflict_alert",
    "staff_unknown_location_alert",
    "staff_send_failed_alert",
    "ad_hoc",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "emails",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("recipient_name", sa.String(300)),
        sa.Column("recipient_type", sa.String(20), nullable=False),
        sa.Column("recipient_id", sa.Uuid),
        sa.Column("sender", sa.String(400), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.SmallInteger, nullable=False),
        sa.Column("interrupted_attempts", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("message_id", sa.String(400), nullable=False, unique=True),
        sa.Column("reply_to", sa.String(254)),
        sa.Column("provider_message_id", sa.String(400)),
        sa.Column("bundle_id", sa.Uuid),
        sa.Column("bundle_reference", sa.String(20)),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        # The sending marker: who holds the email (claim_token) and until when (lease_until).
        sa.Column("claim_token", sa.Uuid),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_enqueued_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("failed_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'queued', 'sending', 'sent', 'failed')", name="emails_status_known"
        ),
        sa.CheckConstraint(_in("kind", EMAIL_KINDS), name="emails_kind_known"),
        sa.CheckConstraint(
            "recipient_type IN ('therapist', 'patient', 'staff')", name="emails_recipient_type_known"
        ),
        sa.CheckConstraint("attempts >= 0 AND attempts <= max_attempts", name="emails_attempts_range"),
        sa.CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name="emails_sent_at_iff_sent"),
        sa.CheckConstraint(
            "(status = 'sending') = (claim_token IS NOT NULL AND lease_until IS NOT NULL)",
            name="emails_claim_iff_sending",
        ),
        sa.CheckConstraint(
            "bundle_reference IS NULL OR bundle_reference ~ '^B[1-9][0-9]{0,11}$'",
            name="emails_bundle_reference_format",
        ),
        schema=SCHEMA,
    )
    # The sweeper's question: which queued emails are due and were not offered to the queue lately?
    op.create_index(
        "emails_due",
        "emails",
        ["status", "next_attempt_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('queued', 'sending')"),
    )
    op.create_index("emails_bundle", "emails", ["bundle_reference", "created_at"], schema=SCHEMA)
    op.create_index(
        "emails_recipient_history", "emails", ["recipient_type", "recipient_id", "created_at"], schema=SCHEMA
    )
    op.create_index("emails_created", "emails", ["created_at", "id"], schema=SCHEMA)

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("email_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.emails.id"), nullable=False),
        sa.Column("attempt", sa.SmallInteger, nullable=False),
        sa.Column("claim_token", sa.Uuid, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        # NULL while running; a row left NULL is an attempt whose sender died.
        sa.Column("outcome", sa.String(20)),
        sa.Column("error", sa.Text),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('sent', 'retry', 'failed')",
            name="delivery_attempts_outcome_known",
        ),
        sa.UniqueConstraint("claim_token", name="delivery_attempts_one_per_claim"),
        schema=SCHEMA,
    )
    op.create_index("delivery_attempts_email", "delivery_attempts", ["email_id", "attempt"], schema=SCHEMA)

    op.create_table(
        "phone_call_tasks",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("therapist_id", sa.Uuid, nullable=False),
        sa.Column("therapist_name", sa.String(300), nullable=False),
        sa.Column("phone", sa.String(40), nullable=False),
        sa.Column("bundle_id", sa.Uuid),
        sa.Column("bundle_reference", sa.String(20)),
        # Calls are planned in 5-minute slots; an open task holds its slot exclusively.
        sa.Column("slot_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(30)),
        sa.Column("outcome_notes", sa.Text),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("completed_by", sa.String(200)),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "purpose IN ('inquiry', 'reminder', 'follow_up')", name="phone_call_tasks_purpose"
        ),
        sa.CheckConstraint(
            "status IN ('scheduled', 'completed', 'cancelled')", name="phone_call_tasks_status_known"
        ),
        sa.CheckConstraint(
            "EXTRACT(EPOCH FROM slot_start)::bigint % 300 = 0",
            name="phone_call_tasks_five_minute_slot",
        ),
        sa.CheckConstraint(
            "(status = 'completed') = (completed_at IS NOT NULL)", name="phone_call_tasks_completed_at"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "phone_call_tasks_one_per_slot",
        "phone_call_tasks",
        ["slot_start"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.create_index(
        "phone_call_tasks_therapist", "phone_call_tasks", ["therapist_id", "created_at"], schema=SCHEMA
    )
    op.create_index("phone_call_tasks_bundle", "phone_call_tasks", ["bundle_reference"], schema=SCHEMA)

    op.create_table(
        "inbound_replies",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("message_id", sa.String(400), unique=True),
        sa.Column("in_reply_to", sa.String(1000)),
        sa.Column("references", sa.Text),
        sa.Column("from_address", sa.String(254), nullable=False),
        sa.Column("to_address", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(1000)),
        sa.Column("text", sa.Text),
        sa.Column("html", sa.Text),
        # Matched through the Reply-To tag (antwort+B123@...) or the quoted Message-ID.
        sa.Column("bundle_reference", sa.String(20)),
        sa.Column("email_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.emails.id")),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index(
        "inbound_replies_bundle", "inbound_replies", ["bundle_reference", "received_at"], schema=SCHEMA
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("entity_type", sa.String(30), nullable=False),
        sa.Column("entity_id", sa.Uuid, nullable=False),
        sa.Column("detail", JSONB),
        schema=SCHEMA,
    )
    op.create_index("audit_log_entity", "audit_log", ["entity_id", "at"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("audit_log", "inbound_replies", "phone_call_tasks", "delivery_attempts", "emails"):
        op.drop_table(table, schema=SCHEMA)
