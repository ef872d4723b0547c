"""Tansu broker: metadata, idempotent topic creation, the project's topic declarations applied,
keyed produce/consume in a group, stop/start."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from cloud_fixtures import port_refuses, service_running
from kafka import KafkaConsumer, KafkaProducer

from localcloud import kafka
from localcloud.process import is_alive, read_pid
from localcloud.stack import KAFKA_TOPICS as PROJECT_TOPICS
from therapy_platform.platform.kafka_topics import TOPICS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def running_kafka() -> Iterator[bool]:
    with service_running(kafka) as already_running:
        yield already_running


def unique_topic() -> str:
    return f"lc-test-{uuid.uuid4().hex[:8]}"


def consume_one(topic: str, group: str, timeout_s: float = 30.0) -> list[tuple[bytes | None, bytes]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap_servers(),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **kafka.CONSUMER_DEFAULTS,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=500)
            records = [(r.key, r.value) for batch in batches.values() for r in batch]
            if records:
                consumer.commit()
                return records
        return []
    finally:
        consumer.close()


def test_healthy_and_bootstrap_servers() -> None:
    assert kafka.bootstrap_servers() == f"127.0.0.1:{kafka.port()}"
    assert kafka.is_healthy()


def test_start_is_idempotent() -> None:
    pid = read_pid(kafka.SERVICE)
    kafka.start()
    assert read_pid(kafka.SERVICE) == pid


def test_create_topics_is_idempotent() -> None:
    first, second = unique_topic(), unique_topic()
    assert sorted(kafka.create_topics([first, second, first])) == sorted([first, second])
    assert kafka.create_topics([first, second]) == []
    assert kafka.create_topics([]) == []


def test_produce_and_consume_keyed_message_in_a_group() -> None:
    topic = unique_topic()
    kafka.create_topics([topic])
    event = {"type": "PlaceOffered", "therapistId": "t-42", "city": "Düsseldorf"}
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers(), acks="all")
    try:
        producer.send(topic, key=b"t-42", value=json.dumps(event).encode()).get(timeout=10)
    finally:
        producer.close()

    began = time.monotonic()
    records = consume_one(topic, group=f"lc-group-{uuid.uuid4().hex[:6]}")
    assert time.monotonic() - began < 15, "group join should be quick with the short timeouts"
    assert len(records) == 1
    key, value = records[0]
    assert key == b"t-42"
    assert json.loads(value) == event


def test_stop_and_start_again(running_kafka: bool) -> None:
    pid = read_pid(kafka.SERVICE)
    assert pid is not None
    assert kafka.stop() is True
    assert not is_alive(pid)
    assert read_pid(kafka.SERVICE) is None
    assert not kafka.is_healthy()
    assert port_refuses("127.0.0.1", kafka.port())
    assert kafka.stop() is False

    kafka.start()
    assert kafka.is_healthy()
    topic = unique_topic()
    assert kafka.create_topics([topic]) == [topic]
    # A running stack needs its topics back (Tansu keeps topics in memory only).
    kafka.apply_topic_declarations()
    assert set(kafka.apply_topic_declarations().unchanged) == set(PROJECT_TOPICS)


def test_apply_topic_declarations_creates_then_changes_nothing() -> None:
    topics = [replace(topic, name=unique_topic()) for topic in TOPICS[:2]]
    first = kafka.apply_topic_declarations(topics)
    assert sorted(first.created) == sorted(topic.name for topic in topics)
    again = kafka.apply_topic_declarations(topics)
    assert again.created == () and again.reconfigured == {}
    assert sorted(again.unchanged) == sorted(topic.name for topic in topics)
    admin = kafka._admin(10.0)
    try:
        admin.delete_topics([topic.name for topic in topics], raise_errors=False)
    finally:
        admin.close()
