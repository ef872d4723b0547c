"""Communication histories per person: replies found by the email they answer.

`GET /api/v2/patients/{id}/communications` and `.../therapists/{id}/communications` read the
replies to a person's emails (`email_id IN (their emails)`); emails are already indexed by
recipient (`emails_recipient_history`, 0009).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SCHEMA = "communication_service"


def upgrade() -> None:
    op.create_index("inbound_replies_email", "inbound_replies", ["email_id", "received_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("inbound_replies_email", "inbound_replies", schema=SCHEMA)
