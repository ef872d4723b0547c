"""The patient API handler against real PostgreSQL and LocalStack's EventBridge:
transactional outbox, immediate publish, relay after a bus outage, no half-written state."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from sqlalchemy import Engine, text

from cloud_support import drain_queue
from localcloud.aws import aws_env, client
from support import api_event, call, load_function
from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
from therapy_platform.patients.bootstrap import build
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.eventbridge import EventBridgePublisher
from therapy_platform.platform.outbox import SqlOutboxStore
from therapy_platform.platform.outbox_relay import relay_outbox

pytestmark = pytest.mark.integration

SOURCE = "therapy-platform.patient-service"
NEEDS = {"symptoms": ["depression"]}


@dataclass
class PatientsApi:
    module: Any
    engine: Engine
    publisher: EventBridgePublisher
    queue_url: str

    def post(self, body: dict[str, Any]) -> tuple[int, Any]:
        return call(self.module.lambda_handler, api_event("POST", "/api/v2/patients", body))


@pytest.fixture
def api(
    monkeypatch: pytest.MonkeyPatch, service_url: Callable[[str], str], event_bus: tuple[str, str]
) -> Iterator[PatientsApi]:
    bus, queue_url = event_bus
    for name, value in aws_env().items():
        monkeypatch.setenv(name, value)
    module = load_function("patients_api")
    engine = make_engine(service_url("patient_service"))
    publisher = EventBridgePublisher(client("events"), bus, SOURCE)
    monkeypatch.setattr(module, "service", build(engine=lambda: engine, publisher=lambda: publisher))
    yield PatientsApi(module, engine, publisher, queue_url)
    engine.dispose()


def _outbox_row(admin_engine: Engine, key: str) -> Any:
    with admin_engine.connect() as connection:
        return connection.execute(
            text("SELECT * FROM patient_service.outbox WHERE aggregate_key = :key"), {"key": key}
        ).one()


def test_create_stores_patient_and_publishes_its_event(api: PatientsApi, admin_engine: Engine) -> None:
    status, body = api.post({**NEEDS, "first_name": "Jürgen", "last_name": "Weiß", "postcode": "01067"})
    assert status == 201
    row = _outbox_row(admin_engine, body["id"])
    assert row.event_type == "patient.created" and row.published_at is not None
    (delivered,) = drain_queue(api.queue_url, expected=1)
    assert delivered["detail-type"] == "patient.created"
    assert delivered["source"] == SOURCE
    assert delivered["detail"]["key"] == body["id"]
    assert delivered["detail"]["envelope"]["eventId"] == str(row.event_id)
    payload = delivered["detail"]["envelope"]["payload"]
    assert payload["id"] == body["id"] and payload["postcode"] == body["postcode"]
    assert "last_name" not in payload and "Weiß" not in json.dumps(payload, ensure_ascii=False)  # minimal
    status, read = call(api.module.lambda_handler, api_event("GET", f"/api/v2/patients/{body['id']}"))
    assert (status, read) == (200, body)


def test_bus_outage_keeps_events_in_the_outbox_until_the_relay_runs(
    api: PatientsApi, admin_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 9: the bus is unreachable for these requests.
    unreachable_client = boto3.client(
        "events",
        endpoint_url="http://127.0.0.1:9",
        config=Config(connect_timeout=1, retries={"max_attempts": 1}),
        region_name="eu-central-1",
    )
    unreachable = EventBridgePublisher(unreachable_client, "bus", SOURCE)
    monkeypatch.setattr(
        api.module, "service", build(engine=lambda: api.engine, publisher=lambda: unreachable)
    )
    ids = []
    for index in range(5):
        status, body = api.post({**NEEDS, "first_name": f"P{index}", "last_name": "Öz", "postcode": "10115"})
        assert status == 201  # the change is committed even though the bus is down
        ids.append(body["id"])
    for key in ids:
        row = _outbox_row(admin_engine, key)
        # An unreachable bus is not the row's fault: no attempt counted, due at once, not parked.
        assert row.published_at is None and "Error" in row.last_error
        assert (row.attempts, row.next_attempt_at, row.parked_at) == (0, None, None)

    # The relay's lag metric: the oldest unpublished row is at least as old as the first one here.
    store = SqlOutboxStore(api.engine, "patient_service")
    oldest = store.oldest_unpublished_at()
    assert oldest is not None and oldest <= _outbox_row(admin_engine, ids[0]).created_at

    # The scheduled relay (the relay function's logic) catches up once the bus is back.
    report = relay_outbox(store, api.publisher)
    assert report.failed == 0 and report.published >= 5
    keys = {message["detail"]["key"] for message in drain_queue(api.queue_url, expected=report.published)}
    assert set(ids) <= keys
    for key in ids:
        assert _outbox_row(admin_engine, key).published_at is not None
    assert store.oldest_unpublished_at() is None  # nothing waiting: no lag


def test_a_crash_after_the_insert_leaves_neither_patient_nor_event(
    api: PatientsApi, admin_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from therapy_platform.platform import outbox as outbox_module

    def explode(self: object, key: str, envelope: object) -> None:
        raise RuntimeError("simulated crash between the two inserts")

    monkeypatch.setattr(outbox_module.SqlOutbox, "add", explode)
    marker = f"Crash{uuid.uuid4().hex[:8]}"
    status, body = api.post({**NEEDS, "first_name": marker, "last_name": "X", "postcode": "10115"})
    assert status == 500 and body["code"] == "internal_error"
    with admin_engine.connect() as connection:
        patients = connection.execute(
            text("SELECT count(*) FROM patient_service.patients WHERE first_name = :m"), {"m": marker}
        ).scalar_one()
        events = connection.execute(
            text("SELECT count(*) FROM patient_service.outbox WHERE envelope::text LIKE :m"),
            {"m": f"%{marker}%"},
        ).scalar_one()
    assert (patients, events) == (0, 0)


def test_database_down_is_503_not_500(monkeypatch: pytest.MonkeyPatch, api: PatientsApi) -> None:
    dead = make_engine("postgresql+pg8000://nobody:nothing@127.0.0.1:9/none")
    monkeypatch.setattr(
        api.module, "service", replace(api.module.service, unit_of_work=lambda: SqlPatientUnitOfWork(dead))
    )
    status, body = api.post({**NEEDS, "first_name": "A", "last_name": "B", "postcode": "10115"})
    assert status == 503 and body["code"] == "dependency_unavailable"
    assert json.dumps(body).find("nothing") == -1  # no credentials leak into the answer
