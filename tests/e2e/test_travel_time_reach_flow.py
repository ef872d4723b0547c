"""Reach by travel time through the deployed local stack (docs/matching.md "Reach by travel
time"): with the feature flag `travel_time_reach` on in the deployed document (the SSM
parameter; the deployed one is put back), three patients in Berlin Mitte limited to 30 minutes
by public transport (and 1 km, which the minutes replace) are in reach of a practice in
Kreuzberg (3.6 km, 24 min) and out of reach of one in Schönefeld (18 km, 59 min), and the dry
run says so; the distance API gives the same minutes. With the flag off the km limit decides."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cloud_support import ApiCaller, eventually
from localcloud import stack
from localcloud.aws import client
from therapy_platform.platform.feature_flags import Flag

pytestmark = pytest.mark.e2e

STAFF = ApiCaller("staff", user="e2e-travel@praxisvermittlung.example.de")
PARAMETER = "/therapy-platform/local/feature-flags"
HOME, NEAR, FAR = "10117", "10999", "12529"


def _post(base_url: str, path: str, body: Any) -> requests.Response:
    return STAFF.post(f"{base_url}{path}", json=body, timeout=60)


@pytest.fixture
def flags_document(deployed: stack.StackInfo) -> Iterator[dict[str, Any]]:
    ssm = client("ssm")
    original = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    yield json.loads(original)
    ssm.put_parameter(Name=PARAMETER, Value=original, Type="String", Overwrite=True)


def _set_flag(document: dict[str, Any], on: bool) -> None:
    changed = {**document, Flag.TRAVEL_TIME_REACH.value: {"default": on}}
    client("ssm").put_parameter(Name=PARAMETER, Value=json.dumps(changed), Type="String", Overwrite=True)


@pytest.fixture
def searches(base_url: str) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for search_id in made:  # leave nothing active for later runs
        STAFF.patch(
            f"{base_url}/api/v2/patient-searches/{search_id}",
            json={"status": "cancelled"},
            headers={"If-Match": "*"},
            timeout=30,
        )


def _therapist(base_url: str, postcode: str) -> str:
    tag = uuid.uuid4().hex[:8]
    response = _post(
        base_url,
        "/api/v2/therapists",
        {
            "first_name": "Jörg",
            "last_name": f"Reisezeit{tag}",
            "postcode": postcode,
            "email": f"praxis-travel-{tag}@example.de",
            "procedures": ["VT", "TP"],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _limited_search(base_url: str, made: list[str], n: int) -> str:
    patient = _post(
        base_url,
        "/api/v2/patients",
        {
            "first_name": "Petra",
            "last_name": f"Reisezeit{n}",
            "postcode": HOME,
            "symptoms": ["depression"],
            "max_travel_km": 1,
            "max_travel_minutes": 30,
            "travel_mode": "transit",
        },
    )
    assert patient.status_code == 201, patient.text
    assert patient.json()["max_travel_minutes"] == 30
    patient_id = patient.json()["id"]

    def create() -> requests.Response | None:
        response = _post(base_url, "/api/v2/patient-searches", {"patient_id": patient_id})
        return None if response.status_code == 404 else response  # the read model is a moment behind

    created = eventually(create, timeout_s=90, every=1.0)
    assert created is not None and created.status_code == 201, created.text if created else "never known"
    made.append(created.json()["id"])
    return str(created.json()["id"])


def _dry_run(base_url: str, therapist_id: str) -> dict[str, Any]:
    response = _post(base_url, "/api/v2/bundles/create", {"dry_run": True, "therapist_ids": [therapist_id]})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _reach_of(result: dict[str, Any], search_ids: set[str]) -> dict[str, tuple[str, str | None]]:
    """Per search of ours: 'member' or the pair's reason, with the reach words."""
    found: dict[str, tuple[str, str | None]] = {}
    for bundle in result["bundles"]:
        for member in bundle["members"]:
            if member["search_id"] in search_ids:
                found[member["search_id"]] = ("member", member.get("reach"))
    for pair in result["pairs"]:
        if pair["search_id"] in search_ids:
            found[pair["search_id"]] = (pair["reason"], pair.get("reach"))
    return found


def _minutes(base_url: str, to: str) -> int:
    response = _post(
        base_url,
        "/api/v2/geocoding/distance",
        {"from": {"postcode": HOME}, "to": {"postcode": to}, "mode": "transit"},
    )
    assert response.status_code == 200, response.text
    return int(response.json()["minutes"])


def test_a_patient_limited_to_30_minutes_by_public_transport(
    base_url: str, flags_document: dict[str, Any], searches: list[str]
) -> None:
    near, far = _therapist(base_url, NEAR), _therapist(base_url, FAR)
    ours = {_limited_search(base_url, searches, n) for n in range(3)}
    near_minutes, far_minutes = _minutes(base_url, NEAR), _minutes(base_url, FAR)
    assert near_minutes <= 30 < far_minutes

    _set_flag(flags_document, True)

    def known() -> dict[str, Any] | None:  # every search of ours decided for the new therapist
        result = _dry_run(base_url, far)
        return result if len(_reach_of(result, ours)) == 3 else None

    schoenefeld = eventually(known, timeout_s=90, every=1.0)
    assert schoenefeld is not None, "the therapist never reached the matching read model"
    words = f"≈ {far_minutes} min by public transport (limit 30)"
    assert set(_reach_of(schoenefeld, ours).values()) == {("out_of_reach", words)}

    kreuzberg = _reach_of(_dry_run(base_url, near), ours)
    assert set(kreuzberg) == ours
    assert all(reason != "out_of_reach" for reason, _ in kreuzberg.values())
    assert {reach for _, reach in kreuzberg.values()} == {
        f"≈ {near_minutes} min by public transport (limit 30)"
    }

    _set_flag(flags_document, False)  # the km limit (1 km) decides: out of reach of both, no minutes shown
    off = _reach_of(_dry_run(base_url, near), ours)
    assert set(off.values()) == {("out_of_reach", None)}
