"""The base of every event payload model in `contracts/` (and of the models nested in one).

Payload models describe what travels on the bus; they are owned by no service. A producer
builds its payload from its own domain model and a contract test (tests/unit/
test_event_contracts.py) proves the two agree; a consumer parses the payload with the
contract model, never with the producer's API or domain model.

Evolution rule (tolerant reader): a producer may ADD a field without notice, so consumers
must not fail on fields they do not know. Payloads therefore ignore unknown fields
(`extra="ignore"`: the JSON Schema leaves `additionalProperties` open); snapshots that
consumers keep whole (patient and therapist read models) keep them (`extra="allow"`, see
those models). Removing or renaming a field, narrowing a type or an enum is a breaking change
and needs a new event type.

Contract models check the wire shape (types, enum values, formats); they do not re-check the
producer's business rules (age bounds, status invariants ...): those belong to the producer.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class EventPayload(BaseModel):
    """Frozen; unknown fields from a newer producer are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")
