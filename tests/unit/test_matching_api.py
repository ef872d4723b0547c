"""The matching API handler with in-memory adapters: routing, status codes and Location,
validation and undeclared query parameters, error mapping, paging, publish-after-commit."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from matching_fakes import MatchingWorld

from support import FakeLambdaContext, api_event, call, least_roles, load_function, with_if_match
from therapy_platform.matching.domain.responses import cooling_until
from therapy_platform.platform.clock import platform_today

STAFF = "anna.staff@example.org"


@dataclass
class Api:
    handler: Any
    world: MatchingWorld

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        roles: tuple[str, ...] | None = None,
    ) -> tuple[int, Any]:
        event = api_event(
            method,
            path,
            body,
            query=query,
            user=STAFF,
            roles=least_roles(method, path) if roles is None else roles,
            headers=with_if_match(method, path, None),
        )
        return call(self.handler, event)

    def search(self, **patient: Any) -> dict[str, Any]:
        status, body = self.request(
            "POST", "/api/v2/patient-searches", {"patient_id": str(self.world.patient(**patient))}
        )
        assert status == 201, body
        return dict(body)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    module = load_function("matching_api")
    world = MatchingWorld()
    monkeypatch.setattr(module, "service", world.service())
    return Api(module.lambda_handler, world)


def test_create_search_answers_201_with_location_and_publishes_after_commit(api: Api) -> None:
    status, body = api.request("POST", "/api/v2/patient-searches", {"patient_id": str(api.world.patient())})
    assert status == 201 and body["status"] == "active" and body["total_requested_contacts"] == 10
    assert [e.event_type for e in api.world.published] == ["search.created", "search.status_changed"]
    assert api.world.database.audit[0].actor == STAFF
    status, again = api.request("POST", "/api/v2/patient-searches", {"patient_id": body["patient_id"]})
    assert status == 409 and again["search_id"] == body["id"]


def test_unknown_patient_is_404_and_invalid_body_422(api: Api) -> None:
    status, body = api.request("POST", "/api/v2/patient-searches", {"patient_id": str(uuid.uuid4())})
    assert status == 404 and "retry shortly" in body["detail"]
    status, _ = api.request("POST", "/api/v2/patient-searches", {"patient_id": "nope", "extra": 1})
    assert status == 422


def test_list_reads_and_patches_searches(api: Api) -> None:
    first = api.search()
    api.search(postcode="52062")
    status, page = api.request(
        "GET", "/api/v2/patient-searches", query={"postcode_prefix": "10", "limit": "1"}
    )
    assert status == 200 and page["total"] == 1 and [s["id"] for s in page["items"]] == [first["id"]]
    status, body = api.request("GET", "/api/v2/patient-searches", query={"postcode": "10"})
    assert status == 422 and body["errors"][0]["field"] == "postcode"
    status, detail = api.request("GET", f"/api/v2/patient-searches/{first['id']}")
    assert status == 200 and detail["bundles"] == []
    status, _ = api.request("GET", f"/api/v2/patient-searches/{uuid.uuid4()}")
    assert status == 404
    status, paused = api.request("PATCH", f"/api/v2/patient-searches/{first['id']}", {"status": "paused"})
    assert status == 200 and paused["status"] == "paused"
    status, body = api.request(
        "PATCH",
        f"/api/v2/patient-searches/{first['id']}",
        {"status": "placed", "placed_therapist_id": str(uuid.uuid4())},
    )
    assert status == 409 and "from paused to placed" in body["detail"]
    status, more = api.request(
        "POST", f"/api/v2/patient-searches/{first['id']}/contact-requests", {"count": 2}
    )
    assert status == 200 and more["total_requested_contacts"] == 12


def test_rounds_bundles_sending_and_responses(api: Api) -> None:
    therapist = api.world.therapist()
    searches = [api.search()["id"] for _ in range(3)]
    status, dry = api.request("POST", "/api/v2/bundles/create", {"dry_run": True})
    assert status == 200 and dry["round_id"] is None and len(dry["bundles"]) == 1
    status, result = api.request("POST", "/api/v2/bundles/create", {})
    assert status == 201 and result["round_id"]
    bundle_id = result["bundles"][0]["bundle_id"]
    status, page = api.request(
        "GET", "/api/v2/bundles", query={"status": "draft", "therapist_id": str(therapist)}
    )
    assert status == 200 and page["total"] == 1 and page["items"][0]["id"] == bundle_id
    status, sent = api.request("POST", f"/api/v2/bundles/{bundle_id}/send")
    assert status == 200 and sent["status"] == "sent" and sent["channel"] == "email"
    status, read = api.request("GET", f"/api/v2/bundles/{bundle_id}")
    assert status == 200 and all(m["patient"]["reference"] for m in read["members"])
    status, body = api.request(
        "PUT",
        f"/api/v2/bundles/{bundle_id}/response",
        {"members": [{"search_id": searches[0], "outcome": "accepted"}]},
    )
    assert status == 400 and sorted(body["missing"]) == sorted(searches[1:])
    response = {"members": [{"search_id": s, "outcome": "rejected_capacity"} for s in searches]}
    status, recorded = api.request("PUT", f"/api/v2/bundles/{bundle_id}/response", response)
    assert status == 200 and recorded["bundle"]["response_type"] == "full_rejection"
    assert "cooling.period_started" in {e.event_type for e in api.world.published}
    status, _ = api.request("GET", f"/api/v2/bundles/{uuid.uuid4()}")
    assert status == 404


def test_a_response_dated_before_the_sending_or_in_the_future_is_refused_naming_the_field(api: Api) -> None:
    api.world.therapist()
    searches = [api.search()["id"] for _ in range(3)]
    status, result = api.request("POST", "/api/v2/bundles/create", {"send_immediately": True})
    assert status == 201
    bundle_id = result["bundles"][0]["bundle_id"]
    sent_at = datetime.fromisoformat(api.request("GET", f"/api/v2/bundles/{bundle_id}")[1]["sent_at"])
    api.world.now += timedelta(days=2)
    members = [{"search_id": s, "outcome": "rejected_capacity"} for s in searches]
    for responded_at, why in (
        ("2031-01-01T09:00:00+01:00", "in_future"),  # would cool the therapist until 2031
        ((api.world.now + timedelta(minutes=6)).isoformat(), "in_future"),
        ((sent_at - timedelta(minutes=1)).isoformat(), "too_early"),  # would end cooling
    ):
        status, body = api.request(
            "PUT", f"/api/v2/bundles/{bundle_id}/response", {"members": members, "responded_at": responded_at}
        )
        assert status == 422, body
        [field] = body["errors"]
        assert (field["field"], field["code"]) == ("responded_at", why) and field["message"]
    assert "cooling.period_started" not in {e.event_type for e in api.world.published}
    # A device clock a few minutes ahead is fine; the cooling date follows the given day.
    ahead = api.world.now + timedelta(minutes=4)
    status, recorded = api.request(
        "PUT",
        f"/api/v2/bundles/{bundle_id}/response",
        {"members": members, "responded_at": ahead.isoformat()},
    )
    assert status == 200, recorded
    assert recorded["next_contact_allowed_on"] == cooling_until(platform_today(ahead)).isoformat()


def test_staff_selection_staff_bundles_and_alerts(api: Api) -> None:
    therapist = api.world.therapist(postcode="10115")
    api.search()
    status, page = api.request("GET", "/api/v2/therapists/eligible", query={"postcode_prefix": "10"})
    assert status == 200 and [r["therapist_id"] for r in page["items"]] == [str(therapist)]
    status, _ = api.request("GET", "/api/v2/therapists/eligible")
    assert status == 422  # postcode_prefix is required
    status, dry = api.request("POST", f"/api/v2/therapists/{therapist}/bundles", {"size": 1, "dry_run": True})
    assert status == 200 and dry["dry_run"] is True
    path = f"/api/v2/therapists/{therapist}/bundles"
    event = api_event("POST", path, {"size": 1}, user=STAFF, roles=least_roles("POST", path))
    response = api.handler(event, FakeLambdaContext())
    built = json.loads(response["body"])
    assert response["statusCode"] == 201 and built["bundle"]["status"] == "draft"
    assert response["multiValueHeaders"]["Location"] == [f"/api/v2/bundles/{built['bundle']['bundle_id']}"]
    status, alerts = api.request("GET", "/api/v2/alerts", query={"limit": "5"})
    assert status == 200 and alerts == []


def test_a_search_patch_with_a_stale_if_match_is_412_and_without_one_428(api: Api) -> None:
    search = api.search()
    path = f"/api/v2/patient-searches/{search['id']}"

    def raw(method: str, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        event = api_event(method, path, body, user=STAFF, roles=("staff",), headers=headers)
        return dict(api.handler(event, FakeLambdaContext()))

    stale = raw("GET")["multiValueHeaders"]["ETag"][0]
    changed = raw("PATCH", {"notes": "ruft vormittags an"}, {"If-Match": stale})
    assert changed["statusCode"] == 200
    assert changed["multiValueHeaders"]["ETag"] == raw("GET")["multiValueHeaders"]["ETag"] != [stale]
    refused = raw("PATCH", {"status": "paused"}, {"If-Match": stale})
    assert refused["statusCode"] == 412 and '"precondition_failed"' in refused["body"]
    assert raw("PATCH", {"status": "paused"})["statusCode"] == 428
    assert '"active"' in raw("GET")["body"]
