"""Communication service follow-up: processed events, tracked bundles, contact read models,
phone-call purposes and scheduling rule.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = "communication_service"


def upgrade() -> None:
    # Consumers deduplicate by eventId (delivery is at least once).
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("consumer", sa.String(60), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )

    # Bundles as bundle.sent presented them (addressee, data-minimised members) and what became
    # of them; a row without sent_at is a placeholder from an event that overtook bundle.sent.
    op.create_table(
        "sent_bundles",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("reference", sa.String(20), nullable=False, unique=True),
        sa.Column("therapist_id", sa.Uuid, nullable=False),
        sa.Column("therapist", JSONB),
        sa.Column("channel", sa.String(10)),
        sa.Column("members", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("withdrawn_references", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("expired_at", sa.DateTime(timezone=True)),
        sa.Column("reminder_sent_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("channel IS NULL OR channel IN ('email', 'phone')", name="sent_bundles_channel"),
        sa.CheckConstraint("reference ~ '^B[1-9][0-9]{0,11}$'", name="sent_bundles_reference_format"),
        sa.CheckConstraint(
            "reminder_sent_at IS NULL OR sent_at IS NOT NULL", name="sent_bundles_reminder_after_sending"
        ),
        schema=SCHEMA,
    )
    # The daily reminder job's question.
    op.create_index(
        "sent_bundles_reminder_due",
        "sent_bundles",
        ["sent_at"],
        schema=SCHEMA,
        postgresql_where=sa.text(
            "sent_at IS NOT NULL AND answered_at IS NULL AND expired_at IS NULL AND reminder_sent_at IS NULL"
        ),
    )
    op.create_index("sent_bundles_therapist", "sent_bundles", ["therapist_id", "sent_at"], schema=SCHEMA)

    # Contact read models fed by patient.* / therapist.* (data NULL: erased, a tombstone).
    for name in ("patient_contacts", "therapist_contacts"):
        op.create_table(
            name,
            sa.Column("id", sa.Uuid, primary_key=True),
            sa.Column("data", JSONB),
            sa.Column("source_event_id", sa.Uuid, nullable=False),
            sa.Column("source_timestamp", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            schema=SCHEMA,
        )

    # Withdrawal notices by phone; a therapist without any number still gets a task (staff look
    # the number up); why a call got its slot.
    op.drop_constraint("phone_call_tasks_purpose", "phone_call_tasks", schema=SCHEMA, type_="check")
    op.create_check_constraint(
        "phone_call_tasks_purpose",
        "phone_call_tasks",
        "purpose IN ('inquiry', 'reminder', 'withdrawal', 'follow_up')",
        schema=SCHEMA,
    )
    op.alter_column("phone_call_tasks", "phone", nullable=True, schema=SCHEMA)
    op.add_column("phone_call_tasks", sa.Column("scheduling_rule", sa.String(20)), schema=SCHEMA)
    op.create_check_constraint(
        "phone_call_tasks_scheduling_rule",
        "phone_call_tasks",
        "scheduling_rule IS NULL OR scheduling_rule IN ('phone_window', 'fallback')",
        schema=SCHEMA,
    )
    op.create_check_constraint(
        "phone_call_tasks_outcome_known",
        "phone_call_tasks",
        "outcome IS NULL OR outcome IN ('reached', 'no_answer', 'voicemail', 'call_back_requested', "
        "'wrong_number')",
        schema=SCHEMA,
    )
    # Staff's day list: calls by slot, any status.
    op.create_index("phone_call_tasks_slot", "phone_call_tasks", ["slot_start"], schema=SCHEMA)
    op.create_index("phone_call_tasks_bundle_id", "phone_call_tasks", ["bundle_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("phone_call_tasks_bundle_id", "phone_call_tasks", schema=SCHEMA)
    op.drop_index("phone_call_tasks_slot", "phone_call_tasks", schema=SCHEMA)
    op.drop_constraint("phone_call_tasks_outcome_known", "phone_call_tasks", schema=SCHEMA, type_="check")
    op.drop_constraint("phone_call_tasks_scheduling_rule", "phone_call_tasks", schema=SCHEMA, type_="check")
    op.drop_column("phone_call_tasks", "scheduling_rule", schema=SCHEMA)
    op.execute(f"DELETE FROM {SCHEMA}.phone_call_tasks WHERE phone IS NULL OR purpose = 'withdrawal'")
    op.alter_column("phone_call_tasks", "phone", nullable=False, schema=SCHEMA)
    op.drop_constraint("phone_call_tasks_purpose", "phone_call_tasks", schema=SCHEMA, type_="check")
    op.create_check_constraint(
        "phone_call_tasks_purpose",
        "phone_call_tasks",
        "purpose IN ('inquiry', 'reminder', 'follow_up')",
        schema=SCHEMA,
    )
    for table in ("therapist_contacts", "patient_contacts", "sent_bundles", "processed_events"):
        op.drop_table(table, schema=SCHEMA)
