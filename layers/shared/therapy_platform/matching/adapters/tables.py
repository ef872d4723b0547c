"""SQLAlchemy Core tables of the matching service (schema `matching_service`): its read models
of patients and therapists and its own records. The DDL lives in infra/migrations/versions/
0006_matching_read_models.py and 0007_matching_bundles.py; this only describes it. The outbox
and processed_events tables are the platform's (`platform/tables.py`)."""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from therapy_platform.matching.domain.read_models import ProfileKind
from therapy_platform.platform.tables import metadata

MATCHING_SCHEMA: Final = "matching_service"
TS = DateTime(timezone=True)


def _profile_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("data", JSONB(none_as_null=True)),  # the producer's payload; NULL: tombstone (erased)
        Column("source_event_id", Uuid, nullable=False),
        Column("source_timestamp", TS, nullable=False),
        Column("updated_at", TS, nullable=False),
        schema=MATCHING_SCHEMA,
    )


patient_profiles = _profile_table("patient_profiles")
therapist_profiles = _profile_table("therapist_profiles")
PROFILE_TABLES: Final = {ProfileKind.PATIENT: patient_profiles, ProfileKind.THERAPIST: therapist_profiles}

searches = Table(
    "searches",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("total_requested_contacts", Integer, nullable=False),
    Column("placed_therapist_id", Uuid),
    Column("placed_at", TS),
    Column("status_reason", Text),
    Column("notes", Text),
    schema=MATCHING_SCHEMA,
)

search_exclusions = Table(
    "search_exclusions",
    metadata,
    Column("search_id", Uuid, ForeignKey(searches.c.id), primary_key=True),
    Column("therapist_id", Uuid, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("excluded_at", TS, nullable=False),
    Column("excluded_by", String(100), nullable=False),
    schema=MATCHING_SCHEMA,
)

rounds = Table(
    "rounds",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_date", Date, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("trigger", String(20), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("parameters", JSONB, nullable=False),
    Column("summary", JSONB),
    schema=MATCHING_SCHEMA,
)

bundles = Table(
    "bundles",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("number", BigInteger, Identity(), nullable=False, unique=True),
    Column("therapist_id", Uuid, nullable=False),
    Column("practice_key", String(300), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("round_id", Uuid, ForeignKey(rounds.c.id)),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("sent_at", TS),
    Column("channel", String(10)),
    Column("reminder_sent_at", TS),
    Column("answered_at", TS),
    Column("expired_at", TS),
    Column("discarded_at", TS),
    Column("discard_reason", Text),
    Column("response_type", String(30)),
    Column("accepted_count", SmallInteger),
    Column("rejected_count", SmallInteger),
    Column("no_response_count", SmallInteger),
    Column("response", JSONB),
    Column("applied_filters", ARRAY(String(40)), nullable=False),
    Column("skipped_filters", ARRAY(String(40)), nullable=False),
    Column("notes", Text),
    schema=MATCHING_SCHEMA,
)

bundle_members = Table(
    "bundle_members",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("bundle_id", Uuid, ForeignKey(bundles.c.id), nullable=False),
    Column("search_id", Uuid, ForeignKey(searches.c.id), nullable=False),
    Column("patient_id", Uuid, nullable=False),
    Column("position", SmallInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("outcome", String(30)),
    Column("responded_at", TS),
    Column("notes", Text),
    schema=MATCHING_SCHEMA,
)

therapist_cooling = Table(
    "therapist_cooling",
    metadata,
    Column("therapist_id", Uuid, primary_key=True),
    Column("next_contact_allowed_on", Date, nullable=False),
    Column("set_at", TS, nullable=False),
    Column("bundle_id", Uuid),
    schema=MATCHING_SCHEMA,
)

staff_alerts = Table(
    "staff_alerts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("bundle_id", Uuid),
    Column("search_id", Uuid),
    Column("therapist_id", Uuid),
    Column("message", Text, nullable=False),
    Column("resolved_at", TS),
    schema=MATCHING_SCHEMA,
)

matching_audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", TS, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(40), nullable=False),
    Column("entity_type", String(20), nullable=False),
    Column("entity_id", Uuid, nullable=False),
    Column("before", JSONB),
    Column("after", JSONB),
    Column("reason", Text),
    schema=MATCHING_SCHEMA,
)
