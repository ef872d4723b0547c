"""Read models the matching service keeps of patients and therapists.

The matching service never reads the patient or therapist schemas. It keeps its own copy of
what it needs, fed by `patient.*` and `therapist.*` events (delivered at least once, in no
guaranteed order). Applying an event is idempotent and order-safe:
- an event already applied (same eventId) changes nothing;
- an event older than the copy we hold (envelope timestamp) changes nothing;
- `*.deleted` leaves a tombstone, so a late `updated` cannot resurrect an erased patient.
What is kept is the payload as its contract declares it: the minimal fields matching needs
(contracts/patients.py, contracts/therapists.py; docs/events.md), never names or contacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import JsonValue

from therapy_platform.contracts.catalog import EVENT_PAYLOADS
from therapy_platform.platform.events import EventEnvelope

# The events that feed (and may change what matching does with) the read models.
PROFILE_EVENT_TYPES: Final = (
    "patient.created",
    "patient.updated",
    "patient.deleted",
    "therapist.created",
    "therapist.imported",
    "therapist.updated",
    "therapist.blocked",
    "therapist.unblocked",
    "therapist.deleted",  # therapist erasure: a tombstone
)


class ProfileKind(StrEnum):
    PATIENT = "patient"
    THERAPIST = "therapist"


@dataclass(frozen=True)
class ProfileChange:
    """What one event does to one read-model row: `data` is the producer's payload as its
    contract declares it (the read side picks its fields); None means a tombstone."""

    kind: ProfileKind
    entity_id: str
    event_id: str
    occurred_at: datetime
    data: dict[str, JsonValue] | None


class NotAProfileEventError(ValueError):
    pass


def change_from_event(envelope: EventEnvelope) -> ProfileChange:
    family, _, verb = envelope.event_type.partition(".")
    try:
        kind = ProfileKind(family)
    except ValueError as error:
        raise NotAProfileEventError(f"{envelope.event_type} does not feed a read model") from error
    entity_id = envelope.payload.get("id")
    if not isinstance(entity_id, str) or not entity_id:
        raise NotAProfileEventError(f"{envelope.event_type} {envelope.event_id} has no payload id")
    data = None if verb == "deleted" else _minimal(envelope)
    return ProfileChange(kind, entity_id, str(envelope.event_id), envelope.timestamp, data)


def _minimal(envelope: EventEnvelope) -> dict[str, JsonValue]:
    """The payload's fields its contract declares (contracts/catalog.py): the read model keeps
    what matching needs and nothing a producer may add by mistake. Lenient like the rest of
    the read side (a missing field is read as absent), strict about what is kept."""
    declared = EVENT_PAYLOADS[envelope.event_type].model_fields
    return {name: value for name, value in envelope.payload.items() if name in declared}
