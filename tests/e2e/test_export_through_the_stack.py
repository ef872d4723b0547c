"""The personal-data export (GDPR Art. 15/20) through the deployed local stack: the patient API
function invokes the matching and communication personal-data functions (Lambda, not the bus)
and answers one document with every service's part; after the erasure nothing is exported."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from cloud_support import ApiCaller, eventually

pytestmark = pytest.mark.e2e

STAFF = ApiCaller("staff", user="e2e-export@praxisvermittlung.example.de")
ADMIN = ApiCaller("admin", user="e2e-export-admin@praxisvermittlung.example.de")


def _export(base_url: str, patient_id: str) -> requests.Response:
    return ADMIN.get(f"{base_url}/api/v2/patients/{patient_id}/export", timeout=60)


def test_the_export_gathers_every_services_part_and_ends_with_the_erasure(base_url: str) -> None:
    marker = uuid.uuid4().hex[:8]
    registered = STAFF.post(
        f"{base_url}/api/v2/patients",
        json={
            "first_name": "Export",
            "last_name": f"Probe{marker}",
            "email": f"export-{marker}@example.org",
            "postcode": "04109",
            "symptoms": ["anxiety"],
        },
        timeout=60,
    )
    assert registered.status_code == 201, registered.text
    patient_id = registered.json()["id"]

    def search_started() -> requests.Response | None:
        response = STAFF.post(
            f"{base_url}/api/v2/patient-searches", json={"patient_id": patient_id}, timeout=60
        )
        return None if response.status_code == 404 else response  # the read model is a moment behind

    search = eventually(search_started, timeout_s=90)
    assert search is not None and search.status_code == 201, search.text if search else "never known"
    search_id = search.json()["id"]

    def complete_export() -> dict[str, Any] | None:
        # The "search started" email is written by the communication service a moment later.
        response = _export(base_url, patient_id)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        communication = next(part for part in body["parts"] if part["service"] == "communication")
        return body if communication["records"]["emails"] else None

    export = eventually(complete_export, timeout_s=90)
    assert export is not None, "the communication part never showed the search-started email"
    parts = {part["service"]: part["records"] for part in export["parts"]}
    assert list(parts) == ["patients", "matching", "communication"]
    assert parts["patients"]["patients"][0]["last_name"] == f"Probe{marker}"
    assert [row["id"] for row in parts["matching"]["searches"]] == [search_id]
    (email,) = parts["communication"]["emails"]
    assert email["kind"] == "patient_search_started" and email["recipient_id"] == patient_id

    ended = STAFF.patch(
        f"{base_url}/api/v2/patient-searches/{search_id}",
        json={"status": "cancelled"},
        headers={"If-Match": "*"},
        timeout=60,
    )
    assert ended.status_code == 200, ended.text

    def erased() -> requests.Response | None:
        response = ADMIN.delete(f"{base_url}/api/v2/patients/{patient_id}", timeout=60)
        return None if response.status_code == 409 else response  # the status follows the search

    erasure = eventually(erased, timeout_s=90)
    assert erasure is not None and erasure.status_code == 200, erasure.text if erasure else "still searching"
    gone = _export(base_url, patient_id)
    assert gone.status_code == 410 and gone.json()["code"] == "patient_erased"


def test_a_therapists_export_gathers_every_services_part(base_url: str) -> None:
    marker = uuid.uuid4().hex[:8]
    created = STAFF.post(
        f"{base_url}/api/v2/therapists",
        json={"first_name": "Tabea", "last_name": f"Export{marker}", "postcode": "04109"},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    therapist_id = created.json()["id"]

    export = ADMIN.get(f"{base_url}/api/v2/therapists/{therapist_id}/export", timeout=60)

    assert export.status_code == 200, export.text
    parts = {part["service"]: part["records"] for part in export.json()["parts"]}
    assert list(parts) == ["therapists", "matching", "communication"]
    assert parts["therapists"]["therapists"][0]["last_name"] == f"Export{marker}"
    assert STAFF.get(f"{base_url}/api/v2/therapists/{therapist_id}/export", timeout=60).status_code == 403
