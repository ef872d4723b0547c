"""Field-level encryption of patient fields (patients/adapters/field_cipher.py): `email`,
`phone` and `street` of `patient_service.patients` become `text` (a sealed value, `enc1:` plus
the wrapped data key, nonce and ciphertext in base64, is ~300 characters; `notes` is text
already). The length limits stay where they always were, in the API's validation. Duplicate
detection can no longer look a sealed email up: its index becomes (lower(last_name),
birth_date), and the email is compared after opening the few rows found.

Downgrade restores the varchar limits and the old index; it fails (value too long) while sealed
values remain: open them first with `infra/tools/encrypt_patient_fields.py --decrypt`.

Revision ID: 0021_encryption
Revises: 0020_events
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0021_encryption"
down_revision = "0020_events"
branch_labels = None
depends_on = None

SCHEMA = "patient_service"
LIMITS = {"email": 254, "phone": 40, "street": 200}


def upgrade() -> None:
    op.execute(
        f"ALTER TABLE {SCHEMA}.patients " + ", ".join(f"ALTER COLUMN {column} TYPE text" for column in LIMITS)
    )
    op.execute(f"DROP INDEX IF EXISTS {SCHEMA}.patients_identity")
    op.execute(
        f"CREATE INDEX patients_identity ON {SCHEMA}.patients (lower(last_name), birth_date) "
        "WHERE erased_at IS NULL"
    )


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {SCHEMA}.patients_identity")
    op.execute(
        f"ALTER TABLE {SCHEMA}.patients "
        + ", ".join(f"ALTER COLUMN {column} TYPE varchar({limit})" for column, limit in LIMITS.items())
    )
    op.execute(
        f"CREATE INDEX patients_identity ON {SCHEMA}.patients (lower(email), lower(last_name), birth_date) "
        "WHERE erased_at IS NULL"
    )
