"""The `search.status_changed` consumer of the patient service on PostgreSQL (as the service's
own role): the patient's status and the eventId claim commit together, a redelivery changes
nothing, and the `patient.updated` it causes is published once the transaction has committed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from fakes import FakeBus
from therapy_platform.contracts.searches import SearchStatus, SearchStatusChanged
from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.patients.bootstrap import build, search_events_consumer
from therapy_platform.patients.domain.patient import PatientDraft
from therapy_platform.patients.use_cases import register_patient
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.events import BusMessage, new_envelope

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)


class NoQueues:
    """Nothing here is dead-lettered or delayed."""

    def send_to_dead_letter(self, dead_letter_queue_url: str, body: str, reason: str) -> None:
        raise AssertionError(reason)

    def delay_retry(self, queue_arn: str, receipt_handle: str, delay_seconds: int) -> None:
        raise AssertionError("no retry expected")


def _sqs_event(envelope: Any) -> dict[str, Any]:
    detail = BusMessage(key="k", envelope=envelope).model_dump(mode="json", by_alias=True)
    body = json.dumps(
        {"detail-type": envelope.event_type, "source": "therapy-platform.test", "detail": detail}
    )
    record = {
        "messageId": str(uuid.uuid4()),
        "body": body,
        "receiptHandle": "r",
        "eventSourceARN": "arn:aws:sqs:eu-central-1:000000000000:q",
        "attributes": {"ApproximateReceiveCount": "1"},
    }
    return {"Records": [record]}


def test_status_and_claim_commit_together_and_the_change_is_published(
    service_url: Callable[[str], str], admin_engine: Engine
) -> None:
    engine = make_engine(service_url("patient_service"))  # one pooled connection, as deployed
    bus = FakeBus()
    service = build(engine=lambda: engine, publisher=lambda: bus)
    draft = PatientDraft(first_name="Jana", last_name="Berg", postcode="10115", symptoms=[Symptom.PANIC])
    patient = register_patient(service, draft).value
    consumer = search_events_consumer(service=service, queues=NoQueues)
    payload = SearchStatusChanged(
        id=uuid.uuid4(),
        patient_id=patient.id,
        previous_status=None,
        status=SearchStatus.ACTIVE,
        changed_at=NOW,
    ).model_dump(mode="json")
    envelope = new_envelope("search.status_changed", "matching-service", payload, now=NOW)

    for _ in range(2):  # delivered twice
        assert consumer.handle(_sqs_event(envelope)) == {"batchItemFailures": []}

    with admin_engine.connect() as connection:
        status = connection.execute(
            text("SELECT status FROM patient_service.patients WHERE id = :id"), {"id": patient.id}
        ).scalar_one()
        claims = (
            connection.execute(
                text("SELECT consumer FROM patient_service.processed_events WHERE event_id = :id"),
                {"id": envelope.event_id},
            )
            .scalars()
            .all()
        )
        updates = (
            connection.execute(
                text(
                    "SELECT published_at FROM patient_service.outbox WHERE aggregate_key = :key "
                    "AND event_type = 'patient.updated'"
                ),
                {"key": str(patient.id)},
            )
            .scalars()
            .all()
        )
    assert status == "searching" and claims == ["patient-search-events"]
    assert len(updates) == 1 and updates[0] is not None  # published right after the commit
    assert [m.envelope.event_type for m in bus.messages] == ["patient.created", "patient.updated"]
    engine.dispose()
