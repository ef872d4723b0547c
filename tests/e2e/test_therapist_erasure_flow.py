"""Therapist erasure (GDPR Art. 17) through the deployed local stack: a therapist with a canary
name, email and phone receives a bundle and its inquiry email; an admin erases them; the
`therapist.deleted` consumers close the bundle and scrub the email; then no text or JSON column
of any schema of the deployed database holds the canary values, and the API no longer knows
the therapist."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from cloud_support import ApiCaller, eventually
from localcloud import postgres

pytestmark = pytest.mark.e2e

STAFF = ApiCaller("staff", user="e2e-terasure@praxisvermittlung.example.de")
ADMIN = ApiCaller("admin", user="e2e-terasure-admin@praxisvermittlung.example.de")
# A town no other e2e test registers patients in, so the bundle's members are ours.
POSTCODE = "39104"  # Magdeburg
TEXT_TYPES = ["text", "character varying", "json", "jsonb", "ARRAY"]


def _post(base_url: str, path: str, body: Any) -> requests.Response:
    return STAFF.post(f"{base_url}{path}", json=body, timeout=60)


def _erase(base_url: str, therapist_id: str, caller: ApiCaller = ADMIN) -> requests.Response:
    return caller.post(f"{base_url}/api/v2/therapists/{therapist_id}/erase", timeout=60)


def _findings(patterns: list[str]) -> list[str]:
    """Every schema.table.column of the deployed database holding any of the patterns."""
    engine = create_engine(postgres.admin_url())
    found: list[str] = []
    try:
        with engine.connect() as connection:
            columns = connection.execute(
                text(
                    "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c"
                    " JOIN information_schema.tables t"
                    "   ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
                    " WHERE t.table_type = 'BASE TABLE'"
                    " AND c.table_schema NOT IN ('pg_catalog', 'information_schema')"
                    " AND c.data_type = ANY(:types)"
                ),
                {"types": TEXT_TYPES},
            ).all()
            for schema, table, column in columns:
                hits = connection.execute(
                    text(f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}"::text ILIKE ANY(:p)'),
                    {"p": [f"%{pattern}%" for pattern in patterns]},
                ).scalar_one()
                if hits:
                    found.append(f"{schema}.{table}.{column}")
    finally:
        engine.dispose()
    return found


def _search(base_url: str, n: int, cleanup: list[str]) -> str:
    patient = _post(
        base_url,
        "/api/v2/patients",
        {
            "first_name": "Erika",
            "last_name": f"Wartend{n}",
            "postcode": POSTCODE,
            "birth_date": "1985-06-01",
            "gender": "female",
            "symptoms": ["depression"],
            "max_travel_km": 10,
        },
    )
    assert patient.status_code == 201, patient.text
    patient_id = patient.json()["id"]

    def create() -> requests.Response | None:
        response = _post(base_url, "/api/v2/patient-searches", {"patient_id": patient_id})
        return None if response.status_code == 404 else response  # the read model is a moment behind

    created = eventually(create, timeout_s=90)
    assert created is not None and created.status_code == 201, created.text if created else "never known"
    cleanup.append(created.json()["id"])
    return str(created.json()["id"])


def test_an_erased_therapist_disappears_from_every_service(base_url: str) -> None:
    token = uuid.uuid4().hex[:8]
    last_name = f"Löschkanarie{token}"
    email = f"kanarie-{token}@praxis-e2e.example.de"
    digits = "".join(random.choice("0123456789") for _ in range(7))
    phone = f"0391 {digits}"
    created = _post(
        base_url,
        "/api/v2/therapists",
        {
            "first_name": "Kanarie",
            "last_name": last_name,
            "postcode": POSTCODE,
            "email": email,
            "phone": phone,
            "procedures": ["VT", "TP"],
        },
    )
    assert created.status_code == 201, created.text
    therapist_id = created.json()["id"]
    searches: list[str] = []
    try:
        for n in range(3):
            _search(base_url, n, searches)

        def known() -> bool:
            response = _post(
                base_url, "/api/v2/bundles/create", {"dry_run": True, "therapist_ids": [therapist_id]}
            )
            return response.status_code == 200 and response.json()["therapists_considered"] >= 1

        assert eventually(known, timeout_s=90), "the therapist never reached the matching read model"
        round_ = _post(
            base_url, "/api/v2/bundles/create", {"therapist_ids": [therapist_id], "send_immediately": True}
        )
        assert round_.status_code == 201, round_.text
        [bundle] = round_.json()["bundles"]
        bundle_id = bundle["bundle_id"]

        def inquiry_written() -> bool:
            response = STAFF.get(f"{base_url}/api/v2/therapists/{therapist_id}/communications", timeout=30)
            return response.status_code == 200 and email in response.text

        assert eventually(inquiry_written, timeout_s=120), "no inquiry email to the therapist was written"
        assert _findings([last_name, email]), "the scan cannot see the therapist before the erasure"

        assert _erase(base_url, therapist_id, STAFF).status_code == 403  # admin only
        erased = _erase(base_url, therapist_id)
        assert erased.status_code == 200 and erased.json()["erased_now"] is True, erased.text

        # Positive signals that both consumers ran: the bundle closed (matching), the history
        # no longer shows the address (communication).
        def bundle_closed() -> bool:
            response = STAFF.get(f"{base_url}/api/v2/bundles/{bundle_id}", timeout=30)
            return response.status_code == 200 and response.json()["status"] == "expired"

        def history_scrubbed() -> bool:
            response = STAFF.get(f"{base_url}/api/v2/therapists/{therapist_id}/communications", timeout=30)
            return email not in response.text  # 200 with the scrubbed rows, or 404 once unknown

        assert eventually(bundle_closed, timeout_s=120), "the therapist's bundle was not closed"
        assert eventually(history_scrubbed, timeout_s=120), "the communication history still names them"
        closed = STAFF.get(f"{base_url}/api/v2/bundles/{bundle_id}", timeout=30).json()
        assert {member["status"] for member in closed["members"]} == {"withdrawn"}

        assert _findings([last_name, email, phone, f"0391{digits}"]) == []
        assert STAFF.get(f"{base_url}/api/v2/therapists/{therapist_id}", timeout=30).status_code == 404
        again = _erase(base_url, therapist_id)
        assert again.status_code == 200 and again.json()["erased_now"] is False
        unknown = _erase(base_url, str(uuid.uuid4()))
        assert unknown.status_code == 404
    finally:
        for search_id in searches:  # leave nothing active for later runs
            STAFF.patch(
                f"{base_url}/api/v2/patient-searches/{search_id}",
                json={"status": "cancelled"},
                headers={"If-Match": "*"},
                timeout=30,
            )
