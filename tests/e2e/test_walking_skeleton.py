"""HTTP through LocalStack's API Gateway -> Lambda -> PostgreSQL + outbox -> EventBridge ->
SQS -> Kafka bridge -> Kafka, and the reliability the skeleton must show."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from cloud_support import ApiCaller, consume_until
from localcloud import kafka, stack
from localcloud.aws import client

pytestmark = pytest.mark.e2e

STAFF = ApiCaller("staff", user="e2e-skeleton@praxisvermittlung.example.de")

PATIENT = {
    "first_name": "Jürgen",
    "last_name": "Weiß",
    "postcode": "01067",
    "city": "Dresden",
    "symptoms": ["depression", "sleep"],
}


def _post(base_url: str, body: Any = None, raw: str | None = None) -> requests.Response:
    if raw is not None:
        return STAFF.post(
            f"{base_url}/api/v2/patients", data=raw, headers={"Content-Type": "application/json"}, timeout=60
        )
    return STAFF.post(f"{base_url}/api/v2/patients", json=body, timeout=60)


def test_post_then_get_and_the_event_reaches_kafka(base_url: str) -> None:
    created = _post(base_url, PATIENT)
    assert created.status_code == 201, created.text
    patient = created.json()
    assert patient["last_name"] == "Weiß" and patient["postcode"] == "01067"
    assert created.headers["Location"].endswith(patient["id"])

    read = STAFF.get(f"{base_url}/api/v2/patients/{patient['id']}", timeout=30)
    assert read.status_code == 200 and read.json() == patient

    events = consume_until(
        "patient-events", lambda seen: any(e["key"] == patient["id"] for e in seen.values()), timeout_s=60
    )
    (event,) = [e for e in events.values() if e["key"] == patient["id"]]
    envelope = event["envelope"]
    assert set(envelope) == {"eventId", "eventType", "version", "timestamp", "producer", "payload"}
    assert envelope["eventType"] == "patient.created"
    assert envelope["producer"] == "patient-service"
    assert envelope["payload"]["id"] == patient["id"]
    # Minimal events (docs/events.md): no name, address or contact on Kafka.
    assert envelope["payload"]["postcode"] == "01067" and "last_name" not in envelope["payload"]
    assert not {"Weiß", "Jürgen", "Dresden"} & set(json.dumps(envelope, ensure_ascii=False).split('"'))


def test_an_erased_patient_leaves_a_tombstone_on_the_compacted_patient_topic(base_url: str) -> None:
    """Issue 12: `patient.deleted` then a null-value record keyed by the patient id, so log
    compaction removes the patient's records from `patient-events`."""
    patient = _post(base_url, {**PATIENT, "first_name": "Grabstein"}).json()
    erased = ApiCaller("admin", user="e2e-admin@praxisvermittlung.example.de").delete(
        f"{base_url}/api/v2/patients/{patient['id']}", timeout=30
    )
    assert erased.status_code in (200, 204), erased.text
    records = consume_until(
        "patient-events",
        lambda seen: any(e["key"] == patient["id"] and e["envelope"] is None for e in seen.values()),
        timeout_s=90,
        tombstones=True,
    )
    mine = [e for e in records.values() if e["key"] == patient["id"]]
    assert [e["envelope"]["eventType"] for e in mine if e["envelope"]][-1] == "patient.deleted"
    assert any(e["envelope"] is None for e in mine)


@pytest.mark.parametrize(
    ("raw", "status", "error"),
    [
        ('{"first_name": "A", ', 400, "malformed_json"),
        ('{"first_name": "A", "last_name": "B", "postcode": "1234"}', 422, "validation_failed"),
        ('{"first_name": 5, "last_name": "B", "postcode": "12345"}', 422, "validation_failed"),
        ("[]", 422, "validation_failed"),
    ],
)
def test_bad_input_through_the_gateway_is_4xx_naming_the_problem(
    base_url: str, raw: str, status: int, error: str
) -> None:
    response = _post(base_url, raw=raw)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["status"]) == (error, status)
    assert body["type"].endswith(f"/problems/{error}") and body["title"] and body["detail"]
    if error == "validation_failed":
        assert body["errors"] and all(
            entry["field"] and entry["location"] == "body" and entry["code"] and entry["message"]
            for entry in body["errors"]
        )


def test_unknown_routes_and_patients_are_404(base_url: str) -> None:
    assert STAFF.get(f"{base_url}/api/v2/patients/{uuid.uuid4()}", timeout=30).status_code == 404
    unknown = STAFF.get(f"{base_url}/api/v2/no-such-thing", timeout=30)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["code"] == "route_not_found"


def test_health_reports_database_bus_and_broker(base_url: str) -> None:
    response = requests.get(f"{base_url}/health", timeout=60)  # public: no token
    assert response.status_code == 200, response.text
    components = response.json()["components"]
    assert {name: c["status"] for name, c in components.items()} == {
        "database": "ok",
        "bus": "ok",
        "broker": "ok",
    }


def test_operator_invoke_runs_any_function_with_a_sample_event(deployed: stack.StackInfo) -> None:
    sample = Path(__file__).resolve().parents[2] / "events" / "health_api" / "get_health.json"
    health = stack.invoke("HealthFunction", json.loads(sample.read_text()))
    assert health.error is None and health.payload["statusCode"] == 200
    relay = stack.invoke("PatientOutboxRelayFunction", {"batch_size": 50})
    assert (
        relay.error is None and relay.payload["schema"] == "patient_service" and relay.payload["failed"] == 0
    )


