"""`therapist.deleted` in the communication service: which values identify the therapist in
stored text (pure), and the reaction (the contact tombstoned so no older event revives it, the
erasure audited with numbers only, once per event). The SQL scrub is proven against PostgreSQL
in tests/integration/test_therapist_erasure_postgres.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from communication_state_fakes import (
    StateWorld,
    bundle_sent_payload,
    deliver,
    envelope,
    state_world,
)
from therapy_platform.communication.domain.therapist_erasure import ERASED_MARK, identifying_values
from therapy_platform.communication.use_cases.events import HANDLED_EVENT_TYPES

NOW = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)


def test_identifying_values_are_contact_data_and_full_names_longest_first() -> None:
    values = identifying_values(
        [
            {
                "first_name": "Änne",
                "last_name": "Müller",
                "email": "Praxis@Mueller.example",
                "phone": "0241 123456",
            },
            None,
            {"therapist_name": "Dr. Änne Müller", "phone": "0241 123456"},
            {"name": "Müller"},  # a bare last name would erase other people's names too
        ]
    )
    assert set(values) == {
        "Änne Müller",
        "Dr. Änne Müller",
        "Praxis@Mueller.example",
        "praxis@mueller.example",
        "0241 123456",
        "0241123456",
    }
    assert values[0] == "Praxis@Mueller.example" and values == sorted(values, key=lambda v: (-len(v), v))
    assert "Müller" not in values and ERASED_MARK == "[gelöscht]"


def test_short_numbers_are_not_replaced_as_digits() -> None:
    assert identifying_values([{"phone": "12-34"}]) == ["12-34"]


def test_therapist_deleted_is_handled_once_and_audits_numbers_only() -> None:
    w: StateWorld = state_world(now=NOW)
    therapist_id = uuid.uuid4()
    # Of the therapist events, communication consumes only the erasure (contacts are looked up).
    assert "therapist.deleted" in HANDLED_EVENT_TYPES and "therapist.created" not in HANDLED_EVENT_TYPES
    deleted = envelope(
        "therapist.deleted",
        {"id": str(therapist_id), "erased_at": NOW.isoformat()},
        at=NOW + timedelta(seconds=1),
    )

    deliver(w.context, deleted)
    deliver(w.context, deleted)  # redelivered: nothing happens twice

    erasures = [entry for entry in w.database.state.audit if entry.get("erased_therapist") == therapist_id]
    audited = [entry for entry in w.database.state.audit if entry.get("action") == "erase_therapist"]
    assert len(erasures) == 1 and len(audited) == 1
    assert audited[0]["entity_id"] == therapist_id and audited[0]["entity_type"] == "therapist"
    assert all(isinstance(value, int) for value in audited[0]["detail"].values())
    assert "Praxis" not in json.dumps(audited[0]["detail"])


def test_a_bundle_sent_that_arrives_after_the_erasure_writes_nothing() -> None:
    w: StateWorld = state_world(now=NOW)
    payload = bundle_sent_payload(number=1042, sent_at=NOW)
    therapist_id = uuid.UUID(payload["therapist_id"])
    erased = {"id": str(therapist_id), "erased_at": NOW.isoformat()}
    deliver(w.context, envelope("therapist.deleted", erased, at=NOW))

    reaction = deliver(w.context, envelope("bundle.sent", payload, at=NOW))

    assert reaction.emails == () and reaction.calls == ()
    assert not w.database.emails and not w.database.state.bundles
