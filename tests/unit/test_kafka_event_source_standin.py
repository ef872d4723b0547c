"""The local stand-in for Lambda's Kafka event source (infra/localcloud/kafka_source.py) on a
fake consumer: a polled batch goes to the function in Lambda's event shape; offsets are committed
after success only; a failed delivery seeks back so the same records come again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka.structs import TopicPartition

from localcloud.kafka_source import KafkaEventSource
from therapy_platform.platform.kafka_records import records_of


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 1_765_000_000_000
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class FakeConsumer:
    batches: list[dict[TopicPartition, list[Message]]]
    committed: list[dict[TopicPartition, int]] = field(default_factory=list)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Message]]:
        return self.batches.pop(0) if self.batches else {}

    def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.committed.append({partition: meta.offset for partition, meta in offsets.items()})

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))


P0, P1 = TopicPartition("patient-registrations", 0), TopicPartition("patient-registrations", 1)


def batch() -> dict[TopicPartition, list[Message]]:
    return {
        P0: [
            Message("patient-registrations", 0, 4, b"k", b"v4", headers=[("signature", b"sha256=aa")]),
            Message("patient-registrations", 0, 5, b"k", b"v5"),
        ],
        P1: [Message("patient-registrations", 1, 9, None, b"v9")],
    }


def test_a_delivered_batch_is_committed_after_the_function_succeeded() -> None:
    delivered: list[dict[str, Any]] = []
    consumer = FakeConsumer([batch()])
    source = KafkaEventSource(consumer, delivered.append, "127.0.0.1:19092")
    assert source.poll_once() == 3
    [event] = delivered
    assert event["eventSource"] == "SelfManagedKafka" and event["bootstrapServers"] == "127.0.0.1:19092"
    assert set(event["records"]) == {"patient-registrations-0", "patient-registrations-1"}
    records = records_of(event)
    assert [(r.partition, r.offset, r.value) for r in records] == [
        (0, 4, b"v4"),
        (0, 5, b"v5"),
        (1, 9, b"v9"),
    ]
    assert records[0].header("signature") == b"sha256=aa"
    assert consumer.committed == [{P0: 6, P1: 10}] and consumer.seeks == []
    assert source.poll_once() == 0 and len(consumer.committed) == 1  # nothing polled, nothing committed


def test_a_failed_delivery_commits_nothing_and_seeks_back_to_the_first_records() -> None:
    def failing(event: dict[str, Any]) -> None:
        raise RuntimeError("function error: Unhandled")

    consumer = FakeConsumer([batch()])
    source = KafkaEventSource(consumer, failing, "127.0.0.1:19092")
    with pytest.raises(RuntimeError, match="Unhandled"):
        source.poll_once()
    assert consumer.committed == []
    assert sorted(consumer.seeks) == [(P0, 4), (P1, 9)]
