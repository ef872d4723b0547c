from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import jsonschema
import pytest
from pydantic import ValidationError

from therapy_platform.platform.events import (
    TOPIC_BY_PREFIX,
    BusMessage,
    EventEnvelope,
    UnknownEventTypeError,
    new_envelope,
    topic_for,
)
from tools import event_schemas


def test_envelope_uses_the_seed_field_names_on_the_wire() -> None:
    envelope = new_envelope("patient.created", "patient-service", {"id": "p1"})
    wire = envelope.to_wire()
    assert set(wire) == {"eventId", "eventType", "version", "timestamp", "producer", "payload"}
    assert wire["version"] == "1.0"
    assert EventEnvelope.model_validate(json.loads(json.dumps(wire))) == envelope


def test_envelope_rejects_malformed_event_types() -> None:
    with pytest.raises(ValidationError):
        EventEnvelope(
            event_id=uuid.uuid4(),
            event_type="PatientCreated",
            timestamp=datetime.now(UTC),
            producer="x",
            payload={},
        )


@pytest.mark.parametrize(
    ("event_type", "topic"),
    [
        ("patient.created", "patient-events"),
        ("therapist.blocked", "therapist-events"),
        ("search.status_changed", "search-events"),
        ("bundle.sent", "bundle-events"),
        ("cooling.period_started", "bundle-events"),
        ("email.sent", "communication-events"),
        ("phone_call.scheduled", "communication-events"),
    ],
)
def test_every_event_family_has_its_topic(event_type: str, topic: str) -> None:
    assert topic_for(event_type) == topic


def test_unknown_event_type_has_no_topic() -> None:
    with pytest.raises(UnknownEventTypeError):
        topic_for("invoice.paid")
    assert all(prefix.endswith(".") for prefix in TOPIC_BY_PREFIX)


def test_committed_event_schemas_match_the_code() -> None:
    assert event_schemas.main(["--check"]) == 0


def test_a_real_patient_event_validates_against_its_committed_schema() -> None:
    schema = json.loads((event_schemas.SCHEMA_DIR / "patient.created.schema.json").read_text())
    bus_schema = json.loads((event_schemas.SCHEMA_DIR / "bus-message.schema.json").read_text())
    sample = json.loads((event_schemas.SCHEMA_DIR.parent / "kafka_bridge" / "sqs_batch.json").read_text())
    detail = json.loads(sample["Records"][0]["body"])["detail"]
    jsonschema.validate(detail, bus_schema)
    jsonschema.validate(detail["envelope"], schema)
    broken = {**detail["envelope"], "eventType": "patient.deleted"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    assert BusMessage.model_validate(detail).key == detail["envelope"]["payload"]["id"]
