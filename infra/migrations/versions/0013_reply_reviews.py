"""The staff review list of reply intake: messages to a reply address that are not attached to a
bundle or person (forged or unauthenticated senders, SES spam/virus verdicts, unknown bundles,
oversized or unreadable messages). A separate table, so no history query can ever show them as
part of a bundle; one row per inbox key (a message taken in again after a crash is not listed
twice).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SCHEMA = "communication_service"


def upgrade() -> None:
    op.create_table(
        "reply_reviews",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("inbox_key", sa.String(1024), nullable=False, unique=True),
        sa.Column("reasons", JSONB, nullable=False),
        sa.Column("message_id", sa.String(400)),
        sa.Column("from_address", sa.String(254)),
        sa.Column("to_address", sa.String(254)),
        sa.Column("subject", sa.String(1000)),
        sa.Column("text", sa.Text),
        sa.Column("claimed_bundle_reference", sa.String(20)),
        sa.Column("verdicts", JSONB, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("reply_reviews_received", "reply_reviews", ["received_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("reply_reviews_received", "reply_reviews", schema=SCHEMA)
    op.drop_table("reply_reviews", schema=SCHEMA)
