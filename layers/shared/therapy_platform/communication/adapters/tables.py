"""SQLAlchemy Core tables of the communication service (schema `communication_service`).
The DDL lives in infra/migrations/versions/0009_communication.py; this only describes it."""

from __future__ import annotations

from typing import Final

from sqlalchemy import BigInteger, Column, DateTime, Identity, SmallInteger, String, Table, Text, Uuid

from therapy_platform.platform.tables import metadata

COMMUNICATION_SCHEMA: Final = "communication_service"

emails = Table(
    "emails",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("recipient_name", String(300)),
    Column("recipient_type", String(20), nullable=False),
    Column("recipient_id", Uuid),
    Column("sender", String(400), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", SmallInteger, nullable=False),
    Column("max_attempts", SmallInteger, nullable=False),
    Column("interrupted_attempts", SmallInteger, nullable=False),
    Column("last_error", Text),
    Column("message_id", String(400), nullable=False),
    Column("reply_to", String(254)),
    Column("provider_message_id", String(400)),
    Column("bundle_id", Uuid),
    Column("bundle_reference", String(20)),
    Column("idempotency_key", String(200)),
    Column("claim_token", Uuid),
    Column("lease_until", DateTime(timezone=True)),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_enqueued_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("queued_at", DateTime(timezone=True)),
    Column("sent_at", DateTime(timezone=True)),
    Column("failed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    schema=COMMUNICATION_SCHEMA,
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("email_id", Uuid, nullable=False),
    Column("attempt", SmallInteger, nullable=False),
    Column("claim_token", Uuid, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("outcome", String(20)),
    Column("error", Text),
    schema=COMMUNICATION_SCHEMA,
)
