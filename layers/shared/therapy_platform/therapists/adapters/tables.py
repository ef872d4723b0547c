"""SQLAlchemy Core tables of the therapist service (schema `therapist_service`).
The DDL lives in infra/migrations/versions/0004_therapists.py; this only describes it."""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Identity,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from therapy_platform.platform.tables import metadata

THERAPIST_SCHEMA: Final = "therapist_service"

therapists = Table(
    "therapists",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("directory_id", String(100)),
    Column("salutation", String(60)),
    Column("gender", String(20), nullable=False),
    Column("title", String(60)),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("street", String(200)),
    Column("postcode", String(5), nullable=False),
    Column("city", String(100)),
    Column("phone", String(40)),
    Column("fax", String(40)),
    Column("email", String(254)),
    Column("website", String(310)),
    Column("statutory_seat", Boolean, nullable=False),
    Column("procedures", ARRAY(String(2)), nullable=False),
    Column("languages", ARRAY(String(2)), nullable=False),
    Column("phone_windows", JSONB, nullable=False),
    Column("working_hours", JSONB, nullable=False),
    Column("preferred_age_min", SmallInteger),
    Column("preferred_age_max", SmallInteger),
    Column("preferred_patient_gender", String(20)),
    Column("offers_group_therapy", Boolean, nullable=False),
    Column("group_only", Boolean, nullable=False),
    Column("symptom_preferences", ARRAY(String(60)), nullable=False),
    Column("potentially_available", Boolean, nullable=False),
    Column("status", String(20), nullable=False),
    Column("block_reason", Text),
    Column("next_contact_allowed_on", Date),
    Column("staff_edited_fields", ARRAY(String(60)), nullable=False),
    Column("latitude", Double),
    Column("longitude", Double),
    Column("location_precision", String(10), nullable=False),
    Column("location_flagged", Boolean, nullable=False),
    Column("practice_key", String(254)),
    # 0019_rights: the therapist's objection to further inquiries (GDPR Art. 21); a code, no text.
    Column("contact_opt_out_at", DateTime(timezone=True)),
    Column("contact_opt_out_reason", String(20)),
    # Case-folded "first last city email", written by the adapter (Python's casefold does not
    # depend on the database's locale); free-text search runs LIKE on it (trigram index).
    Column("search_text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    schema=THERAPIST_SCHEMA,
)

therapist_audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(40), nullable=False),
    Column("entity_id", Uuid, nullable=False),
    Column("before", JSONB),
    Column("after", JSONB),
    Column("reason", Text),
    schema=THERAPIST_SCHEMA,
)
