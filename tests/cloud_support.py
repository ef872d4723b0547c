"""Helpers for tests that talk to the running local cloud (SQS queues, Kafka topics, the API with
a bearer token of the local identity provider)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from localcloud import kafka
from localcloud.aws import client
from localcloud.identity import BearerSession as ApiCaller

__all__ = ["ApiCaller", "consume_until", "drain_queue", "eventually", "start_search_for_new_patient"]


def eventually(probe: Callable[[], Any], *, timeout_s: float = 90, every: float = 1.0) -> Any:
    """Ask `probe` until it answers something truthy or the time is up; returns its last answer
    (the caller asserts on it, so a timeout fails with what was last seen)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def start_search_for_new_patient(base_url: str, caller: ApiCaller, patient: dict[str, Any]) -> str:
    """Register `patient` through the API and start their search once the matching read model
    knows them (a moment after registration); returns the search id."""
    registered = caller.post(f"{base_url}/api/v2/patients", json=patient, timeout=60)
    assert registered.status_code == 201, registered.text
    patient_id = registered.json()["id"]

    def start() -> Any:
        response = caller.post(
            f"{base_url}/api/v2/patient-searches", json={"patient_id": patient_id}, timeout=60
        )
        return None if response.status_code == 404 else response  # the read model is a moment behind

    created = eventually(start)
    assert created is not None and created.status_code == 201, created.text if created else "never known"
    return str(created.json()["id"])


def drain_queue(queue_url: str, expected: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Receive (and delete) messages until `expected` arrived or the time is up."""
    sqs = client("sqs")
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < expected and time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def consume_until(
    topic: str,
    done: Callable[[dict[str, dict[str, Any]]], bool],
    timeout_s: float,
    *,
    tombstones: bool = False,
) -> dict[str, dict[str, Any]]:
    """Read `topic` from the beginning; returns {eventId: {key, envelope}} once done() holds.
    Tombstones (null values, written after an erasure) are skipped, or with `tombstones` kept
    as {"tombstone:<key>:<partition>:<offset>": {key, envelope: None}}."""
    from kafka import KafkaConsumer, TopicPartition

    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    consumer = None
    try:
        while time.monotonic() < deadline and not done(seen):
            if consumer is None:
                try:
                    consumer = KafkaConsumer(
                        bootstrap_servers=kafka.bootstrap_servers(), enable_auto_commit=False
                    )
                    partitions = consumer.partitions_for_topic(topic) or {0}
                    assigned = [TopicPartition(topic, p) for p in partitions]
                    consumer.assign(assigned)
                    consumer.seek_to_beginning(*assigned)
                except Exception:  # broker just restarted: try again shortly
                    consumer = None
                    time.sleep(1)
                    continue
            for batch in consumer.poll(timeout_ms=1000).values():
                for record in batch:
                    if record.value is None:
                        if tombstones:
                            name = f"tombstone:{record.key.decode()}:{record.partition}:{record.offset}"
                            seen[name] = {"key": record.key.decode(), "envelope": None}
                        continue
                    envelope = json.loads(record.value)
                    seen[envelope["eventId"]] = {"key": record.key.decode(), "envelope": envelope}
    finally:
        if consumer is not None:
            consumer.close()
    return seen
