"""The Kafka bridge on the consumer runtime against the real broker (Tansu) and real SQS (LocalStack):
events reach their topic; poison reaches the dead-letter queue with its reason; when the broker
is unreachable every message is offered again only after its backoff. The declared topics apply
to the broker as KafkaTopicsFunction applies them (create, set differing configs, idempotent)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cloud_support import consume_until
from localcloud import kafka
from localcloud.aws import client
from therapy_platform.platform.kafka import KafkaEventSink, KafkaTopicAdmin
from therapy_platform.platform.kafka_bridge import kafka_bridge_consumer
from therapy_platform.platform.kafka_topics import TOPICS, KafkaTopic, apply_topics
from therapy_platform.platform.settings import KafkaSettings
from therapy_platform.platform.sqs import SqsQueueAdapter

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "kafka_bridge" / "sqs_batch.json"


@pytest.fixture
def queues(localstack_server: None) -> Iterator[tuple[str, str, str]]:
    """A throwaway queue and its dead-letter queue: (queue url, queue arn, dead-letter queue url)."""
    sqs = client("sqs")
    suffix = uuid.uuid4().hex[:8]
    dead_letter_url = sqs.create_queue(QueueName=f"test-bridge-dlq-{suffix}")["QueueUrl"]
    queue_url = sqs.create_queue(QueueName=f"test-bridge-{suffix}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    yield queue_url, arn, dead_letter_url
    sqs.delete_queue(QueueUrl=queue_url)
    sqs.delete_queue(QueueUrl=dead_letter_url)


def _bus_body(event_id: str) -> str:
    body = json.loads(json.loads(SAMPLE.read_text())["Records"][0]["body"])
    body["detail"]["envelope"]["eventId"] = event_id
    return json.dumps(body)


def _delivered_batch(queue_url: str, arn: str, bodies: list[str]) -> dict[str, Any]:
    """Sends the bodies and receives them back as the event-source mapping would hand them over."""
    sqs = client("sqs")
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    records: list[dict[str, Any]] = []
    while len(records) < len(bodies):
        for message in sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", []):
            records.append(
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message["Attributes"],
                    "eventSourceARN": arn,
                }
            )
    return {"Records": records}


def test_events_reach_their_topic_and_poison_the_dead_letter_queue(
    kafka_server: None, queues: tuple[str, str, str]
) -> None:
    queue_url, arn, dead_letter_url = queues
    event_id = str(uuid.uuid4())
    sink = KafkaEventSink(KafkaSettings(KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers()))
    bridge = kafka_bridge_consumer(
        lambda: sink, queues=lambda: SqsQueueAdapter(client("sqs")), dead_letter_queue_url=dead_letter_url
    )
    batch = _delivered_batch(queue_url, arn, [_bus_body(event_id), "this is not an event"])
    assert bridge.handle(batch) == {"batchItemFailures": []}

    assert event_id in consume_until("patient-events", lambda seen: event_id in seen, timeout_s=60)
    [dead] = client("sqs").receive_message(
        QueueUrl=dead_letter_url, MessageAttributeNames=["All"], WaitTimeSeconds=2
    )["Messages"]
    assert dead["Body"] == "this is not an event"
    assert dead["MessageAttributes"]["dead_letter_reason"]["StringValue"].startswith("body is not JSON")


def test_an_unreachable_broker_sends_every_message_back_after_its_backoff(
    queues: tuple[str, str, str],
) -> None:
    queue_url, arn, dead_letter_url = queues
    unreachable = KafkaEventSink(
        KafkaSettings(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9", KAFKA_REQUEST_TIMEOUT_MS=1000)
    )
    bridge = kafka_bridge_consumer(
        lambda: unreachable,
        queues=lambda: SqsQueueAdapter(client("sqs")),
        dead_letter_queue_url=dead_letter_url,
    )
    batch = _delivered_batch(queue_url, arn, [_bus_body(str(uuid.uuid4())), _bus_body(str(uuid.uuid4()))])
    response = bridge.handle(batch)
    assert sorted(item["itemIdentifier"] for item in response["batchItemFailures"]) == sorted(
        record["messageId"] for record in batch["Records"]
    )
    # The backoff (2 s for a first delivery) keeps them invisible a little longer than the
    # queue's default would have, then SQS offers them again; nothing went to the DLQ.
    sqs = client("sqs")
    assert sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []) == []
    again = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=5).get(
        "Messages", []
    )
    assert {message["Body"] for message in again} <= {record["body"] for record in batch["Records"]}
    assert again, "the messages came back after their backoff"
    assert sqs.receive_message(QueueUrl=dead_letter_url).get("Messages", []) == []


@pytest.fixture
def declared_topics(kafka_server: None) -> Iterator[list[KafkaTopic]]:
    """The project's declarations under throwaway names (the shared broker's topics stay as they
    are); deleted afterwards."""
    suffix = uuid.uuid4().hex[:8]
    topics = [replace(topic, name=f"test-{suffix}-{topic.name}") for topic in TOPICS]
    yield topics
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers(), client_id="test-cleanup")
    try:
        admin.delete_topics([topic.name for topic in topics], raise_errors=False)
    finally:
        admin.close()


def _configs(name: str) -> dict[str, str]:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers(), client_id="test-describe")
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all"
        )
    finally:
        admin.close()
    return {key: str(entry["value"]) for key, entry in described["topic"][name].items()}


def test_the_declared_topics_apply_to_the_broker_idempotently(declared_topics: list[KafkaTopic]) -> None:
    admin = KafkaTopicAdmin(KafkaSettings(KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers()))
    first = apply_topics(admin, declared_topics)
    assert set(first.created) == {topic.name for topic in declared_topics}
    assert first.reconfigured == {} and first.warnings == ()
    for topic in declared_topics:
        assert {key: _configs(topic.name).get(key) for key in topic.configs()} == topic.configs()
        assert admin.existing([topic.name])[topic.name].partitions == topic.partitions

    again = apply_topics(admin, declared_topics)
    assert again.created == () and again.reconfigured == {}
    assert set(again.unchanged) == {topic.name for topic in declared_topics}

    # Someone changes a retention by hand: the next apply sets exactly that config back.
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    drifted = declared_topics[0]
    raw = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers(), client_id="test-drift")
    try:
        raw.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, drifted.name, {"retention.ms": "1000"})],
            raise_on_unknown=False,
            incremental=True,
        )
    finally:
        raw.close()
    assert _configs(drifted.name)["retention.ms"] == "1000"
    fixed = apply_topics(admin, declared_topics)
    assert fixed.reconfigured == {drifted.name: {"retention.ms": drifted.configs()["retention.ms"]}}
    assert _configs(drifted.name)["retention.ms"] == drifted.configs()["retention.ms"]


def test_a_topic_with_other_partitions_is_reported_and_left_alone(declared_topics: list[KafkaTopic]) -> None:
    topic = declared_topics[1]
    assert kafka.create_topics([topic.name], partitions=1) == [topic.name]  # as localcloud used to
    admin = KafkaTopicAdmin(KafkaSettings(KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers()))
    report = apply_topics(admin, [topic])
    assert report.reconfigured == {topic.name: topic.configs()}  # it had none
    [warning] = report.warnings
    assert warning.startswith(f"{topic.name} has 1 partitions, {topic.partitions} are declared")
    assert admin.existing([topic.name])[topic.name].partitions == 1


def test_the_bridge_writes_every_key_to_a_declared_topic_with_several_partitions(
    declared_topics: list[KafkaTopic],
) -> None:
    topic = declared_topics[0]
    settings = KafkaSettings(KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers())
    apply_topics(KafkaTopicAdmin(settings), [topic])
    assert topic.partitions > 1
    events = [(f"p-{n}", str(uuid.uuid4())) for n in range(12)]
    values = [json.dumps({"eventId": event_id, "n": n}).encode() for n, (_, event_id) in enumerate(events)]
    sink = KafkaEventSink(settings)
    try:
        assert sink.send_all(
            [(topic.name, key, value) for (key, _), value in zip(events, values, strict=True)]
        ) == [None] * len(events)
    finally:
        sink.reset()
    seen = consume_until(topic.name, lambda seen: len(seen) == len(events), timeout_s=60)
    assert {event_id: entry["key"] for event_id, entry in seen.items()} == {
        event_id: key for key, event_id in events
    }


def test_an_erasure_reaches_the_patient_topic_followed_by_its_tombstone(
    kafka_server: None, queues: tuple[str, str, str]
) -> None:
    """Issue 12: `patient.deleted`, then a null-value record keyed by the patient id, on the real
    broker (the patient topic is compacted by that key: platform/kafka_topics.py)."""
    queue_url, arn, dead_letter_url = queues
    patient_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = json.loads(_bus_body(event_id))
    body["detail-type"] = "patient.deleted"
    body["detail"]["key"] = patient_id
    body["detail"]["envelope"].update(
        eventType="patient.deleted", payload={"id": patient_id, "erased_at": "2026-12-06T00:00:00Z"}
    )
    sink = KafkaEventSink(KafkaSettings(KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers()))
    bridge = kafka_bridge_consumer(
        lambda: sink, queues=lambda: SqsQueueAdapter(client("sqs")), dead_letter_queue_url=dead_letter_url
    )
    assert bridge.handle(_delivered_batch(queue_url, arn, [json.dumps(body)])) == {"batchItemFailures": []}
    seen = consume_until(
        "patient-events",
        lambda seen: any(e["key"] == patient_id and e["envelope"] is None for e in seen.values()),
        timeout_s=60,
        tombstones=True,
    )
    mine = [e for e in seen.values() if e["key"] == patient_id]
    assert mine[0]["envelope"]["eventId"] == event_id and mine[-1]["envelope"] is None
