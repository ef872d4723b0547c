from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fakes import FakeKafka
from therapy_platform.platform.events import BusMessage, new_envelope
from therapy_platform.platform.kafka_bridge import QueuedEvent, bridge_batch, retry_delay_seconds

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _queued(message_id: str, event_type: str = "patient.created", key: str = "p-1") -> QueuedEvent:
    envelope = new_envelope(event_type, "patient-service", {"id": key})
    detail = BusMessage(key=key, envelope=envelope).model_dump(mode="json", by_alias=True)
    return QueuedEvent(message_id, json.dumps({"detail-type": event_type, "detail": detail}))


def test_events_go_to_their_topic_keyed_by_entity_id() -> None:
    kafka = FakeKafka()
    report = bridge_batch([_queued("m1", key="p-1"), _queued("m2", "therapist.blocked", key="t-9")], kafka)
    assert report.delivered == ["m1", "m2"] and not report.retry and not report.poison
    key, value = kafka.topics["patient-events"][0]
    assert key == "p-1"
    assert set(json.loads(value)) == {"eventId", "eventType", "version", "timestamp", "producer", "payload"}
    assert kafka.topics["therapist-events"][0][0] == "t-9"


def test_the_sample_event_from_events_folder_bridges() -> None:
    sample = json.loads((EVENTS / "kafka_bridge" / "sqs_batch.json").read_text())["Records"][0]
    report = bridge_batch([QueuedEvent(sample["messageId"], sample["body"])], FakeKafka())
    assert report.delivered == [sample["messageId"]]


def test_poison_messages_are_named_with_a_reason_and_do_not_block_the_rest() -> None:
    kafka = FakeKafka()
    bad = [
        QueuedEvent("not-json", "{oops"),
        QueuedEvent("no-detail", json.dumps({"detail-type": "x"})),
        QueuedEvent(
            "bad-envelope", json.dumps({"detail": {"key": "k", "envelope": {"eventType": "patient.created"}}})
        ),
        _queued("unknown-type", "invoice.paid"),
    ]
    report = bridge_batch([*bad, _queued("good")], kafka)
    assert report.delivered == ["good"]
    reasons = dict(report.poison)
    assert set(reasons) == {"not-json", "no-detail", "bad-envelope", "unknown-type"}
    assert "not JSON" in reasons["not-json"]
    assert "eventId" in reasons["bad-envelope"]
    assert "invoice.paid" in reasons["unknown-type"]


def test_broker_down_means_retry_not_poison() -> None:
    kafka = FakeKafka()
    kafka.down = True
    report = bridge_batch([_queued("m1"), _queued("m2")], kafka)
    assert [message_id for message_id, _ in report.retry] == ["m1", "m2"]
    assert not report.delivered and not report.poison


@given(
    receive_count=st.integers(min_value=1, max_value=10_000), base=st.integers(1, 60), cap=st.integers(1, 900)
)
def test_retry_delay_grows_and_never_exceeds_the_cap(receive_count: int, base: int, cap: int) -> None:
    delay = retry_delay_seconds(receive_count, base=base, cap=cap)
    assert 1 <= delay <= max(cap, 1)
    assert delay <= retry_delay_seconds(receive_count + 1, base=base, cap=cap)
    if receive_count == 1:
        assert delay == min(base, cap)
