"""The event-consumer runtime (platform/consumer.py): decoding, dispatch by type, once per eventId,
partial batch failures, retry backoff, poison messages to the dead-letter queue with a reason."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_platform.platform.consumer import (
    Delivery,
    PoisonMessageError,
    QueueConsumer,
    RetryLaterError,
    RetryPolicy,
    bus_consumer,
    json_body,
    once_per_event,
)
from therapy_platform.platform.events import BusMessage, EventEnvelope, new_envelope
from therapy_platform.platform.rest.pagination import Page

NOW = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)


@dataclass
class FakeQueues:
    dead_letters: list[tuple[str, str, str]] = field(default_factory=list)
    delays: list[tuple[str, str, int]] = field(default_factory=list)
    refuse_dead_letters: bool = False

    def send_to_dead_letter(self, dead_letter_queue_url: str, body: str, reason: str) -> None:
        if self.refuse_dead_letters:
            raise RuntimeError("SQS is down")
        self.dead_letters.append((dead_letter_queue_url, body, reason))

    def delay_retry(self, queue_arn: str, receipt_handle: str, delay_seconds: int) -> None:
        self.delays.append((queue_arn, receipt_handle, delay_seconds))


@dataclass
class FakeProcessed:
    seen: set[tuple[uuid.UUID, str]]

    def first_time(self, event_id: uuid.UUID, consumer: str, at: datetime) -> bool:
        if (event_id, consumer) in self.seen:
            return False
        self.seen.add((event_id, consumer))
        return True


@dataclass
class FakeUnitOfWork:
    """Stages the claim and the handler's writes; applies both only on commit."""

    committed_claims: set[tuple[uuid.UUID, str]]
    committed_writes: list[str]
    staged_writes: list[str] = field(default_factory=list)

    def __enter__(self) -> FakeUnitOfWork:
        self.processed_events = FakeProcessed(set(self.committed_claims))
        self.staged_writes = []
        return self

    def __exit__(self, *exc: object) -> None:
        self.staged_writes = []

    def commit(self) -> None:
        self.committed_claims |= self.processed_events.seen
        self.committed_writes.extend(self.staged_writes)


def bus_body(event: EventEnvelope, key: str = "k1") -> str:
    detail = BusMessage(key=key, envelope=event).model_dump(mode="json", by_alias=True)
    return json.dumps({"detail-type": event.event_type, "source": "therapy-platform.test", "detail": detail})


def delivery(body: str, message_id: str = "m1", receive_count: int = 1) -> Delivery:
    return Delivery(message_id, body, receive_count, f"receipt-{message_id}", "arn:aws:sqs:eu-central-1:1:q")


def sqs_event(*deliveries: Delivery) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": d.message_id,
                "body": d.body,
                "receiptHandle": d.receipt_handle,
                "eventSourceARN": d.queue_arn,
                "attributes": {"ApproximateReceiveCount": str(d.receive_count)},
            }
            for d in deliveries
        ]
    }


def event(event_type: str = "patient.deleted") -> EventEnvelope:
    return new_envelope(event_type, "patient-service", {"id": str(uuid.uuid4())}, now=NOW)


def test_dispatch_by_type_and_unknown_types_are_acknowledged() -> None:
    seen: list[str] = []
    consumer = bus_consumer("test", {"patient.deleted": lambda m: seen.append(m.envelope.event_type)})
    first, second = event("patient.deleted"), event("patient.created")
    response = consumer.handle(sqs_event(delivery(bus_body(first), "a"), delivery(bus_body(second), "b")))
    assert response == {"batchItemFailures": []}
    assert seen == ["patient.deleted"]


def test_poison_goes_to_the_dead_letter_queue_with_its_reason_and_the_batch_moves_on() -> None:
    queues = FakeQueues()
    done: list[str] = []
    consumer = bus_consumer(
        "test",
        {"patient.deleted": lambda m: done.append(m.key)},
        queues=lambda: queues,
        dead_letter_queue_url="https://dlq",
    )
    good = event()
    report = consumer.handle_batch([delivery("not json", "bad"), delivery(bus_body(good), "good")])
    assert report.failures == [] and done == ["k1"]
    [(url, body, reason)] = queues.dead_letters
    assert url == "https://dlq" and body == "not json" and reason.startswith("body is not JSON")


def test_a_handler_may_refuse_a_message_for_good() -> None:
    queues = FakeQueues()

    def refuse(_: BusMessage) -> None:
        raise PoisonMessageError("the rules refuse this event")

    consumer = bus_consumer(
        "t", {"patient.deleted": refuse}, queues=lambda: queues, dead_letter_queue_url="q"
    )
    assert consumer.handle(sqs_event(delivery(bus_body(event())))) == {"batchItemFailures": []}
    assert [reason for _, _, reason in queues.dead_letters] == ["the rules refuse this event"]


