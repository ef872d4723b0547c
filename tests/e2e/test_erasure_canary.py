"""The erasure proof through the deployed local stack (issue 12 item 2, "done when"): a patient
with a unique canary name, email and phone goes through a full flow (search with a staff note,
a staff bundle sent by email, the inquiry and the patient's "search started" email, a reply to
the inquiry naming the patient taken in by the reply intake function, a phone bundle whose
call note names the patient), is erased; once `patient.deleted` has reached matching and
communication, no text or JSON column of any table of any schema and no stored S3 object
holds a canary value (tests/canary_scan.py). What the law requires to keep is listed in
docs/privacy.md#erasure; none of it holds a canary value, so nothing is excepted here.

The local SMTP server's Maildir is not scanned: it stands for the recipients' mailboxes (the
patient received their email; the therapist's mail server sent the reply), which are not the
platform's stores. In AWS the platform keeps reply mails in S3 only, which is scanned; locally
reply intake reads that Maildir, and the erasure deletes the taken-in replies that name the
patient from its `cur/` (tests/integration/test_erasure_everywhere.py proves that part)."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from typing import Any

import pytest
import requests
from canary_scan import Canary, scan_database, scan_objects
from sqlalchemy import Connection, create_engine, text

from cloud_support import ApiCaller, eventually
from localcloud import postgres, smtp, stack
from localcloud.aws import client

pytestmark = pytest.mark.e2e

STAFF = ApiCaller("staff", user="e2e-erasure@praxisvermittlung.example.de")
ADMIN = ApiCaller("admin", user="e2e-erasure-admin@praxisvermittlung.example.de")
POSTCODE = "99084"  # Erfurt: no other e2e test registers people there
MAX_OBJECT_BYTES = 20 * 1024 * 1024


def _post(base_url: str, path: str, body: Any) -> requests.Response:
    return STAFF.post(f"{base_url}{path}", json=body, timeout=60)


def _therapist(base_url: str, **extra: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    body = {
        "first_name": "Tilda",
        "last_name": f"Kanarienpraxis{tag}",
        "postcode": POSTCODE,
        "email": f"praxis-{tag}@example.de",
        "procedures": ["VT", "TP"],
        "phone_windows": {day: ["08:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
        **extra,
    }
    response = _post(base_url, "/api/v2/therapists", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _staff_bundle(base_url: str, therapist_id: str, search_id: str, notes: str) -> dict[str, Any]:
    def built() -> requests.Response | None:
        response = _post(
            base_url,
            f"/api/v2/therapists/{therapist_id}/bundles",
            {"search_ids": [search_id], "send_immediately": True, "notes": notes},
        )
        return None if response.status_code == 404 else response  # the read model is a moment behind

    response = eventually(built, timeout_s=90)
    assert response is not None and response.status_code == 201, response.text if response else "unknown"
    bundle = STAFF.get(f"{base_url}/api/v2/bundles/{response.json()['bundle']['bundle_id']}", timeout=30)
    assert bundle.status_code == 200, bundle.text
    return dict(bundle.json())


def _s3_objects() -> list[tuple[str, bytes]]:
    s3 = client("s3")
    found: list[tuple[str, bytes]] = []
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for item in page.get("Contents", []):
                if item["Size"] <= MAX_OBJECT_BYTES:
                    body = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read()
                    found.append((f"s3://{bucket['Name']}/{item['Key']}", body))
    return found


def _sealed_fields(connection: Connection, patient_id: str) -> dict[str, str]:
    """The patient's encrypted columns that hold a value (email, phone, street, notes)."""
    row = (
        connection.execute(
            text("SELECT email, phone, street, notes FROM patient_service.patients WHERE id = :id"),
            {"id": patient_id},
        )
        .mappings()
        .one()
    )
    return {name: value for name, value in row.items() if value is not None}


