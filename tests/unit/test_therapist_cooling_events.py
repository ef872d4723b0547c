"""The therapist service's consumer of `cooling.period_started` (TherapistMatchingEventsFunction):
the handler on the platform's consumer runtime with in-memory adapters."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from fakes import FakeBus, InMemoryOutboxStore
from support import FakeLambdaContext, load_function
from therapist_fakes import FakeGeocoder, InMemoryTherapistUnitOfWork, TherapistDatabase
from therapy_platform.platform.events import BusMessage, new_envelope
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.therapists.bootstrap import TherapistService
from therapy_platform.therapists.domain.therapist import TherapistDraft
from therapy_platform.therapists.use_cases import create_therapist

NOW = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
DRAFT = {
    "first_name": "Anna",
    "last_name": "Müller",
    "postcode": "52062",
    "city": "Aachen",
    "email": "praxis.mueller@example.org",
}


def sqs_event(payload: dict[str, Any], message_id: str = "m1") -> dict[str, Any]:
    envelope = new_envelope("cooling.period_started", "matching-service", payload, now=NOW)
    detail = BusMessage(key=str(payload.get("therapist_id")), envelope=envelope).model_dump(
        mode="json", by_alias=True
    )
    body = json.dumps({"detail-type": envelope.event_type, "detail": detail})
    return {
        "Records": [{"messageId": message_id, "body": body, "attributes": {"ApproximateReceiveCount": "1"}}]
    }


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, TherapistDatabase, FakeBus]:
    module = load_function("therapist_matching_events")
    database, bus = TherapistDatabase(), FakeBus()
    publish = PublishNow(store=lambda: InMemoryOutboxStore(database), publisher=lambda: bus)
    service = TherapistService(
        unit_of_work=lambda: InMemoryTherapistUnitOfWork(database, publish=publish),
        geocoder=FakeGeocoder,
        clock=lambda: NOW,
    )
    monkeypatch.setattr(module, "service", service)
    return module, database, bus


def cooling(therapist_id: uuid.UUID, until: date) -> dict[str, Any]:
    return {
        "therapist_id": str(therapist_id),
        "bundle_id": str(uuid.uuid4()),
        "next_contact_allowed_on": until.isoformat(),
        "cause": "response",
        "started_at": NOW.isoformat(),
    }


def test_cooling_is_stored_published_and_only_ever_grows(
    world: tuple[Any, TherapistDatabase, FakeBus],
) -> None:
    module, database, bus = world
    therapist = create_therapist(
        module.service.unit_of_work(),
        FakeGeocoder(),
        TherapistDraft.model_validate(DRAFT),
        actor="staff@team.example",
        now=NOW,
    ).value
    later, earlier = NOW.date() + timedelta(days=28), NOW.date() + timedelta(days=7)
    assert module.lambda_handler(sqs_event(cooling(therapist.id, later)), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    assert database.therapists[therapist.id].next_contact_allowed_on == later
    assert [m.envelope.event_type for m in bus.messages] == ["therapist.created", "therapist.updated"]
    # A redelivery or an earlier date changes nothing and publishes nothing.
    module.lambda_handler(sqs_event(cooling(therapist.id, later)), FakeLambdaContext())
    module.lambda_handler(sqs_event(cooling(therapist.id, earlier)), FakeLambdaContext())
    assert database.therapists[therapist.id].next_contact_allowed_on == later
    assert len(bus.messages) == 2


def test_a_payload_the_contract_refuses_fails_without_a_dead_letter_queue() -> None:
    consumer = load_function("therapist_matching_events").consumer
    report = consumer.handle(sqs_event({"therapist_id": "not-a-uuid"}, "bad"))
    assert report == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