def test_without_a_dead_letter_queue_poison_fails_and_the_redrive_policy_takes_it() -> None:
    consumer = bus_consumer("t", {}, queues=FakeQueues)
    assert consumer.handle(sqs_event(delivery("{}", "x"))) == {"batchItemFailures": [{"itemIdentifier": "x"}]}


def test_a_dead_letter_queue_that_refuses_leaves_the_message_to_the_redrive_policy() -> None:
    queues = FakeQueues(refuse_dead_letters=True)
    consumer = bus_consumer("t", {}, queues=lambda: queues, dead_letter_queue_url="q")
    assert consumer.handle(sqs_event(delivery("[]", "x"))) == {"batchItemFailures": [{"itemIdentifier": "x"}]}


def test_failures_are_reported_per_message_with_backoff() -> None:
    queues = FakeQueues()

    def flaky(message: BusMessage) -> None:
        if message.key == "later":
            raise RetryLaterError("contact not known yet")
        if message.key == "bug":
            raise KeyError("boom")

    consumer = bus_consumer(
        "t",
        {"patient.deleted": flaky},
        queues=lambda: queues,
        retry=RetryPolicy(base_seconds=2, max_seconds=60),
    )
    batch = [
        delivery(bus_body(event(), "ok"), "1"),
        delivery(bus_body(event(), "later"), "2", receive_count=3),
        delivery(bus_body(event(), "bug"), "3", receive_count=1),
    ]
    assert consumer.handle(sqs_event(*batch))["batchItemFailures"] == [
        {"itemIdentifier": "2"},
        {"itemIdentifier": "3"},
    ]
    assert [(receipt, seconds) for _, receipt, seconds in queues.delays] == [
        ("receipt-2", 8),
        ("receipt-3", 2),
    ]


def test_a_handler_may_name_its_own_retry_delay() -> None:
    queues = FakeQueues()

    def wait(_: BusMessage) -> None:
        raise RetryLaterError("not due", seconds=90_000)

    consumer = bus_consumer("t", {"patient.deleted": wait}, queues=lambda: queues)
    consumer.handle(sqs_event(delivery(bus_body(event()))))
    assert [seconds for *_, seconds in queues.delays] == [43_200]  # SQS's maximum


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=10_000), st.integers(1, 900), st.integers(1, 43_200))
def test_backoff_grows_and_is_capped(receive_count: int, base: int, cap: int) -> None:
    policy = RetryPolicy(base_seconds=base, max_seconds=cap)
    delay = policy.delay_for(receive_count)
    assert 1 <= delay <= min(cap, 43_200)
    assert delay <= policy.delay_for(receive_count + 1)


def test_once_per_event_claims_the_event_id_with_the_handlers_changes() -> None:
    claims: set[tuple[uuid.UUID, str]] = set()
    writes: list[str] = []
    attempts = {"n": 0}

    def handler(uow: FakeUnitOfWork, envelope: EventEnvelope) -> None:
        attempts["n"] += 1
        uow.staged_writes.append(str(envelope.event_id))
        if attempts["n"] == 1:
            raise RuntimeError("crash before commit")

    consumer = bus_consumer(
        "t",
        once_per_event("reader", lambda: FakeUnitOfWork(claims, writes), {"patient.deleted": handler}),
        queues=FakeQueues,
    )
    the_event = event()
    body = bus_body(the_event)
    # First delivery crashes: nothing committed, not even the claim.
    assert consumer.handle(sqs_event(delivery(body)))["batchItemFailures"]
    assert writes == [] and claims == set()
    # Redelivered: handled once; a third delivery is a duplicate that changes nothing.
    assert consumer.handle(sqs_event(delivery(body))) == {"batchItemFailures": []}
    report = consumer.handle_batch([delivery(body)])
    assert writes == [str(the_event.event_id)] and attempts["n"] == 2
    assert [item.outcome for item in report.handled] == ["duplicate"]


def test_json_body_queues_and_batch_handlers() -> None:
    decode = json_body(Page[int])
    sent: list[int] = []

    def batch(items: Any) -> dict[str, Exception | None]:
        results: dict[str, Exception | None] = {}
        for message_delivery, page in items:
            sent.extend(page.items)
            results[message_delivery.message_id] = None if page.total else RetryLaterError("empty")
        return results

    consumer: QueueConsumer[Page[int]] = QueueConsumer(
        name="t", decode=decode, kind_of=lambda _: "page", batch_handler=batch, queues=FakeQueues
    )
    good = json.dumps({"items": [1, 2], "total": 2, "page": 1, "limit": 10})
    empty = json.dumps({"items": [], "total": 0, "page": 1, "limit": 10})
    response = consumer.handle(sqs_event(delivery(good, "a"), delivery(empty, "b"), delivery("{}", "c")))
    assert sent == [1, 2]
    assert response == {"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]}


def test_an_undecodable_json_body_names_the_fields() -> None:
    with pytest.raises(PoisonMessageError, match="items"):
        json_body(Page[int])('{"total": 1, "page": 1, "limit": 1}')