def test_an_erased_patient_leaves_no_canary_value_anywhere(deployed: stack.StackInfo, base_url: str) -> None:
    canary = Canary.new()
    engine = create_engine(postgres.admin_url())

    registered = _post(
        base_url,
        "/api/v2/patients",
        {
            "first_name": canary.first_name,
            "last_name": canary.last_name,
            "email": canary.email,
            "phone": canary.phone,
            "postcode": POSTCODE,
            "birth_date": "1990-04-01",
            "gender": "female",
            "symptoms": ["anxiety", "sleep"],
            "max_travel_km": 25,
            "health_insurer": "AOK Plus",
            "notes": f"Rückruf unter {canary.phone}",
        },
    )
    assert registered.status_code == 201, registered.text
    patient_id = registered.json()["id"]

    def search_started() -> requests.Response | None:
        response = _post(
            base_url,
            "/api/v2/patient-searches",
            {"patient_id": patient_id, "notes": f"Frau {canary.last_name} nur vormittags"},
        )
        return None if response.status_code == 404 else response

    search = eventually(search_started, timeout_s=90)
    assert search is not None and search.status_code == 201, search.text if search else "never known"
    search_id = search.json()["id"]

    # A bundle by email: the inquiry reaches the local SMTP server; the therapist replies.
    by_email = _therapist(base_url)
    inquiry_bundle = _staff_bundle(base_url, by_email["id"], search_id, f"für {canary.first_name}")
    reference = inquiry_bundle["reference"]

    def inquiry() -> Any:
        found = [m for m in smtp.read_messages() if f"+{reference}@" in str(m.get("Reply-To", ""))]
        return found[0] if found else None

    message = eventually(inquiry, timeout_s=120)
    assert message is not None, "no inquiry email reached the local SMTP server"
    reply = EmailMessage()
    reply["From"], reply["To"] = by_email["email"], message["Reply-To"]
    reply["Subject"], reply["In-Reply-To"] = f"Re: {message['Subject']}", message["Message-ID"]
    reply.set_content(
        f"Frau {canary.first_name} {canary.last_name} ({canary.email}) kann am Dienstag kommen."
    )
    with smtplib.SMTP("127.0.0.1", smtp.port(), timeout=30) as mail_server:
        mail_server.send_message(reply)
    intake = stack.invoke("ReplyIntakeFunction", {}, info=deployed)
    assert intake.error is None, intake.payload

    # A bundle by phone: the call's note names the patient. (The search was withdrawn from no
    # bundle yet: a search may sit in several open bundles.)
    by_phone = _therapist(base_url, email=None, phone="0361 5550123")
    phone_bundle = _staff_bundle(base_url, by_phone["id"], search_id, "telefonisch")

    def call_task() -> Any:
        response = STAFF.get(
            f"{base_url}/api/v2/phone-calls",
            params={"bundle_reference": phone_bundle["reference"]},
            timeout=30,
        )
        return response.json()["items"] if response.status_code == 200 and response.json()["items"] else None

    calls = eventually(call_task, timeout_s=120)
    assert calls, "no phone-call task for the therapist without email"
    done = _post(
        base_url,
        f"/api/v2/phone-calls/{calls[0]['id']}/complete",
        {"outcome": "reached", "notes": f"Praxis fragt nach {canary.first_name} {canary.last_name}"},
    )
    assert done.status_code == 200, done.text

    with engine.connect() as connection:
        before = scan_database(connection, canary)
        # The sealed fields (docs/privacy.md#encryption) hide the canary from the scan: they are
        # checked by column, stored sealed now and NULL after the erasure.
        sealed_before = _sealed_fields(connection, patient_id)
    assert sealed_before and all(str(value).startswith("enc1:") for value in sealed_before.values()), (
        sealed_before
    )
    assert {hit.where.split(".")[0] for hit in before} >= {"patient_service", "communication_service"}, before

    # Erasure: end the search, erase (the patient's status follows the search a moment later).
    ended = STAFF.patch(
        f"{base_url}/api/v2/patient-searches/{search_id}",
        json={"status": "cancelled"},
        headers={"If-Match": "*"},
        timeout=60,
    )
    assert ended.status_code == 200, ended.text

    def erased() -> requests.Response | None:
        response = ADMIN.delete(f"{base_url}/api/v2/patients/{patient_id}", timeout=60)
        return None if response.status_code == 409 else response

    erasure = eventually(erased, timeout_s=90)
    assert erasure is not None and erasure.status_code == 200, erasure.text if erasure else "still searching"

    # Positive signals that both consumers handled patient.deleted: the matching search's notes
    # are emptied and every email to the patient carries the erased address.
    def consumers_done() -> bool | None:
        with engine.connect() as connection:
            notes = connection.execute(
                text("SELECT notes FROM matching_service.searches WHERE id = :id"), {"id": search_id}
            ).scalar_one()
            recipients = (
                connection.execute(
                    text("SELECT recipient FROM communication_service.emails WHERE recipient_id = :id"),
                    {"id": patient_id},
                )
                .scalars()
                .all()
            )
        return (notes is None and bool(recipients) and set(recipients) == {"geloescht@invalid"}) or None

    assert eventually(consumers_done, timeout_s=120), "patient.deleted did not reach both consumers"

    with engine.connect() as connection:
        left = scan_database(connection, canary)
        sealed_after = _sealed_fields(connection, patient_id)
    engine.dispose()
    assert left == [], left
    assert sealed_after == {}, sealed_after
    assert scan_objects(_s3_objects(), canary) == []
