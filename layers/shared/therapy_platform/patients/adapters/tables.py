"""SQLAlchemy Core tables of the patient service (schema `patient_service`). Migrations
(infra/migrations) own the DDL; these definitions only describe what the code reads and writes."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from therapy_platform.platform.tables import metadata

PATIENT_SCHEMA = "patient_service"

patients = Table(
    "patients",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("salutation", String(30)),
    Column("gender", String(20), nullable=False),
    Column("first_name", String(100)),  # personal columns are NULL once a patient is erased
    Column("last_name", String(100)),
    Column("birth_date", Date),
    Column("birth_year", SmallInteger),
    # Sealed by the repository (ENCRYPTED_FIELDS: street, email, phone, notes): text columns.
    Column("street", Text),
    Column("postcode", String(5)),
    Column("postcode_prefix", String(2), nullable=False),
    Column("city", String(100)),
    Column("email", Text),
    Column("phone", Text),
    Column("health_insurer", String(100)),
    Column("insurance_type", String(20), nullable=False),
    Column("symptoms", ARRAY(Text), nullable=False),
    Column("previous_therapy", Boolean, nullable=False),
    Column("last_therapy_session", Date),
    Column("therapy_procedures", ARRAY(Text), nullable=False),
    Column("preferred_therapist_gender", String(10), nullable=False),
    Column("open_to_group_therapy", Boolean, nullable=False),
    Column("group_only", Boolean, nullable=False),
    Column("languages", ARRAY(Text)),
    Column("needs_shared_language", Boolean),
    Column("max_travel_km", SmallInteger, nullable=False),
    Column("travel_mode", String(10), nullable=False),
    Column("max_travel_minutes", SmallInteger),
    Column("availability", JSONB(none_as_null=True)),
    Column("excluded_therapist_ids", ARRAY(Uuid)),
    Column("notes", Text),
    Column("status", String(30), nullable=False),
    Column("latitude", Double),
    Column("longitude", Double),
    Column("location_precision", String(10)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("erased_at", DateTime(timezone=True)),
    schema=PATIENT_SCHEMA,
)

# Anonymous facts about erased patients (domain/statistics.py; infra/migrations/versions/
# 0018_perasure.py): no column links back to a patient.
patient_statistics = Table(
    "patient_statistics",
    metadata,
    # A random key (gen_random_uuid()), not a sequence: a sequence number would follow the
    # erasure order and so point back to the patient's audited erasure.
    Column("id", Uuid, primary_key=True, server_default=text("gen_random_uuid()")),
    Column("registered_month", Date, nullable=False),
    Column("erased_month", Date, nullable=False),
    Column("age_band", String(10)),
    Column("gender", String(20), nullable=False),
    Column("postcode_region", String(2), nullable=False),
    Column("insurance_type", String(20), nullable=False),
    Column("symptoms", ARRAY(Text), nullable=False),
    Column("previous_therapy", Boolean, nullable=False),
    Column("therapy_procedures", ARRAY(Text), nullable=False),
    Column("preferred_therapist_gender", String(10), nullable=False),
    Column("open_to_group_therapy", Boolean, nullable=False),
    Column("group_only", Boolean, nullable=False),
    Column("travel_mode", String(10), nullable=False),
    Column("final_status", String(30), nullable=False),
    schema=PATIENT_SCHEMA,
)

patient_audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(30), nullable=False),
    Column("entity_type", String(30), nullable=False),
    Column("entity_id", Uuid, nullable=False),
    Column("before", JSONB(none_as_null=True)),
    Column("after", JSONB(none_as_null=True)),
    Column("reason", Text),
    schema=PATIENT_SCHEMA,
)

# Kafka records of `patient-registrations` that did not become a patient (migration 0022): where
# the record lies, its fingerprint, the reason, field paths with codes; never its content.
parked_registrations = Table(
    "parked_registrations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("parked_at", DateTime(timezone=True), nullable=False),
    Column("reason", String(20), nullable=False),
    Column("registration_id", Uuid),
    Column("topic", String(249), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("record_timestamp", DateTime(timezone=True)),
    Column("value_sha256", String(64), nullable=False),
    Column("problems", ARRAY(Text), nullable=False),
    schema=PATIENT_SCHEMA,
)
