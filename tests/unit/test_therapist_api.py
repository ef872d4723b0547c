"""The therapist API handler with in-memory adapters: every route, validation, status codes,
events, audit entries and staff-edited fields."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fakes import OTHER_SERVICES, FakeBus, FakeOtherServices, InMemoryOutboxStore
from support import STAFF_USER, FakeLambdaContext, api_event, call, least_roles, load_function, with_if_match
from therapist_fakes import FakeGeocoder, InMemoryTherapistUnitOfWork, TherapistDatabase
from therapy_platform.contracts.therapists import TherapistSnapshot
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.therapists.bootstrap import TherapistService

BASE = "/api/v2/therapists"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
VALID: dict[str, Any] = {
    "salutation": "Frau",
    "gender": "female",
    "title": "Dr.",
    "first_name": "Änne",
    "last_name": "Müller",
    "street": "Domhof 1",
    "postcode": "52062",
    "city": "Aachen",
    "email": "Praxis.Mueller@example.org",
    "procedures": ["VT"],
    "languages": ["de", "en"],
    "phone_windows": {"mon": ["08:00-09:00"]},
}


@dataclass
class Api:
    module: Any
    database: TherapistDatabase
    bus: FakeBus
    geocoder: FakeGeocoder

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        raw_body: str | None = None,
        staff: str | None = None,
        roles: tuple[str, ...] | None = None,
    ) -> tuple[int, Any]:
        # The actor is the verified token's user (the authorizer's context).
        event = api_event(
            method,
            path,
            body,
            query=query,
            raw_body=raw_body,
            user=staff or STAFF_USER,
            roles=least_roles(method, path) if roles is None else roles,
            headers=with_if_match(method, path, None),
        )
        return call(self.module.lambda_handler, event)

    def create(self, **overrides: Any) -> dict[str, Any]:
        status, body = self("POST", BASE, {**VALID, **overrides})
        assert status == 201, body
        return dict(body)

    def event_types(self) -> list[str]:
        return [event.event_type for event in self.database.events()]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    module = load_function("therapists_api")
    database, bus, geocoder = TherapistDatabase(), FakeBus(), FakeGeocoder()
    # The committed events are published at once, as the deployed unit of work's hook does.
    publish = PublishNow(store=lambda: InMemoryOutboxStore(database), publisher=lambda: bus)
    ticks = itertools.count()
    service = TherapistService(
        unit_of_work=lambda: InMemoryTherapistUnitOfWork(database, publish=publish),
        geocoder=lambda: geocoder,
        # Each request a second later, on the same day: creation order is observable.
        clock=lambda: NOW + timedelta(seconds=next(ticks)),
        personal_data_parts=FakeOtherServices(OTHER_SERVICES),
    )
    monkeypatch.setattr(module, "service", service)
    yield Api(module, database, bus, geocoder)


# ------------------------------------------------------------------------------ create and read


def test_create_then_read(api: Api) -> None:
    status, body = api("POST", BASE, VALID, staff="anna@team.example")
    assert status == 201
    assert body["status"] == "active" and body["last_name"] == "Müller"
    assert body["practice_key"] == "praxis.mueller@example.org"
    assert body["location"] == {"latitude": 50.7766, "longitude": 6.0834, "precision": "postcode"}
    assert body["location_flagged"] is False
    assert body["staff_edited_fields"] == sorted(VALID)  # typed in by staff: imports leave them alone
    assert api.geocoder.calls == [{"postcode": "52062", "street": "Domhof 1", "city": "Aachen"}]
    # Published right after commit, keyed by the therapist id, payload = the public model.
    assert [message.key for message in api.bus.messages] == [body["id"]]
    assert api.bus.messages[0].envelope.event_type == "therapist.created"
    assert api.bus.messages[0].envelope.payload == TherapistSnapshot.of(body).model_dump(mode="json")
    assert "last_name" not in api.bus.messages[0].envelope.payload  # minimal events
    # Of an objection the bus learns only whether there is one, not when or how.
    assert api.bus.messages[0].envelope.payload["contact_opt_out"] is False
    assert "contact_opt_out_at" not in api.bus.messages[0].envelope.payload
    assert api.database.outbox[0].published
    audit = api.database.audit[0]
    assert (audit.actor, audit.action, str(audit.entity_id), audit.before) == (
        "anna@team.example",
        "create",
        body["id"],
        None,
    )
    status, read = api("GET", f"{BASE}/{body['id']}")
    assert (status, read) == (200, body)


def test_create_answers_with_location_header(api: Api) -> None:
    event = api_event("POST", BASE, VALID)
    response = api.module.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 201
    headers = response.get("multiValueHeaders") or {}
    location = headers.get("Location", [None])[0] or (response.get("headers") or {}).get("Location")
    assert location and location.startswith(f"{BASE}/")


def test_unlocatable_address_is_flagged_and_geocoder_outage_does_not_block_saving(api: Api) -> None:
    body = api.create(postcode="99999")
    assert body["location"] == {"latitude": None, "longitude": None, "precision": "unknown"}
    assert body["location_flagged"] is True
    api.geocoder.down = True
    body = api.create(postcode="10115")
    assert body["location_flagged"] is True


def test_event_stays_in_outbox_when_bus_is_down(api: Api) -> None:
    api.bus.down = True
    api.create()
    assert len(api.database.outbox) == 1 and not api.database.outbox[0].published


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({**VALID, "postcode": "1234"}, {"postcode"}),
        ({"first_name": "A"}, {"last_name", "postcode"}),
        ({**VALID, "procedures": ["VT", "XY"], "languages": ["xx"]}, {"procedures.1", "languages.0"}),
        ({**VALID, "phone_windows": {"mon": ["08:00-10:00", "09:00-11:00"]}}, {"phone_windows.mon"}),
        (
            {**VALID, "preferred_age_min": 70, "preferred_age_max": 20},
            {"preferred_age_min", "preferred_age_max"},
        ),
        ({**VALID, "group_only": True}, {"group_only", "offers_group_therapy"}),
        ({**VALID, "status": "blocked"}, {"status"}),  # status changes only through its endpoints
        ({**VALID, "directory_id": "x"}, {"directory_id"}),  # owned by imports
    ],
)
def test_invalid_fields_get_422_naming_each_field(api: Api, body: dict[str, Any], fields: set[str]) -> None:
    status, error = api("POST", BASE, body)
    assert status == 422 and error["code"] == "validation_failed"
    assert {entry["field"] for entry in error["errors"]} == fields
    assert api.database.therapists == {} and api.database.outbox == [] and api.database.audit == []


@pytest.mark.parametrize("raw", ["{not json", "", "[1, 2]", "null"])
def test_malformed_or_non_object_bodies_are_4xx(api: Api, raw: str) -> None:
    status, error = api("POST", BASE, raw_body=raw)
    assert status in (400, 422) and error["code"] in {"malformed_json", "validation_failed"}
    assert api.database.therapists == {}


def test_unknown_therapist_is_404_and_bad_id_is_422(api: Api) -> None:
    unknown = uuid.uuid4()
    for method, path, body in [
        ("GET", f"{BASE}/{unknown}", None),
        ("PUT", f"{BASE}/{unknown}", VALID),
        ("PATCH", f"{BASE}/{unknown}", {"city": "Köln"}),
        ("DELETE", f"{BASE}/{unknown}", None),
        ("POST", f"{BASE}/{unknown}/block", {"reason": "x"}),
        ("POST", f"{BASE}/{unknown}/unblock", {"reason": "x"}),
        ("GET", f"{BASE}/{unknown}/cooling-period", None),
        ("PUT", f"{BASE}/{unknown}/cooling-period", {"next_contact_allowed_on": None, "reason": "x"}),
    ]:
        status, error = api(method, path, body)
        assert (status, error["code"]) == (404, "not_found"), (method, path)
    status, error = api("GET", f"{BASE}/42")
    assert status == 422 and error["errors"][0]["field"] == "therapist_id"


# ------------------------------------------------------------------------------ list


def test_list_filters(api: Api) -> None:
    aachen = api.create()
    berlin = api.create(
        first_name="Ömer",
        last_name="Yilmaz",
        postcode="10115",
        city="Berlin",
        email="yilmaz@praxis.example",
        procedures=["TP", "AP"],
        languages=["de", "tr"],
        offers_group_therapy=True,
        potentially_available=True,
    )
    blocked = api.create(first_name="Bert", last_name="Block", postcode="52064", email=None, procedures=[])
    api("POST", f"{BASE}/{blocked['id']}/block", {"reason": "complaint"})
    cooling = api.create(first_name="Cora", last_name="Kühl", postcode="52066", email="cora@example.org")
    api(
        "PUT",
        f"{BASE}/{cooling['id']}/cooling-period",
        {"next_contact_allowed_on": (NOW.date() + timedelta(days=10)).isoformat(), "reason": "answered"},
    )

    def ids(**query: str) -> list[str]:
        status, page = api("GET", BASE, query=query)
        assert status == 200, page
        assert page["total"] == len(page["items"])
        return [item["id"] for item in page["items"]]

    assert ids() == [aachen["id"], berlin["id"], blocked["id"], cooling["id"]]  # created_at order
    assert ids(status="blocked") == [blocked["id"]]
    assert ids(postcode_prefix="5206") == [aachen["id"], blocked["id"], cooling["id"]]
    assert ids(postcode_prefix="1") == [berlin["id"]]
    assert ids(procedure="TP") == [berlin["id"]]
    assert ids(language="TR") == [berlin["id"]]
    assert ids(offers_group_therapy="true") == [berlin["id"]]
    assert ids(potentially_available="false", status="active") == [aachen["id"], cooling["id"]]
    assert ids(in_cooling_period="true") == [cooling["id"]]
    assert ids(in_cooling_period="false") == [aachen["id"], berlin["id"], blocked["id"]]
    assert ids(q="müll") == [aachen["id"]]  # name, case-insensitive
    assert ids(q="BERLIN") == [berlin["id"]]  # city
    assert ids(q="ömer yil") == [berlin["id"]]  # across first and last name
    assert ids(q="@example.org") == [aachen["id"], cooling["id"]]  # email
    assert ids(q="%") == []  # wildcards are literal text


def test_list_pages_and_sorts(api: Api) -> None:
    names = ["Zander", "Albers", "Meyer", "Becker", "Otto"]
    created = [api.create(last_name=name, email=None) for name in names]
    status, first = api("GET", BASE, query={"sort": "last_name", "limit": "2"})
    assert status == 200
    assert [item["last_name"] for item in first["items"]] == ["Albers", "Becker"]
    assert (first["total"], first["page"], first["limit"]) == (5, 1, 2)
    _, third = api("GET", BASE, query={"sort": "last_name", "limit": "2", "page": "3"})
    assert [item["last_name"] for item in third["items"]] == ["Zander"]
    _, beyond = api("GET", BASE, query={"page": "9"})
    assert beyond["items"] == [] and beyond["total"] == 5
    _, newest = api("GET", BASE, query={"sort": "-created_at", "limit": "1"})
    assert newest["items"][0]["id"] == created[-1]["id"]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"status": "retired"}, {"status"}),
        ({"postcode_prefix": "12345678"}, {"postcode_prefix"}),
        ({"postcode_prefix": "5a"}, {"postcode_prefix"}),
        ({"procedure": "XX"}, {"procedure"}),
        ({"language": "xx"}, {"language"}),
        ({"in_cooling_period": "maybe"}, {"in_cooling_period"}),
        ({"sort": "first_name"}, {"sort"}),
        ({"limit": "0", "page": "0"}, {"limit", "page"}),
        ({"limit": "201"}, {"limit"}),
        ({"postcode": "52062"}, {"postcode"}),  # unknown parameter, not silently ignored
    ],
)
def test_bad_list_parameters_get_422_naming_them(api: Api, query: dict[str, str], fields: set[str]) -> None:
    status, error = api("GET", BASE, query=query)
    assert status == 422 and error["code"] == "validation_failed"
    assert {entry["field"] for entry in error["errors"]} == fields
    assert {entry["location"] for entry in error["errors"]} == {"query"}


# ------------------------------------------------------------------------------ replace and patch


def test_put_replaces_every_field_and_records_staff_edits(api: Api) -> None:
    created = api.create()
    replacement = {"first_name": "Änne", "last_name": "Müller-Lang", "postcode": "10115"}
    status, body = api("PUT", f"{BASE}/{created['id']}", replacement, staff="lead@team.example")
    assert status == 200
    assert body["last_name"] == "Müller-Lang" and body["title"] is None and body["email"] is None
    assert body["languages"] == ["de"] and body["procedures"] == []  # omitted -> defaults
    assert body["location"]["latitude"] == 52.5323  # the new postcode was located
    assert body["practice_key"] is None
    assert {"last_name", "postcode", "title", "email", "procedures", "languages"} <= set(
        body["staff_edited_fields"]
    )
    assert body["created_at"] == created["created_at"]
    assert api.event_types() == ["therapist.created", "therapist.updated"]
    audit = api.database.audit[-1]
    assert audit.action == "replace" and audit.actor == "lead@team.example"
    assert audit.before is not None and audit.after is not None
    assert audit.before["last_name"] == "Müller" and audit.after["last_name"] == "Müller-Lang"
    assert "location" in audit.after and "first_name" not in audit.after  # changed fields only


def test_put_with_the_same_values_changes_nothing(api: Api) -> None:
    created = api.create()
    status, body = api("PUT", f"{BASE}/{created['id']}", VALID)
    assert status == 200 and body == created
    assert api.event_types() == ["therapist.created"] and len(api.database.audit) == 1


def test_patch_changes_only_what_is_sent(api: Api) -> None:
    created = api.create()
    status, body = api(
        "PATCH", f"{BASE}/{created['id']}", {"fax": "0241 4711", "title": None, "languages": None}
    )
    assert status == 200
    assert body["fax"] == "0241 4711" and body["title"] is None and body["languages"] == []
    assert body["last_name"] == "Müller" and body["phone_windows"] == {"mon": ["08:00-09:00"]}
    assert "fax" in body["staff_edited_fields"]
    assert len(api.geocoder.calls) == 1  # the address did not change: no new geocoding
    assert api.event_types() == ["therapist.created", "therapist.updated"]
    assert api.database.audit[-1].before == {"fax": None, "title": "Dr.", "languages": ["de", "en"]}


def test_patch_of_address_locates_again(api: Api) -> None:
    created = api.create()
    _, body = api("PATCH", f"{BASE}/{created['id']}", {"postcode": "10115", "city": "Berlin"})
    assert body["location"]["latitude"] == 52.5323
    assert api.geocoder.calls[-1] == {"postcode": "10115", "street": "Domhof 1", "city": "Berlin"}


@pytest.mark.parametrize(
    ("patch", "fields"),
    [
        ({"last_name": None}, {"last_name"}),  # required fields cannot be cleared
        ({"postcode": None, "statutory_seat": None}, {"postcode", "statutory_seat"}),
        ({"nickname": "Ä"}, {"nickname"}),  # unknown field
        ({"status": "inactive"}, {"status"}),
        ({"phone_windows": {"mon": ["10:00-09:00"]}}, {"phone_windows.mon.0"}),
        ({"group_only": True}, {"group_only", "offers_group_therapy"}),  # checked on the merged record
        ({"preferred_age_max": 10, "preferred_age_min": 30}, {"preferred_age_min", "preferred_age_max"}),
    ],
)
def test_invalid_patches_get_422_and_change_nothing(
    api: Api, patch: dict[str, Any], fields: set[str]
) -> None:
    created = api.create()
    status, error = api("PATCH", f"{BASE}/{created['id']}", patch)
    assert status == 422 and error["code"] == "validation_failed", error
    assert {entry["field"] for entry in error["errors"]} == fields
    assert api("GET", f"{BASE}/{created['id']}")[1] == created
    assert api.event_types() == ["therapist.created"]


def test_patch_across_fields_on_the_merged_record(api: Api) -> None:
    created = api.create(offers_group_therapy=True, preferred_age_min=18)
    status, body = api("PATCH", f"{BASE}/{created['id']}", {"group_only": True, "preferred_age_max": 65})
    assert status == 200 and body["group_only"] and body["preferred_age_max"] == 65
    status, error = api("PATCH", f"{BASE}/{created['id']}", {"offers_group_therapy": False})
    assert status == 422
    assert {entry["field"] for entry in error["errors"]} == {"group_only", "offers_group_therapy"}


def test_empty_patch_changes_nothing(api: Api) -> None:
    created = api.create()
    assert api("PATCH", f"{BASE}/{created['id']}", {}) == (200, created)
    assert api.event_types() == ["therapist.created"]


# ------------------------------------------------------------------------------ status


def test_block_and_unblock(api: Api) -> None:
    created = api.create()
    status, body = api("POST", f"{BASE}/{created['id']}/block", {"reason": "complaint by a patient"})
    assert status == 200 and body["status"] == "blocked" and body["block_reason"] == "complaint by a patient"
    status, error = api("POST", f"{BASE}/{created['id']}/block", {"reason": "again"})
    assert status == 409 and "blocked -> blocked" in error["detail"]
    assert (error["current_status"], error["requested_status"]) == ("blocked", "blocked")
    status, body = api("POST", f"{BASE}/{created['id']}/unblock", {"reason": "resolved"})
    assert status == 200 and body["status"] == "active" and body["block_reason"] is None
    status, error = api("POST", f"{BASE}/{created['id']}/unblock", {"reason": "again"})
    assert status == 409 and "active -> active" in error["detail"]
    assert api.event_types() == ["therapist.created", "therapist.blocked", "therapist.unblocked"]
    assert [entry.reason for entry in api.database.audit[1:]] == ["complaint by a patient", "resolved"]


@pytest.mark.parametrize("body", [{}, {"reason": "  "}, {"reason": "x", "until": "2027-01-01"}])
def test_block_needs_a_reason(api: Api, body: dict[str, Any]) -> None:
    created = api.create()
    status, error = api("POST", f"{BASE}/{created['id']}/block", body)
    assert status == 422 and error["errors"]


def test_delete_is_a_soft_delete_and_idempotent(api: Api) -> None:
    created = api.create()
    status, body = api("DELETE", f"{BASE}/{created['id']}", query={"reason": "retired"})
    assert status == 200 and body["status"] == "inactive"
    assert (
        body["email"] == created["email"] and body["phone_windows"] == created["phone_windows"]
    )  # data kept
    assert api("DELETE", f"{BASE}/{created['id']}")[0] == 200
    assert api.event_types() == ["therapist.created", "therapist.updated"]
    assert api.database.audit[-1].reason == "retired" and api.database.audit[-1].action == "deactivate"
    assert api("GET", f"{BASE}/{created['id']}")[1]["status"] == "inactive"  # still readable (history)
    status, error = api("POST", f"{BASE}/{created['id']}/block", {"reason": "x"})
    assert status == 409 and "inactive -> blocked" in error["detail"]
    status, body = api("POST", f"{BASE}/{created['id']}/reactivate", {"reason": "back from leave"})
    assert status == 200 and body["status"] == "active"


def test_a_blocked_therapist_can_be_deleted(api: Api) -> None:
    created = api.create()
    api("POST", f"{BASE}/{created['id']}/block", {"reason": "x"})
    status, body = api("DELETE", f"{BASE}/{created['id']}")
    assert status == 200 and body["status"] == "inactive" and body["block_reason"] is None


# ------------------------------------------------------------------------------ cooling period


def test_cooling_period_set_read_and_end(api: Api) -> None:
    created = api.create()
    path = f"{BASE}/{created['id']}/cooling-period"
    assert api("GET", path) == (
        200,
        {"therapist_id": created["id"], "next_contact_allowed_on": None, "in_cooling_period": False},
    )
    until = (NOW.date() + timedelta(days=28)).isoformat()
    status, body = api(
        "PUT", path, {"next_contact_allowed_on": until, "reason": "answered bundle"}, staff="s@x"
    )
    assert status == 200 and body == {
        "therapist_id": created["id"],
        "next_contact_allowed_on": until,
        "in_cooling_period": True,
    }
    audit = api.database.audit[-1]
    assert (audit.action, audit.actor, audit.reason) == ("set_cooling_period", "s@x", "answered bundle")
    assert (audit.before, audit.after) == (
        {"next_contact_allowed_on": None},
        {"next_contact_allowed_on": until},
    )
    assert api.database.events()[-1].payload["next_contact_allowed_on"] == until
    # Today itself is contactable again: not "in" the cooling period.
    status, body = api("PUT", path, {"next_contact_allowed_on": NOW.date().isoformat(), "reason": "earlier"})
    assert status == 200 and body["in_cooling_period"] is False
    status, body = api("PUT", path, {"next_contact_allowed_on": None, "reason": "ended by staff"})
    assert status == 200 and body["next_contact_allowed_on"] is None
    assert api.database.audit[-1].after == {"next_contact_allowed_on": None}
    assert api.event_types().count("therapist.updated") == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"next_contact_allowed_on": "2026-12-01"}, "reason"),
        ({"reason": "x"}, "next_contact_allowed_on"),  # must be given (null ends the period)
        ({"next_contact_allowed_on": "01.12.2026", "reason": "x"}, "next_contact_allowed_on"),
        ({"next_contact_allowed_on": "2026-11-21", "reason": "x"}, "next_contact_allowed_on"),  # past
        ({"next_contact_allowed_on": "2030-01-01", "reason": "x"}, "next_contact_allowed_on"),  # too far
    ],
)
def test_invalid_cooling_period_changes_get_422(api: Api, body: dict[str, Any], field: str) -> None:
    created = api.create()
    status, error = api("PUT", f"{BASE}/{created['id']}/cooling-period", body)
    assert status == 422 and [entry["field"] for entry in error["errors"]] == [field]
    assert len(api.database.audit) == 1


def test_unknown_route_is_404(api: Api) -> None:
    status, error = api("POST", f"{BASE}/{uuid.uuid4()}/promote", {})
    assert status == 404 and error["code"] == "route_not_found"


EXPECTED_SAMPLE_STATUS = {
    "create_therapist.json": 201,
    "create_therapist_invalid.json": 422,
    "list_therapists.json": 200,
    "get_therapist.json": 200,
    "replace_therapist.json": 200,
    "patch_therapist.json": 200,
    "delete_therapist.json": 200,
    "block_therapist.json": 200,
    "unblock_therapist.json": 409,  # the sample therapist is active
    "get_cooling_period.json": 200,
    "set_cooling_period.json": 200,
    "export_therapist.json": 200,
    "erase_therapist.json": 200,  # therapist erasure: the sample therapist exists
    "opt_out_therapist.json": 200,
}


def test_sample_events_run_through_the_handler(api: Api) -> None:
    """events/therapists_api/*.json (for `sam local invoke` and `localcloud invoke`) stay valid."""
    samples = Path(__file__).resolve().parents[2] / "events" / "therapists_api"
    assert {path.name for path in samples.glob("*.json")} == set(EXPECTED_SAMPLE_STATUS)
    for name, expected in EXPECTED_SAMPLE_STATUS.items():
        # Each sample starts from one active therapist with the id the samples use.
        api.database.therapists.clear()
        body = api.create()
        sample_id = uuid.UUID("8f14e45f-ceea-467f-a0e6-1c9b8e4f2a10")
        stored = api.database.therapists.pop(uuid.UUID(body["id"]))
        api.database.therapists[sample_id] = stored.model_copy(update={"id": sample_id})
        event = json.loads((samples / name).read_text(encoding="utf-8"))
        status, _ = call(api.module.lambda_handler, event)
        assert status == expected, name


def test_a_therapist_write_with_a_stale_if_match_is_412_and_without_one_428(api: Api) -> None:
    therapist = api.create()
    path = f"{BASE}/{therapist['id']}"

    def raw(method: str, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        event = api_event(method, path, body, user=STAFF_USER, roles=("staff",), headers=headers)
        return dict(api.module.lambda_handler(event, FakeLambdaContext()))

    stale = raw("GET")["multiValueHeaders"]["ETag"][0]
    assert raw("PATCH", {"city": "Köln"}, {"If-Match": stale})["statusCode"] == 200
    for method, body in (("PATCH", {"city": "Bonn"}), ("PUT", {**VALID, "city": "Bonn"})):
        refused = raw(method, body, {"If-Match": stale})
        assert refused["statusCode"] == 412 and '"precondition_failed"' in refused["body"]
        assert raw(method, body)["statusCode"] == 428
    assert json.loads(raw("GET")["body"])["city"] == "Köln"


# ------------------------------------------------------------------------------ personal-data export


def test_the_export_holds_the_record_and_every_other_services_part_and_is_audited(api: Api) -> None:
    therapist = api.create()

    status, export = api("GET", f"{BASE}/{therapist['id']}/export")

    assert status == 200, export
    assert (export["subject"], export["subject_id"]) == ("therapist", therapist["id"])
    assert [part["service"] for part in export["parts"]] == ["therapists", "matching", "communication"]
    own = export["parts"][0]["records"]
    assert own["therapists"] == [therapist]
    assert [entry["action"] for entry in own["audit_log"]] == ["create"]
    exported = api.database.audit[-1]
    assert exported.action == "export" and exported.entity_id == uuid.UUID(therapist["id"])
    assert exported.after == {
        "request_id": export["request_id"],
        "services": ["therapists", "matching", "communication"],
    }


def test_an_export_a_service_cannot_complete_is_502_and_not_audited(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    therapist = api.create()
    failing = FakeOtherServices(OTHER_SERVICES, failing="matching-part")
    monkeypatch.setattr(api.module, "service", replace(api.module.service, personal_data_parts=failing))

    status, problem = api("GET", f"{BASE}/{therapist['id']}/export")

    assert status == 502 and problem["code"] == "internal_call_failed"
    assert [entry.action for entry in api.database.audit] == ["create"]
    assert api("GET", f"{BASE}/{uuid.uuid4()}/export")[0] == 404
