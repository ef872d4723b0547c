"""Domain events and their envelope (the seed's shape: eventId, eventType, version, timestamp,
producer, payload). Events are written to a service's outbox in the same transaction as the
change they describe, relayed to EventBridge and bridged to Kafka."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

ENVELOPE_VERSION: Final = "1.0"

# Event types and the Kafka topic each family lands on. A new event type must be listed here;
# the bridge refuses (dead-letters) events of unknown types instead of guessing a topic.
TOPIC_BY_PREFIX: Final[dict[str, str]] = {
    "patient.": "patient-events",
    "therapist.": "therapist-events",
    "search.": "search-events",
    "bundle.": "bundle-events",
    "cooling.": "bundle-events",
    "email.": "communication-events",
    "phone_call.": "communication-events",
}


class EventEnvelope(BaseModel):
    """The envelope every consumer sees on Kafka."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(alias="eventId")
    event_type: str = Field(alias="eventType", pattern=r"^[a-z_]+\.[a-z_]+$")
    version: str = ENVELOPE_VERSION
    timestamp: datetime
    producer: str = Field(min_length=1)
    payload: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class BusMessage(BaseModel):
    """What travels on the EventBridge bus as `detail`: the envelope plus its partition key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, description="Entity id; Kafka message key")
    envelope: EventEnvelope


def new_envelope(
    event_type: str, producer: str, payload: dict[str, Any], *, now: datetime | None = None
) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        event_type=event_type,
        timestamp=now or datetime.now(UTC),
        producer=producer,
        payload=payload,
    )


class UnknownEventTypeError(ValueError):
    pass


def topic_for(event_type: str) -> str:
    for prefix, topic in TOPIC_BY_PREFIX.items():
        if event_type.startswith(prefix):
            return topic
    raise UnknownEventTypeError(f"no Kafka topic is defined for event type {event_type!r}")
