"""Self-registration over Kafka (patients/registration_intake.py, domain/registration.py,
platform/kafka_records.py): signed records become patients once per registration id; forged,
unsigned, malformed or invalid records are parked without their content; the flag pauses the
intake; the Lambda Kafka event shape is read and written the same way; the handler end to end."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from fakes import FakeBus, InMemoryDatabase, patient_service
from support import FakeLambdaContext, load_function
from therapy_platform.patients.domain.patient import PatientStatus
from therapy_platform.patients.domain.registration import (
    ParkedRegistration,
    ParkReason,
    Rejection,
    fingerprint,
    read_registration,
    signature_of,
)
from therapy_platform.patients.registration_intake import INTAKE_ACTOR, IntakeStatus, take_in_registration
from therapy_platform.platform.feature_flags import FixedFlags
from therapy_platform.platform.kafka_records import (
    KafkaEventError,
    KafkaRecord,
    lambda_kafka_event,
    records_of,
)
from therapy_platform.platform.metrics import RecordingMetrics

NOW = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
SECRET = b"local-registration-secret"
TOPIC = "patient-registrations"
CANARY = "Kanarienvogel"  # a last name that must never reach a parked record or a log


class MemoryParked:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, int, int], ParkedRegistration] = {}

    def park(self, parked: ParkedRegistration) -> bool:
        position = (parked.topic, parked.partition, parked.offset)
        if position in self.rows:
            return False
        self.rows[position] = parked
        return True

    def recent(self, *, limit: int, offset: int) -> tuple[list[ParkedRegistration], int]:
        rows = sorted(self.rows.values(), key=lambda row: row.parked_at, reverse=True)
        return rows[offset : offset + limit], len(rows)


def registration(registration_id: uuid.UUID | None = None, **patient: Any) -> dict[str, Any]:
    return {
        "registration_id": str(registration_id or uuid.uuid4()),
        "submitted_at": "2026-12-06T10:15:00+01:00",
        "patient": {
            "first_name": "Änne",
            "last_name": CANARY,
            "postcode": "10115",
            "email": "aenne@example.org",
            "symptoms": ["panic"],
            **patient,
        },
    }


def record(
    document: dict[str, Any] | bytes,
    *,
    offset: int = 0,
    secret: bytes | None = SECRET,
    signature: bytes | None = None,
) -> KafkaRecord:
    value = document if isinstance(document, bytes) else json.dumps(document).encode()
    headers: tuple[tuple[str, bytes], ...] = ()
    if signature is not None:
        headers = (("signature", signature),)
    elif secret is not None:
        headers = (("signature", signature_of(secret, value).encode()),)
    key = str(document["registration_id"]).encode() if isinstance(document, dict) else None
    return KafkaRecord(TOPIC, 0, offset, 1_765_000_000_000, value, key, headers)


class World:
    def __init__(self, *, enabled: bool = True) -> None:
        self.database, self.bus, self.parked = InMemoryDatabase(), FakeBus(), MemoryParked()
        self.service = patient_service(self.database, bus=self.bus, clock=lambda: NOW)
        self.enabled = enabled

    def take(self, kafka_record: KafkaRecord) -> Any:
        return take_in_registration(
            self.service, self.parked, kafka_record, secret=SECRET, intake_enabled=lambda: self.enabled
        )

    def published(self, event_type: str) -> list[dict[str, Any]]:
        return [m.envelope.payload for m in self.bus.messages if m.envelope.event_type == event_type]


# ---------------------------------------------------------------- domain


def test_a_signed_registration_reads_as_the_patient_draft() -> None:
    document = registration()
    value = json.dumps(document).encode()
    read = read_registration(value, signature=signature_of(SECRET, value).encode(), key=None, secret=SECRET)
    assert not isinstance(read, Rejection)
    assert str(read.registration_id) == document["registration_id"]
    assert read.patient.last_name == CANARY


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, ParkReason.UNSIGNED),
        (b"sha256=" + b"0" * 64, ParkReason.BAD_SIGNATURE),
        (b"not-a-signature", ParkReason.BAD_SIGNATURE),
    ],
)
def test_unsigned_or_forged_values_are_not_read(signature: bytes | None, reason: ParkReason) -> None:
    read = read_registration(b"{}", signature=signature, key=None, secret=SECRET)
    assert read == Rejection(reason)


def test_a_value_signed_with_another_secret_or_altered_is_forged() -> None:
    value = json.dumps(registration()).encode()
    other = read_registration(
        value, signature=signature_of(b"other", value).encode(), key=None, secret=SECRET
    )
    altered = read_registration(
        value.replace(b"10115", b"10117"),
        signature=signature_of(SECRET, value).encode(),
        key=None,
        secret=SECRET,
    )
    assert isinstance(other, Rejection) and other.reason is ParkReason.BAD_SIGNATURE
    assert isinstance(altered, Rejection) and altered.reason is ParkReason.BAD_SIGNATURE


def test_invalid_fields_are_named_by_path_and_code_without_values() -> None:
    document = registration(postcode="1011", email="kein-at")
    value = json.dumps(document).encode()
    read = read_registration(value, signature=signature_of(SECRET, value).encode(), key=None, secret=SECRET)
    assert isinstance(read, Rejection) and read.reason is ParkReason.INVALID
    assert str(read.registration_id) == document["registration_id"]
    assert {problem.split(":")[0] for problem in read.problems} == {"patient.postcode", "patient.email"}
    assert all("1011" not in p and "kein-at" not in p for p in read.problems)


@pytest.mark.parametrize("value", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_signed_values_that_are_no_json_object_are_malformed(value: bytes) -> None:
    read = read_registration(value, signature=signature_of(SECRET, value).encode(), key=None, secret=SECRET)
    assert isinstance(read, Rejection) and read.reason is ParkReason.MALFORMED


# ---------------------------------------------------------------- use case


def test_a_signed_registration_becomes_an_open_patient_with_its_events() -> None:
    world = World()
    document = registration()
    result = world.take(record(document)).value
    assert result.status is IntakeStatus.CREATED
    patient = world.database.patients[result.patient_id]
    assert (patient.status, patient.last_name) == (PatientStatus.OPEN, CANARY)
    assert world.database.patient_audit[-1].actor == INTAKE_ACTOR
    [created] = world.published("patient.created")
    [registered] = world.published("patient.self_registered")
    assert created["id"] == registered["id"] == str(patient.id)
    assert registered["registration_id"] == document["registration_id"]
    assert CANARY not in json.dumps(registered) and "aenne@" not in json.dumps(registered)
    assert world.parked.rows == {}


def test_a_replayed_registration_creates_nothing_new() -> None:
    world = World()
    document = registration()
    first = world.take(record(document, offset=0)).value
    again = world.take(record(document, offset=7)).value  # the website sent it twice
    assert again.status is IntakeStatus.REPLAYED and again.patient_id is None
    assert list(world.database.patients) == [first.patient_id]
    assert len(world.published("patient.self_registered")) == 1


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"secret": b"forger"}, ParkReason.BAD_SIGNATURE),
        ({"secret": None}, ParkReason.UNSIGNED),
    ],
)
def test_a_forged_or_unsigned_registration_is_parked_without_its_content(
    kwargs: dict[str, Any], reason: ParkReason
) -> None:
    world = World()
    document = registration()
    forged = record(document, offset=3, **kwargs)
    result = world.take(forged).value
    assert (result.status, result.reason) == (IntakeStatus.PARKED, reason)
    assert world.database.patients == {} and world.bus.messages == []
    [parked] = world.parked.rows.values()
    assert (parked.reason, parked.topic, parked.partition, parked.offset) == (reason, TOPIC, 0, 3)
    assert parked.value_sha256 == fingerprint(forged.value)
    assert str(parked.registration_id) == document["registration_id"]  # from the key, unverified
    assert CANARY not in parked.model_dump_json()


def test_an_invalid_registration_is_parked_once_with_its_fields() -> None:
    world = World()
    invalid = record(registration(postcode="abc"), offset=4)
    world.take(invalid)
    world.take(invalid)  # the event source delivers the batch again
    [parked] = world.parked.rows.values()
    assert parked.reason is ParkReason.INVALID and parked.problems == ("patient.postcode: pattern_mismatch",)
    assert world.database.patients == {}


def test_with_the_flag_off_valid_registrations_are_parked_as_paused_and_can_come_again() -> None:
    world = World(enabled=False)
    document = registration()
    paused = world.take(record(document, offset=1)).value
    assert (paused.status, paused.reason) == (IntakeStatus.PARKED, ParkReason.INTAKE_PAUSED)
    assert world.database.patients == {}
    world.enabled = True
    again = world.take(record(document, offset=2)).value  # the website sends it again
    assert again.status is IntakeStatus.CREATED


# ---------------------------------------------------------------- the Lambda event shape


def test_the_kafka_event_is_written_and_read_in_lambdas_shape() -> None:
    records = [
        KafkaRecord(TOPIC, 0, 5, 1_765_000_000_000, b'{"a": 1}', b"key", (("signature", b"sha256=ab"),)),
        KafkaRecord(TOPIC, 1, 9, 1_765_000_000_001, None, None, ()),
    ]
    event = lambda_kafka_event(records, bootstrap_servers="127.0.0.1:19092")
    assert event["eventSource"] == "SelfManagedKafka"
    assert set(event["records"]) == {f"{TOPIC}-0", f"{TOPIC}-1"}
    first = event["records"][f"{TOPIC}-0"][0]
    assert first["value"] == "eyJhIjogMX0=" and first["headers"] == [{"signature": list(b"sha256=ab")}]
    assert records_of(json.loads(json.dumps(event))) == records


@pytest.mark.parametrize(
    "event",
    [
        {"Records": []},
        {"eventSource": "aws:sqs", "records": {}},
        {
            "eventSource": "SelfManagedKafka",
            "records": {"t-0": [{"topic": "t", "partition": 0, "offset": 1, "value": "%%"}]},
        },
        {"eventSource": "SelfManagedKafka", "records": {"t-0": [{"value": "e30="}]}},
    ],
)
def test_events_of_another_shape_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(KafkaEventError):
        records_of(event)


# ---------------------------------------------------------------- the handler


def test_the_handler_takes_in_a_batch_and_counts_each_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    module = load_function("registration_intake")
    metrics = RecordingMetrics()
    monkeypatch.setattr(module, "service", world.service)
    monkeypatch.setattr(module, "parked", world.parked)
    monkeypatch.setattr(module, "secret", lambda: SECRET)
    monkeypatch.setattr(module, "flags", FixedFlags())
    monkeypatch.setattr(module, "metrics", metrics)
    document = registration()
    batch = [
        record(document, offset=0),
        record(document, offset=1),
        record(registration(), offset=2, secret=b"x"),
    ]
    event = lambda_kafka_event(batch, bootstrap_servers="b:9092")
    answer = module.lambda_handler(event, FakeLambdaContext())
    assert answer == {"records": 3, "created": 1, "replayed": 1, "parked": 1}
    assert (metrics.total("RegistrationsCreated"), metrics.total("RegistrationsParked")) == (1, 1)
    assert len(world.database.patients) == 1


# ---------------------------------------------------------------- the staff route


def test_staff_list_parked_records_and_auditors_may_not(monkeypatch: pytest.MonkeyPatch) -> None:
    from support import AUDITOR, api_event, call

    world = World()
    for offset in range(3):
        world.take(record(registration(), offset=offset, secret=b"forger"))
    module = load_function("patients_api")
    monkeypatch.setattr(module, "parked", world.parked)
    path = "/api/v2/registration-intake/parked"
    status, body = call(module.lambda_handler, api_event("GET", path, query={"limit": "2"}))
    assert status == 200, body
    assert (body["total"], len(body["items"]), body["page"]) == (3, 2, 1) and body["next"] is not None
    assert {item["reason"] for item in body["items"]} == {"bad_signature"}
    assert CANARY not in json.dumps(body)
    denied, problem = call(module.lambda_handler, api_event("GET", path, roles=AUDITOR))
    assert denied == 403 and problem["required_role"] == "staff"
    bad, problem = call(module.lambda_handler, api_event("GET", path, query={"limit": "0"}))
    assert bad == 422 and problem["errors"][0]["field"] == "limit"
