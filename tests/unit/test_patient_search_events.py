"""The patient's status follows their search: the `search.status_changed` consumer
(patients.bootstrap.search_events_consumer) on in-memory fakes, through the Lambda handler."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from fakes import FakeBus, InMemoryDatabase, patient_service
from support import FakeLambdaContext, load_function
from therapy_platform.contracts.searches import SearchStatus, SearchStatusChanged
from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.patients.bootstrap import SETTINGS, search_events_consumer
from therapy_platform.patients.domain.patient import Patient, PatientDraft, PatientStatus
from therapy_platform.patients.use_cases import register_patient
from therapy_platform.platform.events import BusMessage, EventEnvelope, new_envelope

NOW = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
DLQ = "https://sqs.eu-central-1.amazonaws.com/000000000000/patient-search-events-dlq"


@dataclass
class FakeQueues:
    dead_letters: list[tuple[str, str]] = field(default_factory=list)

    def send_to_dead_letter(self, dead_letter_queue_url: str, body: str, reason: str) -> None:
        self.dead_letters.append((dead_letter_queue_url, reason))

    def delay_retry(self, queue_arn: str, receipt_handle: str, delay_seconds: int) -> None:
        pass


@dataclass
class World:
    database: InMemoryDatabase
    bus: FakeBus
    queues: FakeQueues
    module: Any
    patient: Patient

    def deliver(self, *envelopes: EventEnvelope) -> dict[str, Any]:
        records = [
            {
                "messageId": f"m{index}",
                "body": json.dumps(
                    {
                        "detail-type": envelope.event_type,
                        "source": "therapy-platform.matching-service",
                        "detail": BusMessage(key="k", envelope=envelope).model_dump(
                            mode="json", by_alias=True
                        ),
                    }
                ),
                "receiptHandle": f"r{index}",
                "eventSourceARN": "arn:aws:sqs:eu-central-1:000000000000:patient-search-events",
                "attributes": {"ApproximateReceiveCount": "1"},
            }
            for index, envelope in enumerate(envelopes)
        ]
        return dict(self.module.lambda_handler({"Records": records}, FakeLambdaContext()))

    def status(self) -> PatientStatus:
        return self.database.patients[self.patient.id].status


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    database, bus, queues = InMemoryDatabase(), FakeBus(), FakeQueues()
    service = patient_service(database, bus=bus, clock=lambda: NOW)
    draft = PatientDraft(first_name="Änne", last_name="Müller", postcode="10115", symptoms=[Symptom.PANIC])
    patient = register_patient(service, draft).value
    module = load_function("patient_search_events")
    settings = replace(SETTINGS, consumer=SETTINGS.consumer.model_copy(update={"dead_letter_queue_url": DLQ}))
    consumer = search_events_consumer(settings, service=service, queues=lambda: queues)
    monkeypatch.setattr(module, "consumer", consumer)
    yield World(database, bus, queues, module, patient)


def status_changed(
    patient_id: uuid.UUID, status: SearchStatus, previous: SearchStatus | None
) -> EventEnvelope:
    payload = SearchStatusChanged(
        id=uuid.uuid4(), patient_id=patient_id, previous_status=previous, status=status, changed_at=NOW
    ).model_dump(mode="json")
    return new_envelope("search.status_changed", "matching-service", payload, now=NOW)


def test_the_patient_status_follows_the_search_and_the_change_is_published(world: World) -> None:
    started = status_changed(world.patient.id, SearchStatus.ACTIVE, None)
    assert world.deliver(started) == {"batchItemFailures": []}
    assert world.status() is PatientStatus.SEARCHING
    audit = world.database.patient_audit[-1]
    assert (audit.actor, audit.reason) == ("system:matching", "search active")
    assert audit.after == {"status": "searching"}
    updated = [m.envelope for m in world.bus.messages if m.envelope.event_type == "patient.updated"]
    assert [e.payload["status"] for e in updated] == ["searching"]  # published after the commit

    world.deliver(status_changed(world.patient.id, SearchStatus.PLACED, SearchStatus.ACTIVE))
    assert world.status() is PatientStatus.IN_THERAPY


@pytest.mark.parametrize(
    ("search_status", "patient_status"),
    [
        (SearchStatus.ACTIVE, PatientStatus.SEARCHING),
        (SearchStatus.PAUSED, PatientStatus.OPEN),
        (SearchStatus.PLACED, PatientStatus.IN_THERAPY),
        (SearchStatus.CANCELLED, PatientStatus.SEARCH_CANCELLED),
    ],
)
def test_every_search_status_has_its_patient_status(
    world: World, search_status: SearchStatus, patient_status: PatientStatus
) -> None:
    world.deliver(status_changed(world.patient.id, search_status, None))
    assert world.status() is patient_status


def test_a_redelivered_event_is_applied_once(world: World) -> None:
    started = status_changed(world.patient.id, SearchStatus.ACTIVE, None)
    placed = status_changed(world.patient.id, SearchStatus.PLACED, SearchStatus.ACTIVE)
    world.deliver(started)
    world.deliver(placed)
    audited = len(world.database.patient_audit)
    assert world.deliver(started) == {"batchItemFailures": []}  # an old event offered again
    assert world.status() is PatientStatus.IN_THERAPY and len(world.database.patient_audit) == audited


def test_the_same_status_again_changes_nothing(world: World) -> None:
    world.deliver(status_changed(world.patient.id, SearchStatus.ACTIVE, None))
    events = len(world.database.outbox)
    world.deliver(status_changed(world.patient.id, SearchStatus.ACTIVE, SearchStatus.PAUSED))
    assert world.status() is PatientStatus.SEARCHING and len(world.database.outbox) == events


def test_an_unknown_or_erased_patient_is_left_alone(world: World) -> None:
    assert world.deliver(status_changed(uuid.uuid4(), SearchStatus.ACTIVE, None)) == {"batchItemFailures": []}
    assert world.status() is PatientStatus.OPEN


def test_a_payload_its_contract_refuses_goes_to_the_dead_letter_queue(world: World) -> None:
    broken = new_envelope(
        "search.status_changed", "matching-service", {"patient_id": str(world.patient.id)}, now=NOW
    )
    assert world.deliver(broken) == {"batchItemFailures": []}
    ((queue, reason),) = world.queues.dead_letters
    assert queue == DLQ and "contracts.searches" in reason and "status" in reason
    assert world.status() is PatientStatus.OPEN
    assert not world.database.processed_events  # the claim rolled back with the handler


def test_other_event_types_are_acknowledged_and_ignored(world: World) -> None:
    other = new_envelope("search.created", "matching-service", {"id": str(uuid.uuid4())}, now=NOW)
    assert world.deliver(other) == {"batchItemFailures": []}
    assert world.status() is PatientStatus.OPEN and not world.queues.dead_letters
