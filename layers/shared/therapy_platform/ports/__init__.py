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
from therapy_platform.ports.geocoding import Geocoder
from therapy_platform.ports.patients import PatientRepository, PatientUnitOfWork

__all__ = [
    "EventPublisher",
    "EventSink",
    "Geocoder",
    "Outbox",
    "OutboxBatch",
    "OutboxRecord",
    "OutboxStore",
    "PatientRepository",
    "PatientUnitOfWork",
    "PublishOutcome",
]
