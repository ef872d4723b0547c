"""`Idempotency-Key`s of the creating POSTs, one table per service schema that has such routes
(platform/idempotency.py): patients, therapists, searches and bundle rounds, ad-hoc emails.
Rows expire after 24 hours (deleted when a key is claimed; `created_at` is indexed for that).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SCHEMAS = ("patient_service", "therapist_service", "matching_service", "communication_service")


def upgrade() -> None:
    for schema in SCHEMAS:
        op.create_table(
            "idempotency_keys",
            sa.Column("route", sa.String(200), nullable=False),
            sa.Column("actor", sa.String(200), nullable=False),
            sa.Column("key", sa.String(100), nullable=False),
            sa.Column("request_hash", sa.String(64), nullable=False),
            sa.Column("status_code", sa.Integer),
            sa.Column("body", sa.Text),
            sa.Column("location", sa.Text),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("route", "actor", "key", name="idempotency_keys_pkey"),
            schema=schema,
        )
        op.create_index(
            f"{schema}_idempotency_keys_created_at", "idempotency_keys", ["created_at"], schema=schema
        )


def downgrade() -> None:
    for schema in SCHEMAS:
        op.drop_table("idempotency_keys", schema=schema)
