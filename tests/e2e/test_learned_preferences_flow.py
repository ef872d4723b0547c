"""Learned therapist preferences through the deployed local stack (issue 17 §2): a therapist and
three patients registered through their APIs, a staff bundle sent and answered (accepted,
rejected as unsuitable, no answer); GET /api/v2/analytics/therapist-preferences with
`learned=true` then shows the therapist's learned estimates computed from exactly those answers
(the unanswered member says nothing about the patient and is not counted), the posterior shrunk
towards the prior, in JSON and CSV; without `learned=true` the list is empty.
Not run by the helper that wrote it (the lead runs e2e after merge and deploy)."""

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

STAFF = ApiCaller("staff", user="e2e-learned@praxisvermittlung.example.de")
# Towns the other flows do not use, so a round of theirs never takes our patients.
TOWNS = ["18055", "17489", "39104", "99084", "66111"]


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


def _search(base_url: str, town: dict[str, Any], n: int, symptoms: list[str]) -> str:
    patient = {
        "first_name": "Jana",
        "last_name": f"Gelernt{n}",
        "postcode": town["postcode"],
        "birth_date": "1988-03-09",
        "gender": "female",
        "symptoms": symptoms,
        "insurance_type": "statutory",
    }
    search_id = start_search_for_new_patient(base_url, STAFF, patient)
    town["searches"].append(search_id)
    return search_id


def _preferences(base_url: str, therapist_id: str, **params: str) -> requests.Response:
    return STAFF.get(
        f"{base_url}/api/v2/analytics/therapist-preferences",
        params={"from": _today(), "to": _today(), "therapist_id": therapist_id, **params},
        timeout=120,
    )


def test_the_learned_estimates_follow_the_answers(base_url: str, town: dict[str, Any]) -> None:
    tag = uuid.uuid4().hex[:8]
    therapist = STAFF.post(
        f"{base_url}/api/v2/therapists",
        json={
            "first_name": "Lore",
            "last_name": f"Lernend{tag}",
            "postcode": town["postcode"],
            "email": f"gelernt-{tag}@example.de",
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

    plain = _preferences(base_url, therapist_id)
    assert plain.status_code == 200 and plain.json()["items"][0]["learned"] == []

    response = _preferences(base_url, therapist_id, learned="true")
    assert response.status_code == 200, response.text
    [mine] = response.json()["items"]
    learned = {row["feature"]: row for row in mine["learned"]}
    assert mine["learned"][0]["feature"] == "overall"
    assert (learned["overall"]["accepted"], learned["overall"]["answered"]) == (1, 2)
    assert (learned["symptom:depression"]["accepted"], learned["symptom:depression"]["answered"]) == (1, 1)
    assert (learned["symptom:anxiety"]["accepted"], learned["symptom:anxiety"]["answered"]) == (0, 1)
    assert "symptom:ocd" not in learned  # no answer says nothing about the patient
    anxiety = learned["symptom:anxiety"]
    assert 0 < anxiety["posterior"] < anxiety["prior"]  # one decline moves it a little, not to 0

    as_csv = _preferences(base_url, therapist_id, learned="true", format="csv")
    assert as_csv.status_code == 200 and as_csv.headers["Content-Type"].startswith("text/csv")
    rows = [r for r in csv.DictReader(io.StringIO(as_csv.text)) if r["dimension"] == "learned"]
    assert {r["value"] for r in rows} >= {"overall", "symptom:depression", "symptom:anxiety"}
    assert "Gelernt" not in as_csv.text and "Jana" not in as_csv.text  # no names, only counts
