"""A therapist's objection to inquiries (GDPR Art. 21) through the deployed local stack: staff
record it through the therapist API; `therapist.updated` (with `contact_opt_out`) reaches the
matching read model; a round then skips the therapist (`contact_opt_out`) and their colleague
who shares the practice mailbox (`practice_contact_opt_out`); an admin's opt-in with the
current ETag makes them eligible again. Only dry runs after the objection: nothing is left
behind for later runs but cancelled searches."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cloud_support import ApiCaller, eventually

pytestmark = pytest.mark.e2e

STAFF = ApiCaller("staff", user="e2e-rights@praxisvermittlung.example.de")
ADMIN = ApiCaller("admin", user="e2e-rights-admin@praxisvermittlung.example.de")
# Towns no other e2e test registers patients in (the matching flow uses its own list).
TOWNS = ["54290", "94032", "97070"]


@pytest.fixture
def region(base_url: str) -> Iterator[dict[str, Any]]:
    made: dict[str, Any] = {"postcode": random.choice(TOWNS), "searches": []}
    yield made
    for search_id in made["searches"]:  # leave nothing active for later runs
        STAFF.patch(
            f"{base_url}/api/v2/patient-searches/{search_id}",
            json={"status": "cancelled"},
            headers={"If-Match": "*"},
            timeout=30,
        )


def _post(caller: requests.Session, base_url: str, path: str, body: Any, **kwargs: Any) -> requests.Response:
    return caller.post(f"{base_url}{path}", json=body, timeout=60, **kwargs)


def _therapist(base_url: str, postcode: str, email: str) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    body = {
        "first_name": "Jörg",
        "last_name": f"Widerspruch{tag}",
        "postcode": postcode,
        "email": email,
        "procedures": ["VT", "TP"],
    }
    response = _post(STAFF, base_url, "/api/v2/therapists", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _search(base_url: str, region: dict[str, Any], n: int) -> None:
    patient = _post(
        STAFF,
        base_url,
        "/api/v2/patients",
        {
            "first_name": "Ümit",
            "last_name": f"Rechte{n}",
            "postcode": region["postcode"],
            "birth_date": "1985-06-01",
            "gender": "female",
            "symptoms": ["depression", "anxiety"],
            "max_travel_km": 10,
            "health_insurer": "AOK Rheinland-Pfalz/Saarland",
        },
    )
    assert patient.status_code == 201, patient.text
    patient_id = patient.json()["id"]

    def create() -> requests.Response | None:
        response = _post(STAFF, base_url, "/api/v2/patient-searches", {"patient_id": patient_id})
        return None if response.status_code == 404 else response  # the read model is a moment behind

    created = eventually(create)
    assert created is not None and created.status_code == 201, created.text if created else "never known"
    region["searches"].append(created.json()["id"])


def _dry_run(base_url: str, therapist_ids: list[str]) -> dict[str, Any]:
    response = _post(
        STAFF, base_url, "/api/v2/bundles/create", {"dry_run": True, "therapist_ids": therapist_ids}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _reasons(plan: dict[str, Any]) -> dict[str, str]:
    return {left["therapist_id"]: left["reason"] for left in plan["therapists_left_out"]}


def test_staff_opt_a_therapist_out_and_rounds_skip_them_and_their_practice(
    base_url: str, region: dict[str, Any]
) -> None:
    mailbox = f"gemeinschaftspraxis-{uuid.uuid4().hex[:8]}@example.de"
    objecting = _therapist(base_url, region["postcode"], mailbox)
    colleague = _therapist(base_url, region["postcode"], mailbox)
    ids = [objecting["id"], colleague["id"]]
    for n in range(3):
        _search(base_url, region, n)

    # Before the objection the practice gets a bundle (addressed to one of the two).
    def proposed() -> dict[str, Any] | None:
        plan = _dry_run(base_url, ids)
        return plan if plan["therapists_considered"] >= 2 and plan["bundles"] else None

    before = eventually(proposed)
    assert before, "the practice never became eligible (read models or searches missing)"
    assert {bundle["therapist_id"] for bundle in before["bundles"]} <= set(ids)

    objected = _post(STAFF, base_url, f"/api/v2/therapists/{objecting['id']}/opt-out", {"reason": "phone"})
    assert objected.status_code == 200, objected.text
    assert objected.json()["contact_opt_out_reason"] == "phone"
    assert (
        _post(STAFF, base_url, f"/api/v2/therapists/{objecting['id']}/opt-in", {"reason": "x"}).status_code
        == 403
    )

    def skipped() -> dict[str, Any] | None:
        plan = _dry_run(base_url, ids)
        reasons = _reasons(plan)
        return plan if reasons.get(objecting["id"]) == "contact_opt_out" else None

    after = eventually(skipped)
    assert after, "the matching read model never learnt of the objection"
    assert after["bundles"] == []
    assert _reasons(after) == {
        objecting["id"]: "contact_opt_out",
        colleague["id"]: "practice_contact_opt_out",
    }

    # Staff cannot pick the colleague by hand either: the mailbox is the one that objected.
    by_hand = _post(STAFF, base_url, f"/api/v2/therapists/{colleague['id']}/bundles", {"dry_run": True})
    assert by_hand.status_code == 200, by_hand.text
    assert (by_hand.json()["bundle"], by_hand.json()["therapist_reason"]) == (
        None,
        "practice_contact_opt_out",
    )

    # An admin allows inquiries again, with the ETag of the record they read.
    read = ADMIN.get(f"{base_url}/api/v2/therapists/{objecting['id']}", timeout=30)
    assert read.status_code == 200 and read.json()["contact_opt_out_reason"] == "phone"
    stale = _post(
        ADMIN,
        base_url,
        f"/api/v2/therapists/{objecting['id']}/opt-in",
        {"reason": "bittet schriftlich um neue Anfragen"},
        headers={"If-Match": '"not-the-current-version"'},
    )
    assert stale.status_code == 412, stale.text
    allowed = _post(
        ADMIN,
        base_url,
        f"/api/v2/therapists/{objecting['id']}/opt-in",
        {"reason": "bittet schriftlich um neue Anfragen"},
        headers={"If-Match": read.headers["ETag"]},
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["contact_opt_out_at"] is None
    again = eventually(proposed)
    assert again, "the opt-in never reached the matching read model"
