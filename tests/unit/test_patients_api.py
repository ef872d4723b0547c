"""The patient API handler with in-memory adapters: routing, validation and error mapping."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from fakes import FakeBus, InMemoryDatabase, InMemoryOutboxStore, InMemoryPatientUnitOfWork
from support import api_event, call, load_function

VALID = {"first_name": "Änne", "last_name": "Müller", "postcode": "52062", "city": "Aachen"}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[object, InMemoryDatabase, FakeBus]]:
    module = load_function("patients_api")
    database, bus = InMemoryDatabase(), FakeBus()
    monkeypatch.setattr(module.deps, "unit_of_work", lambda: InMemoryPatientUnitOfWork(database))
    monkeypatch.setattr(module.deps, "outbox_store", lambda: InMemoryOutboxStore(database))
    monkeypatch.setattr(module.deps, "publisher", lambda: bus)
    yield module.lambda_handler, database, bus


def test_create_then_read(api: tuple[object, InMemoryDatabase, FakeBus]) -> None:
    handler, database, bus = api
    status, body = call(handler, api_event("POST", "/api/v2/patients", VALID))
    assert status == 201
    assert body["last_name"] == "Müller" and body["status"] == "open"
    assert [message.key for message in bus.messages] == [body["id"]]  # published right away
    assert database.outbox[0].published
    status, read = call(handler, api_event("GET", f"/api/v2/patients/{body['id']}"))
    assert (status, read) == (200, body)


def test_event_stays_in_outbox_when_bus_is_down(api: tuple[object, InMemoryDatabase, FakeBus]) -> None:
    handler, database, bus = api
    bus.down = True
    status, _ = call(handler, api_event("POST", "/api/v2/patients", VALID))
    assert status == 201
    assert len(database.outbox) == 1 and not database.outbox[0].published


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({**VALID, "postcode": "1234"}, {"postcode"}),
        ({"first_name": "A"}, {"last_name", "postcode"}),
        ({**VALID, "first_name": 42}, {"first_name"}),
        ({**VALID, "birth_date": "tomorrow"}, {"birth_date"}),
        ({**VALID, "favourite_colour": "blue"}, {"favourite_colour"}),
    ],
)
def test_invalid_fields_get_422_naming_each_field(
    api: tuple[object, InMemoryDatabase, FakeBus], body: dict[str, object], fields: set[str]
) -> None:
    handler, database, _ = api
    status, error = call(handler, api_event("POST", "/api/v2/patients", body))
    assert status == 422
    assert error["error"] == "validation_failed"
    assert {entry["field"] for entry in error["fields"]} == fields
    assert database.patients == {} and database.outbox == []


@pytest.mark.parametrize("raw", ["{not json", "", "[1, 2]", "null", '"text"'])
def test_malformed_or_non_object_bodies_are_4xx(
    api: tuple[object, InMemoryDatabase, FakeBus], raw: str
) -> None:
    handler, database, _ = api
    status, error = call(handler, api_event("POST", "/api/v2/patients", raw_body=raw))
    assert status in (400, 422)
    assert error["error"] in {"malformed_json", "validation_failed"}
    assert database.patients == {}


def test_unknown_patient_is_404_and_bad_id_is_422(api: tuple[object, InMemoryDatabase, FakeBus]) -> None:
    handler, _, _ = api
    status, error = call(handler, api_event("GET", f"/api/v2/patients/{uuid.uuid4()}"))
    assert status == 404 and error["error"] == "not_found"
    status, error = call(handler, api_event("GET", "/api/v2/patients/42"))
    assert status == 422 and error["fields"][0]["field"] == "patient_id"


def test_unknown_route_is_404(api: tuple[object, InMemoryDatabase, FakeBus]) -> None:
    handler, _, _ = api
    status, error = call(handler, api_event("DELETE", "/api/v2/nothing-here"))
    assert status == 404 and error["error"] == "route_not_found"
