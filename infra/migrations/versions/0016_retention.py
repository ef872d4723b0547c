"""Indexes the nightly retention jobs read by (platform/retention_sql.py): each rule finds its
due rows by an instant, a batch at a time, without scanning the whole table every batch.
Tables whose instant is indexed already (emails, runs, reply_reviews, geocode_cache,
idempotency_keys, directory_imports, published outbox rows) get nothing. Idempotent (IF NOT
EXISTS) and reversible.

Revision ID: 0016_retention
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0016_retention"
down_revision = "0015"
branch_labels = None
depends_on = None

# (schema, index, table, columns, partial condition)
INDEXES = (
    ("patient_service", "processed_events_processed_at", "processed_events", "processed_at", None),
    ("matching_service", "processed_events_processed_at", "processed_events", "processed_at", None),
    ("communication_service", "processed_events_processed_at", "processed_events", "processed_at", None),
    (
        "matching_service",
        "searches_ended_updated",
        "searches",
        "updated_at",
        "status IN ('placed', 'cancelled')",
    ),
    (
        "matching_service",
        "bundles_closed_updated",
        "bundles",
        "updated_at",
        "status IN ('answered', 'expired', 'discarded')",
    ),
    ("matching_service", "staff_alerts_search", "staff_alerts", "search_id", "search_id IS NOT NULL"),
    ("matching_service", "staff_alerts_bundle", "staff_alerts", "bundle_id", "bundle_id IS NOT NULL"),
    ("communication_service", "inbound_replies_received", "inbound_replies", "received_at", None),
    (
        "communication_service",
        "phone_call_tasks_completed_notes",
        "phone_call_tasks",
        "completed_at",
        "outcome_notes IS NOT NULL",
    ),
)


def upgrade() -> None:
    for schema, index, table, columns, condition in INDEXES:
        where = f" WHERE {condition}" if condition else ""
        op.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} ({columns}){where}")


def downgrade() -> None:
    for schema, index, _table, _columns, _condition in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {schema}.{index}")
