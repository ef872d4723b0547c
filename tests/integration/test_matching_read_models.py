"""The matching service's read models against real PostgreSQL, fed through the profile-event
consumer (eventId claim + apply in one transaction): idempotent under redelivery, safe under
reordering, tombstones win."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import ProgrammingError

from therapy_platform.matching.adapters.tables import PROFILE_TABLES
from therapy_platform.matching.adapters.unit_of_work import SqlMatchingUnitOfWork
from therapy_platform.matching.bootstrap import MatchingService, profile_event_consumer
from therapy_platform.matching.domain.read_models import ProfileKind
from therapy_platform.platform.consumer import Delivery
from therapy_platform.platform.events import BusMessage, EventEnvelope, new_envelope

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@dataclass
class ReadModels:
    engine: Engine

    def deliver(self, envelope: EventEnvelope) -> dict[str, Any]:
        """One delivery through the consumer; the outcome and detail it reports."""
        consumer = profile_event_consumer(
            MatchingService(unit_of_work=lambda: SqlMatchingUnitOfWork(self.engine))
        )
        body = json.dumps({"detail": BusMessage(key="k", envelope=envelope).model_dump(mode="json")})
        report = consumer.handle_batch([Delivery(str(uuid.uuid4()), body, 1, "", "")])
        [handled] = report.handled
        return {"outcome": handled.outcome, **handled.detail}

    def get(self, kind: ProfileKind, entity_id: str) -> dict[str, Any] | None:
        table = PROFILE_TABLES[kind]
        with self.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.id == entity_id)).mappings().first()
            return dict(row) if row else None


@pytest.fixture(scope="module")
def store(service_url: Callable[[str], str]) -> ReadModels:
    return ReadModels(create_engine(service_url("matching_service")))


def _history(entity: str, versions: int, deleted: bool) -> list[EventEnvelope]:
    events = [
        new_envelope(
            "patient.created" if index == 0 else "patient.updated",
            "patient-service",
            {"id": entity, "max_travel_km": index},  # a contract field: the read model keeps those only
            now=T0 + timedelta(minutes=index),
        )
        for index in range(versions)
    ]
    if deleted:
        events.append(
            new_envelope("patient.deleted", "patient-service", {"id": entity}, now=T0 + timedelta(hours=1))
        )
    return events


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    versions=st.integers(1, 5), deleted=st.booleans(), seed=st.integers(0, 10_000), repeats=st.integers(1, 3)
)
def test_any_delivery_order_with_duplicates_ends_in_the_latest_state(
    store: ReadModels, versions: int, deleted: bool, seed: int, repeats: int
) -> None:
    entity = str(uuid.uuid4())
    history = _history(entity, versions, deleted)
    deliveries = history * repeats
    random.Random(seed).shuffle(deliveries)
    for envelope in deliveries:
        assert store.deliver(envelope)["outcome"] in {"applied", "duplicate"}
    row = store.get(ProfileKind.PATIENT, entity)
    assert row is not None
    if deleted:
        assert row["data"] is None
    else:
        assert row["data"] == {"id": entity, "max_travel_km": versions - 1}
        assert str(row["source_event_id"]) == str(history[-1].event_id)


def test_a_redelivered_event_changes_nothing(store: ReadModels) -> None:
    entity = str(uuid.uuid4())
    event = new_envelope("therapist.created", "therapist-service", {"id": entity, "status": "active"})
    assert store.deliver(event) == {"outcome": "applied", "changed": True, "acted_on": []}
    assert store.deliver(event)["outcome"] == "duplicate"


def test_an_event_without_payload_id_is_poison(store: ReadModels) -> None:
    event = new_envelope("patient.updated", "patient-service", {"first_name": "x"})
    assert store.deliver(event)["outcome"] == "failed"  # no DLQ configured: the redrive policy moves it


def test_matching_role_cannot_read_the_source_schemas(service_url: Callable[[str], str]) -> None:
    engine: Engine = create_engine(service_url("matching_service"))
    with engine.connect() as connection, pytest.raises(ProgrammingError, match="permission denied"):
        connection.execute(text("SELECT 1 FROM patient_service.patients"))
    engine.dispose()
