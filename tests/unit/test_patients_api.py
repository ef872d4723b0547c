"""The patient API handler with in-memory adapters: routing, validation, error mapping, audit,
events, erasure."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fakes import OTHER_SERVICES, FakeBus, FakeGeocoder, FakeOtherServices, InMemoryDatabase, patient_service
from support import (
    FakeLambdaContext,
    api_event,
    assert_problem,
    call,
    least_roles,
    load_function,
    with_if_match,
)
from therapy_platform.contracts.patients import PatientSnapshot
from therapy_platform.patients.ports import PatientAuditAction
from therapy_platform.platform.idempotency import (
    ERASED_ANSWER,
    InMemoryIdempotencyStore,
    KeyScope,
    StoredAnswer,
)

VALID: dict[str, Any] = {
    "first_name": "Änne",
    "last_name": "Müller",
    "postcode": "52062",
    "city": "Aachen",
    "symptoms": ["anxiety", "panic"],
}
STAFF = "anna.staff@example.org"


@dataclass
class Api:
    handler: Any
    database: InMemoryDatabase
    bus: FakeBus
    geocoder: FakeGeocoder

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        multi: dict[str, list[str]] | None = None,
        raw: str | None = None,
        roles: tuple[str, ...] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        event = api_event(
            method,
            path,
            body,
            raw_body=raw,
            query=query,
            user=STAFF,
            roles=least_roles(method, path) if roles is None else roles,
            headers=with_if_match(method, path, headers),
        )
        if multi is not None:
            event["queryStringParameters"] = {key: values[-1] for key, values in multi.items()}
            event["multiValueQueryStringParameters"] = multi
        return call(self.handler, event)

    def create(self, **fields: Any) -> dict[str, Any]:
        status, body = self.request("POST", "/api/v2/patients", {**VALID, **fields})
        assert status == 201, body
        return dict(body)

    def events(self, event_type: str | None = None) -> list[Any]:
        return [row.envelope for row in self.database.outbox if event_type in (None, row.envelope.event_type)]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    module = load_function("patients_api")
    database, bus, geocoder = InMemoryDatabase(), FakeBus(), FakeGeocoder()
    monkeypatch.setattr(module, "service", patient_service(database, bus=bus, geocoder=geocoder))
    monkeypatch.setattr(module, "idempotency_keys", InMemoryIdempotencyStore())
    yield Api(module.lambda_handler, database, bus, geocoder)


# --- create and read ---------------------------------------------------------------------------


def test_create_then_read(api: Api) -> None:
    status, body = api.request("POST", "/api/v2/patients", VALID)
    assert status == 201
    assert body["last_name"] == "Müller" and body["status"] == "open"
    assert body["location"] == {"latitude": 50.7766, "longitude": 6.0834, "precision": "postcode"}
    assert body["location_flagged"] is False
    assert [message.key for message in api.bus.messages] == [body["id"]]  # published right away
    assert api.database.outbox[0].published
    assert api.database.outbox[0].envelope.payload == PatientSnapshot.of(body).model_dump(mode="json")
    assert "last_name" not in api.database.outbox[0].envelope.payload  # minimal events
    status, read = api.request("GET", f"/api/v2/patients/{body['id']}")
    assert (status, read) == (200, body)


def test_an_unlocatable_postcode_is_stored_and_flagged(api: Api) -> None:
    body = api.create(postcode="99999")
    assert body["location"]["precision"] == "unknown" and body["location_flagged"] is True


def test_every_access_is_audited_with_the_staff_member(api: Api) -> None:
    created = api.create()
    read = _raw(api, "GET", f"/api/v2/patients/{created['id']}")
    api.request("GET", "/api/v2/patients")
    etag = read["multiValueHeaders"]["ETag"][0]
    api.request("PATCH", f"/api/v2/patients/{created['id']}", {"city": "Köln"}, headers={"If-Match": etag})
    actions = [(entry.actor, entry.action, str(entry.entity_id)) for entry in api.database.patient_audit]
    assert actions == [
        (STAFF, PatientAuditAction.CREATE, created["id"]),
        (STAFF, PatientAuditAction.READ, created["id"]),
        (STAFF, PatientAuditAction.LIST, created["id"]),
        (STAFF, PatientAuditAction.UPDATE, created["id"]),
    ]
    update = api.database.patient_audit[-1]
    assert update.before == {"city": "Aachen"} and update.after == {"city": "Köln"}


def test_event_stays_in_outbox_when_bus_is_down(api: Api) -> None:
    api.bus.down = True
    api.create()
    assert len(api.database.outbox) == 1 and not api.database.outbox[0].published


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({**VALID, "postcode": "1234"}, {"postcode"}),
        ({"first_name": "A"}, {"last_name", "postcode", "symptoms"}),
        ({**VALID, "first_name": 42}, {"first_name"}),
        ({**VALID, "birth_date": "tomorrow"}, {"birth_date"}),
        ({**VALID, "favourite_colour": "blue"}, {"favourite_colour"}),
        ({**VALID, "symptoms": ["depression"] * 7}, {"symptoms"}),
        ({**VALID, "availability": {"mon": ["10:00-09:00"]}}, {"availability.mon.0"}),
        ({**VALID, "group_only": True, "open_to_group_therapy": False}, {"group_only"}),
        ({**VALID, "last_therapy_session": "2020-01-01"}, {"last_therapy_session"}),
        ({**VALID, "status": "searching"}, {"status"}),
    ],
)
def test_invalid_fields_get_422_naming_each_field(api: Api, body: dict[str, Any], fields: set[str]) -> None:
    status, error = api.request("POST", "/api/v2/patients", body)
    assert status == 422
    assert error["code"] == "validation_failed"
    assert {entry["field"] for entry in error["errors"]} == fields
    assert api.database.patients == {} and api.database.outbox == [] and api.database.patient_audit == []


@pytest.mark.parametrize("raw", ["{not json", "", "[1, 2]", "null", '"text"'])
def test_malformed_or_non_object_bodies_are_4xx(api: Api, raw: str) -> None:
    status, error = api.request("POST", "/api/v2/patients", raw=raw)
    assert status in (400, 422)
    assert error["code"] in {"malformed_json", "validation_failed"}
    assert api.database.patients == {}


def test_unknown_patient_is_404_and_bad_id_is_422(api: Api) -> None:
    status, error = api.request("GET", f"/api/v2/patients/{uuid.uuid4()}")
    assert status == 404 and error["code"] == "not_found"
    status, error = api.request("GET", "/api/v2/patients/42")
    assert status == 422 and error["errors"][0]["field"] == "patient_id"


def test_unknown_route_is_404(api: Api) -> None:
    status, error = api.request("DELETE", "/api/v2/nothing-here")
    assert status == 404 and error["code"] == "route_not_found"


# --- list --------------------------------------------------------------------------------------


def test_list_filters_sorts_and_pages(api: Api) -> None:
    api.create(first_name="Anna", last_name="Zeller", postcode="10115", health_insurer="AOK Nordost")
    api.create(
        first_name="Bernd", last_name="Abel", postcode="10117", health_insurer="Techniker Krankenkasse"
    )
    api.create(first_name="Carla", last_name="Meier", postcode="52062", health_insurer="AOK Rheinland")
    status, page = api.request("GET", "/api/v2/patients", query={"sort": "last_name", "limit": "2"})
    assert status == 200
    assert [item["last_name"] for item in page["items"]] == ["Abel", "Meier"]
    assert (page["total"], page["page"], page["limit"]) == (3, 1, 2)
    status, page = api.request(
        "GET", "/api/v2/patients", query={"sort": "last_name", "limit": "2", "page": "2"}
    )
    assert [item["last_name"] for item in page["items"]] == ["Zeller"] and page["total"] == 3
    _, page = api.request("GET", "/api/v2/patients", query={"postcode_prefix": "101", "insurer": "aok"})
    assert [item["first_name"] for item in page["items"]] == ["Anna"]
    _, page = api.request("GET", "/api/v2/patients", query={"q": "ZELL ann"})
    assert [item["first_name"] for item in page["items"]] == ["Anna"]


def test_list_accepts_several_statuses(api: Api) -> None:
    first, second, _ = api.create(), api.create(), api.create()
    api.request("PATCH", f"/api/v2/patients/{first['id']}", {"status": "searching"})
    api.request("PATCH", f"/api/v2/patients/{second['id']}", {"status": "in_therapy"})
    _, page = api.request("GET", "/api/v2/patients", multi={"status": ["searching", "in_therapy"]})
    assert {item["id"] for item in page["items"]} == {first["id"], second["id"]}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"sort": "favourite_colour"}, "sort"),
        ({"status": "waiting"}, "status.0"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"page": "0"}, "page"),
        ({"page": "99999999999999999999"}, "page"),
        ({"postcode_prefix": "1a"}, "postcode_prefix"),
        ({"created_from": "2026-13-01"}, "created_from"),
        ({"created_from": "2026-05-02", "created_to": "2026-05-01"}, "created_to"),
        ({"q": "a\x00b"}, "q"),
        ({"q": ""}, "q"),
        ({"stauts": "open"}, "stauts"),
    ],
)
def test_bad_list_parameters_are_422_naming_the_parameter(
    api: Api, query: dict[str, str], field: str
) -> None:
    status, error = api.request("GET", "/api/v2/patients", query=query)
    assert status == 422, error
    assert error["code"] == "validation_failed"
    assert [entry["field"] for entry in error["errors"]] == [field]


def test_pages_link_their_neighbours_with_the_same_query_parameters(api: Api) -> None:
    for _ in range(5):
        api.create()
    query = {"status": ["open"], "sort": ["last_name"], "limit": ["2"]}
    _, first = api.request("GET", "/api/v2/patients", multi=query)
    assert first["prev"] is None
    assert first["next"] == "/api/v2/patients?status=open&sort=last_name&limit=2&page=2"
    _, middle = api.request("GET", "/api/v2/patients", multi={**query, "page": ["2"]})
    assert middle["prev"] == "/api/v2/patients?status=open&sort=last_name&limit=2&page=1"
    assert middle["next"] == "/api/v2/patients?status=open&sort=last_name&limit=2&page=3"
    _, last = api.request("GET", "/api/v2/patients", multi={**query, "page": ["3"]})
    assert (len(last["items"]), last["next"]) == (1, None)
    _, beyond = api.request("GET", "/api/v2/patients", multi={**query, "page": ["9"]})
    assert beyond["items"] == [] and beyond["next"] is None
    assert beyond["prev"] == "/api/v2/patients?status=open&sort=last_name&limit=2&page=3"  # the last page
    _, repeated = api.request(
        "GET", "/api/v2/patients", multi={"status": ["open", "searching"], "limit": ["1"]}
    )
    assert repeated["next"] == "/api/v2/patients?status=open&status=searching&limit=1&page=2"
    _, single = api.request("GET", "/api/v2/patients")
    assert (single["next"], single["prev"]) == (None, None)


@pytest.mark.parametrize("path", ["/api/v2/patients", "/api/v2/therapists"])
def test_the_old_name_search_parameter_is_refused_with_a_hint_to_q(api: Api, path: str) -> None:
    handler = api.handler if "patients" in path else load_function("therapists_api").lambda_handler
    event = api_event("GET", path, query={"name": "anna"}, user=STAFF, roles=least_roles("GET", path))
    status, error = call(handler, event)
    assert status == 422, error
    assert (error["code"], error["detail"]) == (
        "validation_failed",
        "unknown query parameters: name (free-text search is q)",
    )
    assert [(entry["field"], entry["location"], entry["code"]) for entry in error["errors"]] == [
        ("name", "query", "unknown_parameter")
    ]
    assert error["errors"][0]["message"] == "unbekannter Parameter; für die Freitextsuche: q"


def test_created_range_filters_by_utc_dates(api: Api) -> None:
    created = api.create()
    day = created["created_at"][:10]
    _, page = api.request("GET", "/api/v2/patients", query={"created_from": day, "created_to": day})
    assert page["total"] == 1
    _, page = api.request("GET", "/api/v2/patients", query={"created_to": "2000-01-01"})
    assert page["total"] == 0


# --- updates -----------------------------------------------------------------------------------


def test_put_replaces_every_field_and_keeps_status_when_omitted(api: Api) -> None:
    created = api.create(phone="0241 123456", max_travel_km=50)
    api.request("PATCH", f"/api/v2/patients/{created['id']}", {"status": "searching"})
    status, body = api.request("PUT", f"/api/v2/patients/{created['id']}", {**VALID, "city": "Düren"})
    assert status == 200
    assert body["city"] == "Düren" and body["phone"] is None and body["max_travel_km"] == 25
    assert body["status"] == "searching" and body["created_at"] == created["created_at"]
    assert body["updated_at"] > created["updated_at"]
    status, body = api.request("PUT", f"/api/v2/patients/{created['id']}", {**VALID, "status": "open"})
    assert body["status"] == "open"
    updated = api.events("patient.updated")
    assert [event.payload["postcode"] for event in updated][-1] == VALID["postcode"]
    assert all("city" not in event.payload for event in updated)


def test_put_without_required_fields_is_422(api: Api) -> None:
    created = api.create()
    status, error = api.request("PUT", f"/api/v2/patients/{created['id']}", {"city": "Köln"})
    assert status == 422
    assert {entry["field"] for entry in error["errors"]} == {
        "first_name",
        "last_name",
        "postcode",
        "symptoms",
    }


def test_patch_changes_only_sent_fields_and_null_clears(api: Api) -> None:
    created = api.create(phone="0241 123456", email="aenne@example.org", max_travel_km=50)
    status, body = api.request(
        "PATCH",
        f"/api/v2/patients/{created['id']}",
        {"phone": None, "max_travel_km": None, "gender": "female"},
    )
    assert status == 200
    assert body["phone"] is None and body["max_travel_km"] == 25 and body["gender"] == "female"
    assert body["email"] == "aenne@example.org" and body["city"] == "Aachen"
    (event,) = api.events("patient.updated")
    assert event.payload == PatientSnapshot.of(body).model_dump(mode="json")


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"first_name": None}, {"first_name"}),
        ({"symptoms": []}, {"symptoms"}),
        ({"unknown": 1}, {"unknown"}),
        ({"id": str(uuid.uuid4())}, {"id"}),
        ({"last_therapy_session": "2020-01-01"}, {"last_therapy_session"}),
        ({"group_only": True, "open_to_group_therapy": False}, {"group_only"}),
    ],
)
def test_bad_patches_are_422_and_change_nothing(api: Api, changes: dict[str, Any], fields: set[str]) -> None:
    created = api.create()
    status, error = api.request("PATCH", f"/api/v2/patients/{created['id']}", changes)
    assert status == 422
    assert error["code"] == "validation_failed"
    assert {entry["field"] for entry in error["errors"]} == fields
    assert api.events("patient.updated") == []
    _, read = api.request("GET", f"/api/v2/patients/{created['id']}")
    assert read == created


def test_an_update_that_changes_nothing_emits_no_event(api: Api) -> None:
    created = api.create()
    status, body = api.request("PATCH", f"/api/v2/patients/{created['id']}", {"city": "Aachen"})
    assert status == 200 and body == created
    assert api.events("patient.updated") == []


def test_address_changes_are_geocoded_again(api: Api) -> None:
    created = api.create(postcode="99999")
    assert created["location_flagged"]
    calls = len(api.geocoder.calls)
    _, body = api.request("PATCH", f"/api/v2/patients/{created['id']}", {"postcode": "10115"})
    assert body["location"]["precision"] == "postcode" and not body["location_flagged"]
    _, body = api.request("PATCH", f"/api/v2/patients/{created['id']}", {"notes": "ruft abends an"})
    assert len(api.geocoder.calls) == calls + 1  # unchanged, known address: no new lookup


def test_updating_an_unknown_patient_is_404(api: Api) -> None:
    status, _ = api.request("PATCH", f"/api/v2/patients/{uuid.uuid4()}", {"city": "Köln"})
    assert status == 404
    status, _ = api.request("PUT", f"/api/v2/patients/{uuid.uuid4()}", VALID)
    assert status == 404


# --- erasure -----------------------------------------------------------------------------------


def test_erasure_is_refused_while_a_search_is_unfinished(api: Api) -> None:
    created = api.create()
    api.request("PATCH", f"/api/v2/patients/{created['id']}", {"status": "searching"})
    status, error = api.request("DELETE", f"/api/v2/patients/{created['id']}")
    assert status == 409 and error["code"] == "conflict"
    assert "search is not finished" in error["detail"] and error["patient_status"] == "searching"
    assert api.request("GET", f"/api/v2/patients/{created['id']}")[0] == 200


def test_erasure_removes_personal_data_and_then_answers_410(api: Api) -> None:
    created = api.create(email="aenne@example.org")
    api.request("PATCH", f"/api/v2/patients/{created['id']}", {"city": "Köln"})
    status, body = api.request(
        "DELETE", f"/api/v2/patients/{created['id']}", query={"reason": "Antrag 2026-117"}
    )
    assert status == 200 and body["id"] == created["id"] and body["erased_at"]
    # Only the deletion event remains, carrying no personal data.
    (event,) = api.events()
    assert event.event_type == "patient.deleted" and event.payload == body
    assert api.bus.messages[-1].envelope.event_type == "patient.deleted"
    # The audit trail keeps who/what/when but none of the values.
    assert all(
        all(value is None for value in (entry.before or {}).values())
        and all(value is None for value in (entry.after or {}).values())
        for entry in api.database.patient_audit
        if entry.action is not PatientAuditAction.ERASE
    )
    erase = api.database.patient_audit[-1]
    assert erase.action is PatientAuditAction.ERASE and erase.reason == "Antrag 2026-117"
    for method, payload in (("GET", None), ("PATCH", {"city": "Bonn"}), ("PUT", VALID), ("DELETE", None)):
        status, error = api.request(method, f"/api/v2/patients/{created['id']}", payload)
        assert status == 410 and error["code"] == "patient_erased" and error["erased_at"] == body["erased_at"]
    _, page = api.request("GET", "/api/v2/patients")
    assert page["total"] == 0


@pytest.mark.parametrize("status_before", ["open", "in_therapy", "therapy_finished", "search_cancelled"])
def test_erasure_is_allowed_without_an_unfinished_search(api: Api, status_before: str) -> None:
    created = api.create()
    api.request("PATCH", f"/api/v2/patients/{created['id']}", {"status": status_before})
    assert api.request("DELETE", f"/api/v2/patients/{created['id']}")[0] == 200


def test_erasure_reason_is_checked(api: Api) -> None:
    created = api.create()
    status, error = api.request("DELETE", f"/api/v2/patients/{created['id']}", query={"reason": "x" * 501})
    assert status == 422 and error["errors"][0]["field"] == "reason"
    status, error = api.request("DELETE", f"/api/v2/patients/{created['id']}", query={"why": "x"})
    assert status == 422 and error["errors"][0]["field"] == "why"


def test_unknown_patient_cannot_be_erased(api: Api) -> None:
    assert api.request("DELETE", f"/api/v2/patients/{uuid.uuid4()}")[0] == 404


def test_timestamps_are_utc(api: Api) -> None:
    created = api.create()
    stamp = datetime.fromisoformat(created["created_at"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)


# --- Idempotency-Key ---------------------------------------------------------------------------


def _post(api: Api, body: dict[str, Any], key: str | None, user: str = STAFF) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else None
    event = api_event("POST", "/api/v2/patients", body, user=user, roles=("staff",), headers=headers)
    return dict(api.handler(event, FakeLambdaContext()))


def test_a_repeated_idempotency_key_answers_the_first_answer_again(api: Api) -> None:
    first = _post(api, VALID, "create-1")
    again = _post(api, {**VALID}, "create-1")
    assert (first["statusCode"], again["statusCode"]) == (201, 201)
    assert again["body"] == first["body"]
    assert again["multiValueHeaders"]["Location"] == first["multiValueHeaders"]["Location"]
    assert again["multiValueHeaders"]["Idempotent-Replayed"] == ["true"]
    assert "Idempotent-Replayed" not in first["multiValueHeaders"]
    assert len(api.database.patients) == 1 and len(api.events("patient.created")) == 1
    # JSON compared canonically: key order and spacing do not make another request
    reordered = dict(reversed(list(VALID.items())))
    assert _post(api, reordered, "create-1")["body"] == first["body"]


def test_the_same_key_with_another_body_is_409_and_creates_nothing(api: Api) -> None:
    _post(api, VALID, "create-1")
    conflict = _post(api, {**VALID, "first_name": "Berta"}, "create-1")
    assert conflict["statusCode"] == 409
    assert '"idempotency_key_reused"' in conflict["body"]
    assert len(api.database.patients) == 1


def test_keys_are_per_acting_user_and_without_a_key_every_post_creates(api: Api) -> None:
    _post(api, VALID, "create-1")
    other = _post(api, VALID, "create-1", user="colleague@team.example")
    assert other["statusCode"] == 201
    _post(api, VALID, None)
    _post(api, VALID, None)
    assert len(api.database.patients) == 4


def test_a_failed_request_releases_its_key_for_a_corrected_retry(api: Api) -> None:
    refused = _post(api, {**VALID, "postcode": "1"}, "create-1")
    assert refused["statusCode"] == 422
    retried = _post(api, VALID, "create-1")
    assert retried["statusCode"] == 201


def test_a_key_still_running_is_409_in_use(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_function("patients_api")
    store = InMemoryIdempotencyStore()
    monkeypatch.setattr(module, "idempotency_keys", store)
    first = _post(api, VALID, "create-1")
    scope = KeyScope("POST /api/v2/patients", STAFF, "create-1")
    store.rows[scope].answer = None  # as while the first request is still running
    busy = _post(api, VALID, "create-1")
    assert busy["statusCode"] == 409 and assert_problem(busy)["code"] == "idempotency_key_in_use"
    assert assert_problem(busy)["header"] == "Idempotency-Key"
    assert first["statusCode"] == 201


def test_a_key_whose_record_was_erased_is_410_and_creates_nothing_again(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_function("patients_api")
    store = InMemoryIdempotencyStore()
    monkeypatch.setattr(module, "idempotency_keys", store)
    assert _post(api, VALID, "create-1")["statusCode"] == 201
    scope = KeyScope("POST /api/v2/patients", STAFF, "create-1")
    answer = store.rows[scope].answer
    assert answer is not None
    # The erasure blanks the stored answer (platform/idempotency.py redact_stored_answers).
    store.rows[scope].answer = replace(answer, body=ERASED_ANSWER)
    gone = _post(api, VALID, "create-1")
    assert gone["statusCode"] == 410 and assert_problem(gone)["header"] == "Idempotency-Key"
    assert len(api.database.patients) == 1 and len(api.events("patient.created")) == 1


def test_keys_expire_after_24_hours() -> None:
    store = InMemoryIdempotencyStore()
    scope = KeyScope("POST /api/v2/patients", STAFF, "k")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert store.claim(scope, "hash", now=start) is None
    assert store.claim(scope, "hash", now=start + timedelta(minutes=1)) is not None
    # an unanswered claim is abandoned after its lease; an answered key lives 24 hours
    assert store.claim(scope, "other", now=start + timedelta(minutes=6)) is None
    store.complete(scope, StoredAnswer(201, "{}", None))
    assert store.claim(scope, "x", now=start + timedelta(hours=23)) is not None
    assert store.claim(scope, "x", now=start + timedelta(hours=24, minutes=7)) is None


def _raw(
    api: Api, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    event = api_event(method, path, body, user=STAFF, roles=("admin",), headers=headers)
    return dict(api.handler(event, FakeLambdaContext()))


# --- ETag / If-Match ---------------------------------------------------------------------------


def test_reads_and_writes_answer_the_records_etag(api: Api) -> None:
    created = api.create()
    path = f"/api/v2/patients/{created['id']}"
    read = _raw(api, "GET", path)
    etag = read["multiValueHeaders"]["ETag"][0]
    assert etag.startswith('"') and _raw(api, "GET", path)["multiValueHeaders"]["ETag"] == [etag]
    patched = _raw(api, "PATCH", path, {"city": "Köln"}, {"If-Match": etag})
    assert patched["statusCode"] == 200
    new_etag = patched["multiValueHeaders"]["ETag"][0]
    assert new_etag != etag
    assert _raw(api, "GET", path)["multiValueHeaders"]["ETag"] == [new_etag]


def test_a_stale_if_match_is_412_and_changes_nothing(api: Api) -> None:
    created = api.create()
    path = f"/api/v2/patients/{created['id']}"
    stale = _raw(api, "GET", path)["multiValueHeaders"]["ETag"][0]
    # a colleague saves first
    assert _raw(api, "PATCH", path, {"city": "Köln"}, {"If-Match": stale})["statusCode"] == 200
    events = len(api.events("patient.updated"))
    for method, body in (("PATCH", {"city": "Bonn"}), ("PUT", {**VALID, "city": "Bonn"})):
        refused = _raw(api, method, path, body, {"If-Match": stale})
        assert refused["statusCode"] == 412, refused
        assert assert_problem(refused)["code"] == "precondition_failed"
    assert json.loads(_raw(api, "GET", path)["body"])["city"] == "Köln"
    assert len(api.events("patient.updated")) == events
    weak = _raw(api, "GET", path)["multiValueHeaders"]["ETag"][0]
    assert _raw(api, "PATCH", path, {"city": "Bonn"}, {"If-Match": f"W/{weak}"})["statusCode"] == 412


def test_a_write_without_if_match_is_428(api: Api) -> None:
    created = api.create()
    path = f"/api/v2/patients/{created['id']}"
    for method, body in (("PATCH", {"city": "Bonn"}), ("PUT", {**VALID, "city": "Bonn"})):
        refused = _raw(api, method, path, body)
        assert refused["statusCode"] == 428
        assert assert_problem(refused)["code"] == "precondition_required"
    assert _raw(api, "PATCH", path, {"city": "Bonn"}, {"If-Match": "*"})["statusCode"] == 200


# --- personal-data export ----------------------------------------------------------------------


def test_the_export_holds_the_record_and_every_other_services_part_and_is_audited(api: Api) -> None:
    patient = api.create()
    api.request("GET", f"/api/v2/patients/{patient['id']}")

    status, export = api.request("GET", f"/api/v2/patients/{patient['id']}/export")

    assert status == 200, export
    assert (export["subject"], export["subject_id"]) == ("patient", patient["id"])
    assert [part["service"] for part in export["parts"]] == ["patients", "matching", "communication"]
    own = export["parts"][0]["records"]
    assert own["patients"] == [patient]
    assert [entry["action"] for entry in own["audit_log"]] == ["create", "read"]
    exported = api.database.patient_audit[-1]
    assert exported.action == "export" and exported.actor == STAFF
    assert exported.after == {
        "request_id": export["request_id"],
        "services": ["patients", "matching", "communication"],
    }


def test_an_export_a_service_cannot_complete_is_502_and_not_audited(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = api.create()
    module = load_function("patients_api")
    failing = FakeOtherServices(OTHER_SERVICES, failing="communication-part")
    monkeypatch.setattr(module, "service", replace(module.service, personal_data_parts=failing))

    status, problem = api.request("GET", f"/api/v2/patients/{patient['id']}/export")

    assert status == 502 and problem["code"] == "internal_call_failed"
    assert problem["detail"] == "communication-part failed (Unhandled)"
    assert [entry.action for entry in api.database.patient_audit] == ["create"]


def test_unknown_and_erased_patients_have_no_export(api: Api) -> None:
    status, problem = api.request("GET", f"/api/v2/patients/{uuid.uuid4()}/export")
    assert status == 404
    patient = api.create()
    assert api.request("DELETE", f"/api/v2/patients/{patient['id']}")[0] == 200
    status, problem = api.request("GET", f"/api/v2/patients/{patient['id']}/export")
    assert status == 410 and problem["code"] == "patient_erased"
