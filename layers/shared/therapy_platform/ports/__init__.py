"""Small interfaces the use cases depend on, one module per concern. Adapters implement them
for PostgreSQL, EventBridge and Kafka; tests implement them in memory."""

from therapy_platform.ports.events import (
    EventPublisher,
    EventSink,
    Outbox,
    OutboxBatch,
    OutboxRecord,
    OutboxStore,
    PublishOutcome,
)
from therapy_platform.ports.geocoding import (
    AddressGeocoder,
    CacheHit,
    Geocoder,
    GeocodingCache,
    PostcodeLookup,
)
from therapy_platform.ports.patients import (
    PatientAuditAction,
    PatientAuditEntry,
    PatientAuditLog,
    PatientRepository,
    PatientUnitOfWork,
)
from therapy_platform.ports.therapists import TherapistAuditLog, TherapistRepository, TherapistUnitOfWork

__all__ = [
    "AddressGeocoder",
    "CacheHit",
    "EventPublisher",
    "EventSink",
    "Geocoder",
    "GeocodingCache",
    "Outbox",
    "OutboxBatch",
    "OutboxRecord",
    "OutboxStore",
    "PatientAuditAction",
    "PatientAuditEntry",
    "PatientAuditLog",
    "PatientRepository",
    "PatientUnitOfWork",
    "PostcodeLookup",
    "PublishOutcome",
    "TherapistAuditLog",
    "TherapistRepository",
    "TherapistUnitOfWork",
]
