"""Outbox rows back off and are parked after too many failed publish attempts
(platform/outbox_retry.py); published rows are purged after a retention. Every service schema's
outbox gets `next_attempt_at` and `parked_at` (`attempts` and `last_error` exist since 0001;
added here if missing), an index of the rows the relay claims, one of the parked rows and one
of the published rows for the purge. Idempotent: every statement is IF NOT EXISTS.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-12
"""

from __future__ import annotations

from alembic import op

from schemas import SERVICE_SCHEMAS

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for schema in SERVICE_SCHEMAS:
        op.execute(
            f"ALTER TABLE {schema}.outbox"
            " ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0,"
            " ADD COLUMN IF NOT EXISTS last_error text,"
            " ADD COLUMN IF NOT EXISTS next_attempt_at timestamp with time zone,"
            " ADD COLUMN IF NOT EXISTS parked_at timestamp with time zone"
        )
        op.execute(
            f"CREATE INDEX IF NOT EXISTS outbox_due ON {schema}.outbox (id)"
            " WHERE published_at IS NULL AND parked_at IS NULL"
        )
        op.execute(
            f"CREATE INDEX IF NOT EXISTS outbox_parked ON {schema}.outbox (id) WHERE parked_at IS NOT NULL"
        )
        op.execute(
            f"CREATE INDEX IF NOT EXISTS outbox_published_at ON {schema}.outbox (published_at)"
            " WHERE published_at IS NOT NULL"
        )


def downgrade() -> None:
    for schema in SERVICE_SCHEMAS:
        for index in ("outbox_due", "outbox_parked", "outbox_published_at"):
            op.execute(f"DROP INDEX IF EXISTS {schema}.{index}")
        op.execute(
            f"ALTER TABLE {schema}.outbox"
            " DROP COLUMN IF EXISTS next_attempt_at, DROP COLUMN IF EXISTS parked_at"
        )
