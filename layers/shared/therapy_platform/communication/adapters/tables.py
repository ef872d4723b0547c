"""SQLAlchemy Core tables of the communication service (schema `communication_service`; DDL in
infra/migrations/versions/0009_communication.py, 0010_communication_follow_up.py and
0013_reply_reviews.py, these only describe it). The event consumer's `processed_events` is the platform's
(`platform.tables.processed_events_table`).

The follow-up tables have their own MetaData: it also describes `emails` a second time, with
just the columns the history and reply matching read (and erasure rewrites)."""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

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


# --------------------------------------------------------------------------- follow-up

follow_up_metadata = MetaData(schema=COMMUNICATION_SCHEMA)

sent_bundles = Table(
    "sent_bundles",
    follow_up_metadata,
    Column("id", Uuid, primary_key=True),
    Column("reference", String(20), nullable=False),
    Column("therapist_id", Uuid, nullable=False),
    Column("therapist", JSONB(none_as_null=True)),
    Column("channel", String(10)),
    Column("members", JSONB, nullable=False),
    Column("withdrawn_references", JSONB, nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("answered_at", DateTime(timezone=True)),
    Column("expired_at", DateTime(timezone=True)),
    Column("reminder_sent_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


phone_call_tasks = Table(
    "phone_call_tasks",
    follow_up_metadata,
    Column("id", Uuid, primary_key=True),
    Column("purpose", String(20), nullable=False),
    Column("therapist_id", Uuid, nullable=False),
    Column("therapist_name", String(300), nullable=False),
    Column("phone", String(40)),
    Column("bundle_id", Uuid),
    Column("bundle_reference", String(20)),
    Column("slot_start", DateTime(timezone=True), nullable=False),
    Column("scheduling_rule", String(20)),
    Column("status", String(20), nullable=False),
    Column("outcome", String(30)),
    Column("outcome_notes", Text),
    Column("completed_at", DateTime(timezone=True)),
    Column("completed_by", String(200)),
    Column("idempotency_key", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

inbound_replies = Table(
    "inbound_replies",
    follow_up_metadata,
    Column("id", Uuid, primary_key=True),
    Column("message_id", String(400)),
    Column("in_reply_to", String(1000)),
    Column("references", Text),
    Column("from_address", String(254), nullable=False),
    Column("to_address", String(254), nullable=False),
    Column("subject", String(1000)),
    Column("text", Text),
    Column("html", Text),
    Column("bundle_reference", String(20)),
    Column("email_id", Uuid),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("processed_at", DateTime(timezone=True)),
)

# Messages reply intake did not attach (infra/migrations/versions/0013_reply_reviews.py).
reply_reviews = Table(
    "reply_reviews",
    follow_up_metadata,
    Column("id", Uuid, primary_key=True),
    Column("inbox_key", String(1024), nullable=False, unique=True),
    Column("reasons", JSONB, nullable=False),
    Column("message_id", String(400)),
    Column("from_address", String(254)),
    Column("to_address", String(254)),
    Column("subject", String(1000)),
    Column("text", Text),
    Column("claimed_bundle_reference", String(20)),
    Column("verdicts", JSONB, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    follow_up_metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("entity_type", String(30), nullable=False),
    Column("entity_id", Uuid, nullable=False),
    Column("detail", JSONB),
)

# The columns of `emails` the history and reply matching read (and erasure rewrites).
email_history = Table(
    "emails",
    follow_up_metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("recipient_name", String(300)),
    Column("recipient_type", String(20), nullable=False),
    Column("recipient_id", Uuid),
    Column("subject", String(300), nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", SmallInteger, nullable=False),
    Column("last_error", Text),
    Column("message_id", String(400), nullable=False),
    Column("bundle_reference", String(20)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("failed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
