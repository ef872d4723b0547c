"""Therapists' right to object (GDPR Art. 21): a therapist who asked not to be contacted again
keeps `contact_opt_out_at` (when) and `contact_opt_out_reason` (a code: `reply`, `staff`; never
free text). Matching honours it; directory imports never clear it; only an admin's opt-in does.

Revision ID: 0019_rights
Revises: 0018_perasure
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0019_rights"
down_revision = "0018_perasure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE therapist_service.therapists"
        " ADD COLUMN IF NOT EXISTS contact_opt_out_at timestamp with time zone,"
        " ADD COLUMN IF NOT EXISTS contact_opt_out_reason varchar(20)"
    )
    op.execute(
        "ALTER TABLE therapist_service.therapists"
        " ADD CONSTRAINT therapists_contact_opt_out_consistent"
        " CHECK ((contact_opt_out_at IS NULL) = (contact_opt_out_reason IS NULL))"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE therapist_service.therapists"
        " DROP CONSTRAINT IF EXISTS therapists_contact_opt_out_consistent"
    )
    op.execute(
        "ALTER TABLE therapist_service.therapists"
        " DROP COLUMN IF EXISTS contact_opt_out_reason,"
        " DROP COLUMN IF EXISTS contact_opt_out_at"
    )
