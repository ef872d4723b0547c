from __future__ import annotations

import importlib.util
import json
import uuid
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakes import (
    FakeBus,
    FakeGeocoder,
    InMemoryDatabase,
    InMemoryOutboxStore,
    InMemoryPatientUnitOfWork,
    StoredEvent,
    patient_service,
)
from support import ROOT, FakeLambdaContext
from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.patients.domain.patient import PatientDraft
from therapy_platform.patients.use_cases import PatientService, register_patient
from therapy_platform.platform.bootstrap import OutboxRelayService
from therapy_platform.platform.events import new_envelope
from therapy_platform.platform.metrics import RecordingMetrics
from therapy_platform.platform.outbox_relay import relay_outbox
from therapy_platform.platform.settings import SettingsError

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _register(database: InMemoryDatabase, count: int) -> None:
    for index in range(count):
        draft = PatientDraft(
            first_name=f"Patient{index}", last_name="Müller", postcode="10115", symptoms=[Symptom.PANIC]
        )
        register_patient(patient_service(database, clock=lambda: NOW), draft)


def test_patient_and_event_are_committed_together() -> None:
    database = InMemoryDatabase()
    registered = register_patient(
        patient_service(database, clock=lambda: NOW),
        PatientDraft(first_name="A", last_name="B", postcode="10115", symptoms=[Symptom.PANIC]),
    )
    patient, (event,) = registered.value, registered.events
    assert list(database.patients) == [patient.id]
    assert [(row.key, row.envelope) for row in database.outbox] == [(str(patient.id), event)]
    assert event.event_type == "patient.created"


def test_a_crash_while_writing_the_outbox_leaves_no_patient() -> None:
    database = InMemoryDatabase()
    with pytest.raises(RuntimeError):
        register_patient(
            PatientService(
                unit_of_work=lambda: InMemoryPatientUnitOfWork(database, fail_on_outbox=True),
                geocoder=FakeGeocoder(),
                clock=lambda: NOW,
            ),
            PatientDraft(first_name="A", last_name="B", postcode="10115", symptoms=[Symptom.PANIC]),
        )
    assert database.patients == {}
    assert database.outbox == []


def _pending(database: InMemoryDatabase, count: int) -> None:
    """`count` committed, unpublished events of any service."""
    for _ in range(count):
        key = str(uuid.uuid4())
        envelope = new_envelope("patient.created", "patient-service", {"id": key}, now=NOW)
        database.outbox.append(StoredEvent(len(database.outbox) + 1, key, envelope))


def test_relay_publishes_everything_once() -> None:
    database, bus = InMemoryDatabase(), FakeBus()
    _pending(database, 250)
    report = relay_outbox(InMemoryOutboxStore(database), bus, batch_size=100)
    assert (report.published, report.failed) == (250, 0)
    assert len({message.envelope.event_id for message in bus.messages}) == 250
    assert relay_outbox(InMemoryOutboxStore(database), bus).published == 0


def test_unreachable_bus_loses_nothing_and_the_next_run_catches_up() -> None:
    database, bus = InMemoryDatabase(), FakeBus()
    _pending(database, 30)
    bus.down = True
    report = relay_outbox(InMemoryOutboxStore(database), bus, batch_size=10)
    assert report.published == 0 and report.failed == 10  # stops after the first failing batch
    assert all(not row.published for row in database.outbox)
    assert database.outbox[0].last_error and "unreachable" in database.outbox[0].last_error
    bus.down = False
    assert relay_outbox(InMemoryOutboxStore(database), bus, batch_size=10).published == 30
    assert all(row.published for row in database.outbox)


@settings(max_examples=50, deadline=None)
@given(outages=st.lists(st.booleans(), min_size=1, max_size=8), count=st.integers(min_value=0, max_value=40))
def test_whatever_the_outages_every_event_arrives_exactly_once_from_the_relay(
    outages: list[bool], count: int
) -> None:
    database, bus = InMemoryDatabase(), FakeBus()
    _pending(database, count)
    for down in outages:
        bus.down = down
        relay_outbox(InMemoryOutboxStore(database), bus, batch_size=7)
    bus.down = False
    relay_outbox(InMemoryOutboxStore(database), bus, batch_size=7)
    ids = [message.envelope.event_id for message in bus.messages]
    assert len(ids) == len(set(ids)) == count


# ---------------------------------------------------------------- the relay function


def _load_relay_handler(name: str) -> ModuleType:
    """A fresh import of functions/outbox_relay/app.py (its settings are read at import)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / "outbox_relay" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_relay_function_drains_its_schema_with_the_operators_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DB_SCHEMA", "patient_service")
    monkeypatch.setenv("EVENT_SOURCE", "therapy-platform.patient-service")
    handler = _load_relay_handler("outbox_relay_app_under_test")
    database, bus = InMemoryDatabase(), FakeBus()
    _pending(database, 12)
    metrics = RecordingMetrics()
    monkeypatch.setattr(
        handler,
        "service",
        OutboxRelayService(
            "patient_service",
            lambda: InMemoryOutboxStore(database),
            lambda: bus,
            backlog=lambda: InMemoryOutboxStore(database),
            metrics=metrics,
            clock=lambda: NOW + timedelta(seconds=90),
        ),
    )
    operator = {"batch_size": 5, "max_batches": 2}
    assert handler.lambda_handler(operator, FakeLambdaContext()) == {
        "schema": "patient_service",
        "published": 10,
        "failed": 0,
        "errors": (),
    }
    scheduled = json.loads((ROOT / "events" / "outbox_relay" / "scheduled.json").read_text())
    assert handler.lambda_handler(scheduled, FakeLambdaContext())["published"] == 2
    handler.lambda_handler(scheduled, FakeLambdaContext())
    # Each run measures its lag before relaying: 90 s twice, then nothing left behind.
    assert metrics.values("OutboxLag") == [90.0, 90.0, 0.0]


def test_the_relay_function_refuses_to_start_without_its_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_SCHEMA", raising=False)
    monkeypatch.setenv("EVENT_SOURCE", "therapy-platform.patient-service")
    with pytest.raises(SettingsError, match="DB_SCHEMA"):
        _load_relay_handler("outbox_relay_app_without_schema")
