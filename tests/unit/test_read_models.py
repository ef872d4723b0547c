from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from therapy_platform.matching.domain.read_models import NotAProfileEventError, ProfileKind, change_from_event
from therapy_platform.platform.events import new_envelope


def test_created_and_updated_events_carry_the_payload() -> None:
    entity = str(uuid.uuid4())
    envelope = new_envelope("therapist.blocked", "therapist-service", {"id": entity, "status": "blocked"})
    change = change_from_event(envelope)
    assert change.kind is ProfileKind.THERAPIST
    assert change.entity_id == entity and change.data == {"id": entity, "status": "blocked"}
    assert change.event_id == str(envelope.event_id)


def test_deleted_events_become_tombstones() -> None:
    envelope = new_envelope("patient.deleted", "patient-service", {"id": str(uuid.uuid4())})
    assert change_from_event(envelope).data is None


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [("bundle.sent", {"id": "b1"}), ("patient.created", {}), ("patient.updated", {"id": 7})],
)
def test_events_that_feed_no_read_model_are_refused(event_type: str, payload: dict[str, object]) -> None:
    with pytest.raises(NotAProfileEventError):
        change_from_event(new_envelope(event_type, "x", payload, now=datetime.now(UTC)))