def test_no_event_is_lost_while_the_broker_is_down(base_url: str) -> None:
    kafka.stop()
    try:
        ids = []
        for index in range(100):
            response = _post(base_url, {**PATIENT, "first_name": f"Ausfall{index}"})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    finally:
        kafka.start()
        kafka.create_topics(stack.KAFKA_TOPICS)
    events = consume_until(
        "patient-events", lambda seen: set(ids) <= {e["key"] for e in seen.values()}, timeout_s=240
    )
    keys = [e["key"] for e in events.values() if e["key"] in set(ids)]
    assert set(keys) == set(ids)
    # Duplicates are allowed only as redeliveries of the same event: one eventId per patient here.
    assert len(keys) == len(set(keys))


def test_a_poison_message_ends_in_the_dead_letter_queue(deployed: stack.StackInfo) -> None:
    sqs = client("sqs")
    marker = f"poison-{uuid.uuid4()}"
    sqs.send_message(QueueUrl=deployed.outputs["KafkaBridgeQueueUrl"], MessageBody=marker)
    dead_letter_url = deployed.outputs["KafkaBridgeDeadLetterQueueUrl"]
    deadline = time.monotonic() + 60
    found = None
    while found is None and time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=dead_letter_url, MaxNumberOfMessages=10, WaitTimeSeconds=2, MessageAttributeNames=["All"]
        ).get("Messages", []):
            if message["Body"] == marker:
                found = message
                sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
    assert found is not None, "the poison message never reached the dead-letter queue"
    assert "not JSON" in found["MessageAttributes"]["dead_letter_reason"]["StringValue"]


def test_the_scheduled_relay_publishes_what_the_api_could_not(deployed: stack.StackInfo) -> None:
    """An event committed while the bus was unreachable sits in the outbox; the EventBridge
    schedule (rate 1 minute) runs the relay, and the event reaches Kafka with no one invoking it."""
    from sqlalchemy import create_engine

    from localcloud import postgres
    from therapy_platform.contracts.symptoms import Symptom
    from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
    from therapy_platform.patients.domain.patient import PatientDraft
    from therapy_platform.patients.use_cases import PatientService, register_patient
    from therapy_platform.platform.geography.postcodes import postcode_directory

    engine = create_engine(postgres.admin_url())
    draft = PatientDraft(
        first_name="Verspätet",
        last_name="Schmidt",
        postcode="04109",
        city="Leipzig",
        symptoms=[Symptom.ANXIETY],
    )
    # No after-commit hook: the event stays in the outbox for the scheduled relay.
    service = PatientService(unit_of_work=lambda: SqlPatientUnitOfWork(engine), geocoder=postcode_directory())
    registered = register_patient(service, draft)
    patient, (event,) = registered.value, registered.events
    engine.dispose()
    events = consume_until("patient-events", lambda seen: str(event.event_id) in seen, timeout_s=150)
    assert events[str(event.event_id)]["key"] == str(patient.id)


def test_operator_cli_prints_result_and_logs(
    deployed: stack.StackInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    from localcloud import cli

    assert cli.main(["invoke", "RouteNotFoundFunction", "--event", "route_not_found/unknown_route.json"]) == 0
    printed = capsys.readouterr().out
    # The API answer decoded (status and body), not Lambda's escaped proxy result.
    assert "answer   : HTTP 404 (application/problem+json)" in printed
    assert '"code": "route_not_found"' in printed
    assert "START RequestId" in printed or "END RequestId" in printed or "REPORT RequestId" in printed


def test_a_new_patient_reaches_the_matching_read_model(base_url: str) -> None:
    """Patient service -> outbox -> bus -> rule -> queue -> MatchingReadModelFunction ->
    matching_service.patient_profiles: the matching service learns of patients without reading
    the patient schema."""
    from sqlalchemy import create_engine, text

    from localcloud import postgres

    created = _post(base_url, {**PATIENT, "first_name": "Lesemodell"}).json()
    engine = create_engine(postgres.admin_url())
    deadline = time.monotonic() + 60
    row = None
    while row is None and time.monotonic() < deadline:
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT data FROM matching_service.patient_profiles WHERE id = :id"),
                {"id": created["id"]},
            ).first()
        if row is None:
            time.sleep(1)
    engine.dispose()
    assert row is not None, "the read model never saw the patient"
    # Only what matching needs (docs/events.md): the postcode, not the name.
    assert row.data["postcode"] == PATIENT["postcode"] and "first_name" not in row.data
    assert "Lesemodell" not in json.dumps(row.data)


def test_operators_can_redrive_dead_lettered_events_to_kafka(deployed: stack.StackInfo) -> None:
    """An event that exhausted its retries (e.g. a broker outage of many hours) waits in the
    bridge's DLQ; `localcloud redrive` sends it back through the bridge to Kafka."""
    sample = Path(__file__).resolve().parents[2] / "events" / "kafka_bridge" / "sqs_batch.json"
    body = json.loads(json.loads(sample.read_text())["Records"][0]["body"])
    event_id = str(uuid.uuid4())
    body["detail"]["envelope"]["eventId"] = event_id
    dead_letter_url = deployed.outputs["KafkaBridgeDeadLetterQueueUrl"]
    client("sqs").send_message(QueueUrl=dead_letter_url, MessageBody=json.dumps(body))

    result = stack.redrive(dead_letter_url)
    assert result.moved >= 1
    events = consume_until("patient-events", lambda seen: event_id in seen, timeout_s=60)
    assert event_id in events
