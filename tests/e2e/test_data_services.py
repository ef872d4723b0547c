"""Patients, therapists and geocoding through the deployed local API Gateway, and the events
they emit reaching the matching service's read models."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from cloud_support import ApiCaller
from localcloud import postgres

pytestmark = pytest.mark.e2e

STAFF = ApiCaller("staff", user="e2e@praxisvermittlung.example.de")
ADMIN = ApiCaller("admin", user="e2e-admin@praxisvermittlung.example.de")


def _read_model(table: str, entity_id: str, done: Any, timeout_s: float = 60) -> dict[str, Any] | None:
    engine = create_engine(postgres.admin_url())
    deadline = time.monotonic() + timeout_s
    data = None
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                row = connection.execute(
                    text(f"SELECT data FROM matching_service.{table} WHERE id = :id"), {"id": entity_id}
                ).first()
            data = row.data if row else None
            if done(data):
                return data
            time.sleep(1)
    finally:
        engine.dispose()
    return data


def test_distance_between_real_postcodes(base_url: str) -> None:
    response = STAFF.post(
        f"{base_url}/api/v2/geocoding/distance",
        json={"from": {"postcode": "52062"}, "to": {"postcode": "10115"}, "mode": "car"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert 500 <= response.json()["km"] <= 650
    same = STAFF.post(
        f"{base_url}/api/v2/geocoding/distance",
        json={"from": {"postcode": "10115"}, "to": {"postcode": "10115"}, "mode": "transit"},
        timeout=30,
    ).json()
    assert same["km"] == 0 and same["minutes"] == 0
    assert STAFF.get(f"{base_url}/api/v2/geocoding/postcodes/99999", timeout=30).status_code == 404


def test_a_blocked_therapist_is_blocked_in_the_matching_read_model(base_url: str) -> None:
    email = f"praxis-{uuid.uuid4().hex[:8]}@example.de"
    created = STAFF.post(
        f"{base_url}/api/v2/therapists",
        json={
            "first_name": "Jörg",
            "last_name": "Weißmann",
            "postcode": "50667",
            "email": email,
            "procedures": ["VT"],
            "phone_windows": {"mon": ["08:00-09:00"]},
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    therapist = created.json()
    assert therapist["location"]["precision"] == "postcode" and not therapist["location_flagged"]
    blocked = ADMIN.post(
        f"{base_url}/api/v2/therapists/{therapist['id']}/block",
        json={"reason": "Beschwerde einer Patientin"},
        timeout=30,
    )
    assert blocked.status_code == 200 and blocked.json()["status"] == "blocked"
    again = ADMIN.post(
        f"{base_url}/api/v2/therapists/{therapist['id']}/block",
        json={"reason": "x"},
        timeout=30,
    )
    assert again.status_code == 409
    data = _read_model(
        "therapist_profiles", therapist["id"], lambda d: d is not None and d["status"] == "blocked"
    )
    assert data is not None and data["status"] == "blocked"


def test_patient_update_list_and_erasure_reach_the_read_model(base_url: str) -> None:
    body = {
        "first_name": "Zoë",
        "last_name": f"Lindström{uuid.uuid4().hex[:6]}",
        "postcode": "04109",
        "email": "zoe@example.org",
        "symptoms": ["anxiety"],
    }
    patient = STAFF.post(f"{base_url}/api/v2/patients", json=body, timeout=30).json()
    read = STAFF.get(f"{base_url}/api/v2/patients/{patient['id']}", timeout=30)
    patched = STAFF.patch(
        f"{base_url}/api/v2/patients/{patient['id']}",
        json={"max_travel_km": 40},
        headers={"If-Match": read.headers["ETag"]},
        timeout=30,
    )
    assert patched.status_code == 200 and patched.json()["max_travel_km"] == 40
    listed = STAFF.get(
        f"{base_url}/api/v2/patients", params={"q": body["last_name"], "postcode_prefix": "04"}, timeout=30
    ).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == patient["id"]
    data = _read_model(
        "patient_profiles", patient["id"], lambda d: d is not None and d["max_travel_km"] == 40
    )
    assert data is not None and data["max_travel_km"] == 40

    erased = ADMIN.delete(f"{base_url}/api/v2/patients/{patient['id']}", timeout=30)
    assert erased.status_code == 200, erased.text
    assert STAFF.get(f"{base_url}/api/v2/patients/{patient['id']}", timeout=30).status_code == 410
    assert _read_model("patient_profiles", patient["id"], lambda d: d is None) is None
