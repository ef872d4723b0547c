"""The self-registration intake against real Tansu Kafka and real PostgreSQL: records produced the
way the website (and `localcloud publish-registration`) produces them are polled by the local
event-source stand-in (infra/localcloud/kafka_source.py), delivered in Lambda's Kafka event shape
to RegistrationIntakeFunction's handler, which stores the patient through the patient service's
role; offsets are committed only after the function succeeded. Each test uses its own topic and
consumer group."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from sqlalchemy import Engine, text

from localcloud import kafka
from localcloud.kafka_source import KafkaEventSource, consumer_for
from localcloud.registrations import publish, signed_record
from support import FakeLambdaContext, load_function, migrate
from therapy_platform.patients.bootstrap import build
from therapy_platform.patients.registration_intake import INTAKE_CONSUMER
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.feature_flags import FixedFlags
from therapy_platform.platform.kafka_records import records_of
from therapy_platform.platform.metrics import RecordingMetrics
from therapy_platform.platform.ports import OutboxRecord, PublishOutcome

pytestmark = pytest.mark.integration

SECRET = b"integration-registration-key"


@dataclass
class RecordingPublisher:
    records: list[OutboxRecord] = field(default_factory=list)

    def publish(self, records: Sequence[OutboxRecord]) -> list[PublishOutcome]:
        self.records.extend(records)
        return [PublishOutcome(record.id) for record in records]


@dataclass
class Intake:
    module: Any
    engine: Engine
    publisher: RecordingPublisher
    topic: str
    metrics: RecordingMetrics

    def deliver(self, event: dict[str, Any]) -> None:
        self.module.lambda_handler(event, FakeLambdaContext())

    def source(self, group: str, deliver: Callable[[dict[str, Any]], None] | None = None) -> KafkaEventSource:
        consumer = consumer_for(kafka.bootstrap_servers(), topic=self.topic, group=group)
        return KafkaEventSource(consumer, deliver or self.deliver, kafka.bootstrap_servers())


def _create_topic(name: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers(), client_id="intake-test")
    try:
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()


@pytest.fixture
def intake(
    monkeypatch: pytest.MonkeyPatch, kafka_server: None, service_url: Callable[[str], str]
) -> Iterator[Intake]:
    from therapy_platform.patients.adapters.parked_registrations import SqlParkedRegistrations

    topic = f"patient-registrations-test-{uuid.uuid4().hex[:8]}"
    _create_topic(topic)
    module = load_function("registration_intake")
    engine = make_engine(service_url("patient_service"))
    publisher = RecordingPublisher()
    metrics = RecordingMetrics()
    monkeypatch.setattr(module, "service", build(engine=lambda: engine, publisher=lambda: publisher))
    monkeypatch.setattr(module, "parked", SqlParkedRegistrations(lambda: engine))
    monkeypatch.setattr(module, "secret", lambda: SECRET)
    monkeypatch.setattr(module, "flags", FixedFlags())
    monkeypatch.setattr(module, "metrics", metrics)
    yield Intake(module, engine, publisher, topic, metrics)
    engine.dispose()


def _registration(last_name: str, **patient: Any) -> dict[str, Any]:
    return {
        "registration_id": str(uuid.uuid4()),
        "submitted_at": "2026-12-06T10:15:00+01:00",
        "patient": {
            "first_name": "Änne",
            "last_name": last_name,
            "postcode": "10115",
            "email": "aenne@example.org",
            "symptoms": ["anxiety"],
            **patient,
        },
    }


def _drain(source: KafkaEventSource, expected: int, timeout_s: float = 60) -> int:
    delivered = 0
    deadline = time.monotonic() + timeout_s
    while delivered < expected and time.monotonic() < deadline:
        delivered += source.poll_once(timeout_ms=1000)
    return delivered


def test_signed_records_become_patients_once_and_forged_ones_are_parked(
    intake: Intake, admin_engine: Engine
) -> None:
    canary = f"Kanarienvogel{uuid.uuid4().hex[:6]}"
    signed = _registration(canary)
    invalid = _registration(canary, postcode="abc")
    records = [
        signed_record(signed, SECRET),
        signed_record(signed, SECRET),  # replayed by the website
        signed_record(_registration(canary), b"forged-key"),
        signed_record(invalid, SECRET),
    ]
    offsets = [publish(replace(record, topic=intake.topic))[1] for record in records]
    group = f"intake-test-{uuid.uuid4().hex[:8]}"
    source = intake.source(group)
    try:
        assert _drain(source, len(records)) == len(records)
        from kafka.structs import TopicPartition

        assert source.consumer.committed(TopicPartition(intake.topic, 0)) == offsets[-1] + 1
    finally:
        source.consumer.close()

    with admin_engine.connect() as connection:
        patients = connection.execute(
            text("SELECT id, status, email FROM patient_service.patients WHERE last_name = :name"),
            {"name": canary},
        ).all()
        claimed = connection.execute(
            text(
                "SELECT count(*) FROM patient_service.processed_events WHERE event_id = :id AND consumer = :c"
            ),
            {"id": signed["registration_id"], "c": INTAKE_CONSUMER},
        ).scalar_one()
        parked = (
            connection.execute(
                text(
                    "SELECT * FROM patient_service.parked_registrations"
                    ' WHERE topic = :topic ORDER BY "offset"'
                ),
                {"topic": intake.topic},
            )
            .mappings()
            .all()
        )
    [patient] = patients
    assert patient.status == "open" and patient.email == "aenne@example.org"
    assert claimed == 1
    assert [(row["reason"], row["offset"]) for row in parked] == [
        ("bad_signature", offsets[2]),
        ("invalid", offsets[3]),
    ]
    assert parked[1]["problems"] == ["patient.postcode: pattern_mismatch"]
    assert str(parked[1]["registration_id"]) == invalid["registration_id"]
    assert all(canary not in str(dict(row)) and "aenne@" not in str(dict(row)) for row in parked)
    published = [(r.message.envelope.event_type, r.message.key) for r in intake.publisher.records]
    assert published == [("patient.created", str(patient.id)), ("patient.self_registered", str(patient.id))]
    assert (intake.metrics.total("RegistrationsCreated"), intake.metrics.total("RegistrationsReplayed")) == (
        1,
        1,
    )
    assert intake.metrics.total("RegistrationsParked") == 2


def test_a_failed_delivery_is_not_committed_and_the_same_records_come_again(intake: Intake) -> None:
    from kafka.structs import TopicPartition

    document = _registration(f"Wiederholung{uuid.uuid4().hex[:6]}")
    _, offset = publish(replace(signed_record(document, SECRET), topic=intake.topic))
    seen: list[list[int]] = []
    failures = [RuntimeError("database unreachable")]

    def flaky(event: dict[str, Any]) -> None:
        seen.append([record.offset for record in records_of(event)])
        if failures:
            raise failures.pop()
        intake.deliver(event)

    group = f"intake-test-{uuid.uuid4().hex[:8]}"
    source = intake.source(group, flaky)
    partition = TopicPartition(intake.topic, 0)
    try:
        deadline = time.monotonic() + 60
        with pytest.raises(RuntimeError, match="database unreachable"):
            while time.monotonic() < deadline:
                source.poll_once(timeout_ms=1000)
        assert source.consumer.committed(partition) is None  # nothing committed for a failed batch
        assert _drain(source, 1) == 1
        assert source.consumer.committed(partition) == offset + 1
    finally:
        source.consumer.close()
    assert seen == [[offset], [offset]]
    assert intake.metrics.total("RegistrationsCreated") == 1


def test_staff_list_parked_records_newest_first_through_the_patient_role(intake: Intake) -> None:
    from therapy_platform.patients.adapters.parked_registrations import SqlParkedRegistrations
    from therapy_platform.patients.registration_intake import list_parked

    canary = f"Kanarienvogel{uuid.uuid4().hex[:6]}"
    for _ in range(3):
        publish(replace(signed_record(_registration(canary), b"forged-key"), topic=intake.topic))
    source = intake.source(f"intake-test-{uuid.uuid4().hex[:8]}")
    try:
        assert _drain(source, 3) == 3
    finally:
        source.consumer.close()
    page = list_parked(SqlParkedRegistrations(lambda: intake.engine), page=1, limit=200).value
    ours = [item for item in page.items if item.topic == intake.topic]
    assert len(ours) == 3 and {item.reason.value for item in ours} == {"bad_signature"}
    assert [item.parked_at for item in page.items] == sorted(
        (item.parked_at for item in page.items), reverse=True
    )
    assert page.total >= 3 and canary not in page.model_dump_json()


def test_migration_0023_reverts_and_applies_again(
    scratch_database: Callable[[str], AbstractContextManager[Engine]],
) -> None:
    from alembic import command

    from runner import upgrade

    with scratch_database("intake_0023") as engine:

        def parked_table() -> bool:
            with engine.connect() as connection:
                return bool(
                    connection.execute(
                        text("SELECT to_regclass('patient_service.parked_registrations')")
                    ).scalar()
                )

        upgrade(engine, "0022_registration_intake")
        assert parked_table()
        migrate(engine, command.downgrade, "0021_encryption")
        assert not parked_table()
        assert upgrade(engine, "0022_registration_intake") == "0022_registration_intake" and parked_table()
