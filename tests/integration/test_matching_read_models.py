"""The matching service's read models against real PostgreSQL: idempotent under redelivery,
safe under reordering, tombstones win."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import ProgrammingError

from therapy_platform.matching.adapters.read_models import SqlProfileStore
from therapy_platform.matching.domain.read_models import ProfileKind
from therapy_platform.matching.use_cases.read_models import apply_profile_event
from therapy_platform.platform.events import EventEnvelope, new_envelope

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(service_url: Callable[[str], str]) -> SqlProfileStore:
    return SqlProfileStore(create_engine(service_url("matching_service")))


def _history(entity: str, versions: int, deleted: bool) -> list[EventEnvelope]:
    events = [
        new_envelope(
            "patient.created" if index == 0 else "patient.updated",
            "patient-service",
            {"id": entity, "version": index},
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
    store: SqlProfileStore, versions: int, deleted: bool, seed: int, repeats: int
) -> None:
    entity = str(uuid.uuid4())
    history = _history(entity, versions, deleted)
    deliveries = history * repeats
    random.Random(seed).shuffle(deliveries)
    for envelope in deliveries:
        apply_profile_event(store, envelope)
    row = store.get(ProfileKind.PATIENT, entity)
    assert row is not None
    if deleted:
        assert row["data"] is None
    else:
        assert row["data"] == {"id": entity, "version": versions - 1}
        assert str(row["source_event_id"]) == str(history[-1].event_id)


def test_a_redelivered_event_changes_nothing(store: SqlProfileStore) -> None:
    entity = str(uuid.uuid4())
    event = new_envelope("therapist.created", "therapist-service", {"id": entity, "status": "active"})
    assert apply_profile_event(store, event) is True
    assert apply_profile_event(store, event) is False


def test_matching_role_cannot_read_the_source_schemas(service_url: Callable[[str], str]) -> None:
    engine: Engine = create_engine(service_url("matching_service"))
    with engine.connect() as connection, pytest.raises(ProgrammingError, match="permission denied"):
        connection.execute(text("SELECT 1 FROM patient_service.patients"))
    engine.dispose()
