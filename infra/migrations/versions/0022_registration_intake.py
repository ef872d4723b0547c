"""Patients' self-registration over Kafka (docs/registration-intake.md).

- `patient_service.parked_registrations`: records of the topic `patient-registrations` that did
  not become a patient (unsigned, forged, malformed, invalid, or intake paused), for staff. It
  holds where the record lies in Kafka, its SHA-256 fingerprint, the reason and, for a signed
  record that failed validation, field paths with error codes: never the record's content.
  A redelivered record parks once (unique topic, partition, offset).
- The communication service's email kinds gain `patient_registration_confirmed` (the German
  confirmation of a self-registration).

Idempotency per registration id needs no table: the intake claims the registration id in
`patient_service.processed_events` in the patient's transaction.

Revision ID: 0022_registration_intake
Revises: 0021_encryption
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_registration_intake"
down_revision = "0021_encryption"
branch_labels = None
depends_on = None

SCHEMA = "patient_service"
COMMUNICATION = "communication_service"
REASONS = ("unsigned", "bad_signature", "malformed", "invalid", "intake_paused")
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
NEW_KIND = "patient_registration_confirmed"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "parked_registrations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("registration_id", sa.Uuid),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("record_timestamp", sa.DateTime(timezone=True)),
        sa.Column("value_sha256", sa.String(64), nullable=False),
        sa.Column("problems", sa.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.CheckConstraint(_in("reason", REASONS), name="parked_registrations_reason_known"),
        sa.UniqueConstraint("topic", "partition", "offset", name="parked_registrations_position"),
        schema=SCHEMA,
    )
    op.create_index(
        "parked_registrations_recent", "parked_registrations", [sa.text("parked_at DESC")], schema=SCHEMA
    )
    _email_kinds((*EMAIL_KINDS, NEW_KIND))


def downgrade() -> None:
    op.execute(f"DELETE FROM {COMMUNICATION}.emails WHERE kind = '{NEW_KIND}'")
    _email_kinds(EMAIL_KINDS)
    op.drop_table("parked_registrations", schema=SCHEMA)


def _email_kinds(kinds: tuple[str, ...]) -> None:
    op.execute(f"ALTER TABLE {COMMUNICATION}.emails DROP CONSTRAINT emails_kind_known")
    op.execute(
        f"ALTER TABLE {COMMUNICATION}.emails ADD CONSTRAINT emails_kind_known CHECK ({_in('kind', kinds)})"
    )
