"""Self-registration over Kafka through the deployed stack (docs/registration-intake.md): a
record signed with the deployed key, produced to `patient-registrations` on Tansu, is delivered by
the local event-source stand-in to RegistrationIntakeFunction and becomes a patient with a German
confirmation email in the Maildir; the same record again creates nothing new; a forged one creates
nothing and staff see it parked. The flag `self_registration_intake` is switched on for the test
(SSM, read at once locally) and the deployed document put back afterwards."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from cloud_support import ApiCaller, eventually
from localcloud import kafka_source, smtp, stack
from localcloud.aws import client
from localcloud.registrations import publish, signed_record, signing_key

pytestmark = pytest.mark.e2e

STAFF = ApiCaller("staff", user="e2e-intake-staff@praxisvermittlung.example.de")
PARAMETER = "/therapy-platform/local/feature-flags"
SAMPLE = Path(__file__).resolve().parents[2] / "events" / "registration_intake" / "registration.json"
SUBJECT = "Ihre Anmeldung ist bei uns eingegangen"


@pytest.fixture
def intake_on(deployed: stack.StackInfo) -> Iterator[None]:
    ssm = client("ssm")
    original = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    document = json.loads(original)
    document["self_registration_intake"] = {"default": True}
    ssm.put_parameter(Name=PARAMETER, Value=json.dumps(document), Type="String", Overwrite=True)
    # Started by `localcloud up`; restarted here so it joins the topic as it is now (a stand-in
    # that lived through earlier tests' topic declarations may hold a stale fetch position).
    kafka_source.stop()
    kafka_source.start()
    yield
    ssm.put_parameter(Name=PARAMETER, Value=original, Type="String", Overwrite=True)


def _registration(last_name: str, email: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    document["registration_id"] = str(uuid.uuid4())
    document["patient"] |= {"last_name": last_name, "email": email}
    return document


def _patients(base_url: str, last_name: str) -> list[dict[str, Any]]:
    answer = STAFF.get(f"{base_url}/api/v2/patients", params={"q": last_name}, timeout=60)
    assert answer.status_code == 200, answer.text
    return [p for p in answer.json()["items"] if p["last_name"] == last_name]


def _mails_to(address: str) -> list[EmailMessage]:
    return [m for m in smtp.read_messages() if address in str(m.get("To", ""))]


def _parked(base_url: str, registration_id: str) -> list[dict[str, Any]]:
    answer = STAFF.get(f"{base_url}/api/v2/registration-intake/parked", params={"limit": 200}, timeout=60)
    assert answer.status_code == 200, answer.text
    return [item for item in answer.json()["items"] if item["registration_id"] == registration_id]


def test_a_signed_registration_becomes_a_patient_once_and_a_forged_one_is_parked(
    base_url: str, intake_on: None
) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, address = f"Selbstanmeldung{suffix}", f"anmeldung-{suffix}@example.org"
    document = _registration(name, address)
    record = signed_record(document, signing_key())
    partition, _ = publish(record)

    [patient] = eventually(lambda: _patients(base_url, name), timeout_s=120)
    assert patient["status"] == "open" and patient["email"] == address
    [mail] = eventually(lambda: _mails_to(address), timeout_s=120)
    assert mail["Subject"] == SUBJECT

    # The same record again, then a forged one behind it on the same partition: once the forged
    # one is parked, the replay before it has been taken in too.
    publish(record, partition=partition)
    forged_name, forged_address = f"Gefaelscht{suffix}", f"gefaelscht-{suffix}@example.org"
    forged_document = _registration(forged_name, forged_address)
    publish(signed_record(forged_document, b"not-the-deployed-key"), partition=partition)

    [parked] = eventually(lambda: _parked(base_url, forged_document["registration_id"]), timeout_s=120)
    assert parked["reason"] == "bad_signature" and parked["topic"] == "patient-registrations"
    assert forged_name not in json.dumps(parked) and forged_address not in json.dumps(parked)
    assert _patients(base_url, forged_name) == []
    assert len(_patients(base_url, name)) == 1
    assert len(_mails_to(address)) == 1 and _mails_to(forged_address) == []


def test_parked_registrations_are_for_staff_only(base_url: str, deployed: stack.StackInfo) -> None:
    auditor = ApiCaller("auditor", user="e2e-intake-auditor@praxisvermittlung.example.de")
    answer = auditor.get(f"{base_url}/api/v2/registration-intake/parked", timeout=60)
    assert answer.status_code == 403 and answer.json()["required_role"] == "staff"
