"""The analytics routes through the deployed local stack: a therapist and three patients
registered through their APIs, a staff bundle sent and answered (one accepted, one rejected as
unsuitable, one without an answer); the three routes then show exactly that difference against
what they showed before (other runs may have left data in the same postcode), the therapist's
own preferences exactly, CSV with a header row, and the staff role required."""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from cloud_support import ApiCaller, eventually, start_search_for_new_patient

pytestmark = pytest.mark.e2e

STAFF = ApiCaller("staff", user="e2e-analytics@praxisvermittlung.example.de")
AUDITOR = ApiCaller("auditor", user="e2e-analytics-auditor@praxisvermittlung.example.de")
# Towns the other flows do not use, so a round of theirs never takes our patients.
TOWNS = ["24103", "49074", "54290", "93047", "03046"]


def _today() -> str:
    return datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()


def _eventually(probe: Callable[[], Any], timeout_s: float = 90) -> Any:
    return eventually(probe, timeout_s=timeout_s, every=1.0)


@pytest.fixture
def town(base_url: str) -> Iterator[dict[str, Any]]:
    made: dict[str, Any] = {"postcode": random.choice(TOWNS), "searches": []}
    yield made
    for search_id in made["searches"]:  # leave nothing active for later runs
        STAFF.patch(
            f"{base_url}/api/v2/patient-searches/{search_id}",
            json={"status": "cancelled"},
            headers={"If-Match": "*"},
            timeout=30,
        )


def _analytics(base_url: str, path: str, **params: str) -> dict[str, Any]:
    response = STAFF.get(
        f"{base_url}/api/v2/analytics/{path}", params={"from": _today(), "to": _today(), **params}, timeout=60
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _search(base_url: str, town: dict[str, Any], n: int, symptoms: list[str]) -> str:
    patient = {
        "first_name": "Lena",
        "last_name": f"Analytik{n}",
        "postcode": town["postcode"],
        "birth_date": "1991-05-17",
        "gender": "female",
        "symptoms": symptoms,
        "insurance_type": "statutory",
    }
    search_id = start_search_for_new_patient(base_url, STAFF, patient)
    town["searches"].append(search_id)
    return search_id


def test_analytics_show_a_bundle_sent_and_answered(base_url: str, town: dict[str, Any]) -> None:
    region = town["postcode"]
    before = _analytics(base_url, "bundle-efficiency", region=region)["total"]
    funnel_before = _analytics(base_url, "placements", region=region, region_digits="5")["total"]

    tag = uuid.uuid4().hex[:8]
    therapist = STAFF.post(
        f"{base_url}/api/v2/therapists",
        json={
            "first_name": "Greta",
            "last_name": f"Statistik{tag}",
            "postcode": region,
            "email": f"analytik-{tag}@example.de",
            "procedures": ["VT", "TP"],
        },
        timeout=60,
    )
    assert therapist.status_code == 201, therapist.text
    therapist_id = therapist.json()["id"]
    searches = [_search(base_url, town, n, s) for n, s in enumerate([["depression"], ["anxiety"], ["ocd"]])]

    def bundle() -> requests.Response | None:
        response = STAFF.post(
            f"{base_url}/api/v2/therapists/{therapist_id}/bundles",
            json={"size": 3, "search_ids": searches, "send_immediately": True},
            timeout=60,
        )
        return None if response.status_code == 404 else response  # the therapist is a moment behind

    made = _eventually(bundle)
    assert made is not None and made.status_code == 201, made.text if made else "therapist never known"
    bundle_id = made.json()["bundle"]["bundle_id"]
    outcomes = dict(zip(searches, ["accepted", "rejected_unsuitable", "no_response"], strict=True))
    answered = STAFF.put(
        f"{base_url}/api/v2/bundles/{bundle_id}/response",
        json={"members": [{"search_id": s, "outcome": o} for s, o in outcomes.items()]},
        timeout=60,
    )
    assert answered.status_code == 200, answered.text

    after = _analytics(base_url, "bundle-efficiency", region=region)["total"]
    changed = ("bundles_sent", "answered", "members", "acceptances", "placements", "rejected_unsuitable")
    # one bundle of three: one acceptance that placed, one rejected as unsuitable
    assert [after[key] - before[key] for key in changed] == [1, 1, 3, 1, 1, 1]

    preferences = _analytics(base_url, "therapist-preferences", therapist_id=therapist_id)
    [mine] = preferences["items"]
    totals = mine["totals"]
    assert (totals["offered"], totals["accepted"], totals["declined_unsuitable"], totals["no_response"]) == (
        3, 1, 1, 1,
    )  # fmt: skip
    symptoms = {a["value"]: a for a in mine["attributes"] if a["dimension"] == "symptom"}
    assert {v: (a["offered"], a["accepted"]) for v, a in symptoms.items()} == {
        "depression": (1, 1), "anxiety": (1, 0), "ocd": (1, 0),
    }  # fmt: skip

    funnel = _analytics(base_url, "placements", region=region, region_digits="5")["total"]
    assert funnel["searches_started"] - funnel_before["searches_started"] == 3
    assert funnel["placed"] - funnel_before["placed"] == 1

    as_csv = STAFF.get(
        f"{base_url}/api/v2/analytics/therapist-preferences",
        params={"from": _today(), "to": _today(), "therapist_id": therapist_id, "format": "csv"},
        timeout=60,
    )
    assert as_csv.status_code == 200 and as_csv.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert rows[0]["dimension"] == "all" and rows[0]["offered"] == "3"
    assert "Analytik" not in as_csv.text and "Lena" not in as_csv.text  # no names, only counts

    refused = AUDITOR.get(
        f"{base_url}/api/v2/analytics/placements", params={"from": _today(), "to": _today()}, timeout=60
    )
    assert refused.status_code == 403 and refused.json()["required_role"] == "staff"
    bad = STAFF.get(f"{base_url}/api/v2/analytics/placements", params={"from": _today()}, timeout=60)
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["to"]
