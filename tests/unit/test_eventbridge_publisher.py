"""The relay's EventBridge publisher: 10 entries per PutEvents call, several calls at once, and
one outcome per record in the records' order whatever order the calls finish in."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from therapy_platform.platform.eventbridge import PUT_EVENTS_MAX_ENTRIES, EventBridgePublisher
from therapy_platform.platform.events import BusMessage, new_envelope
from therapy_platform.platform.ports import OutboxRecord

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def _records(count: int) -> list[OutboxRecord]:
    records = []
    for index in range(count):
        key = str(uuid.uuid4())
        envelope = new_envelope("patient.created", "patient-service", {"id": key}, now=NOW)
        records.append(OutboxRecord(id=index + 1, message=BusMessage(key=key, envelope=envelope), attempts=0))
    return records


class SlowBus:
    """A PutEvents client that answers late (the later the call, the sooner: out of order), refuses
    entries whose key is in `refused`, fails whole calls containing a key in `unreachable`, and
    records how many calls were in flight at once."""

    def __init__(
        self, refused: frozenset[str] = frozenset(), unreachable: frozenset[str] = frozenset()
    ) -> None:
        self.refused, self.unreachable = refused, unreachable
        self.calls: list[list[str]] = []
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        keys = [json.loads(entry["Detail"])["key"] for entry in Entries]
        with self._lock:
            self.calls.append(keys)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            delay = 0.05 / len(self.calls)
        try:
            time.sleep(delay)
            if self.unreachable & set(keys):
                raise ConnectionError("bus unreachable")
            return {
                "Entries": [
                    {"ErrorCode": "ValidationException", "ErrorMessage": "no"}
                    if key in self.refused
                    else {"EventId": f"bus-{key}"}
                    for key in keys
                ]
            }
        finally:
            with self._lock:
                self.in_flight -= 1


def test_many_records_go_in_calls_of_ten_at_once_and_answer_in_order() -> None:
    records = _records(95)
    bus = SlowBus(refused=frozenset({records[13].message.key, records[94].message.key}))
    outcomes = EventBridgePublisher(bus, "bus", "therapy-platform.test", parallel_calls=4).publish(records)
    assert [outcome.record_id for outcome in outcomes] == [record.id for record in records]
    assert [index for index, outcome in enumerate(outcomes) if outcome.error] == [13, 94]
    assert sorted(len(call) for call in bus.calls) == [5] + [PUT_EVENTS_MAX_ENTRIES] * 9
    assert sorted(key for call in bus.calls for key in call) == sorted(r.message.key for r in records)
    assert 1 < bus.most_in_flight <= 4


def test_a_failed_call_fails_only_its_own_records_as_transient() -> None:
    records = _records(30)
    bus = SlowBus(unreachable=frozenset({records[15].message.key}))
    outcomes = EventBridgePublisher(bus, "bus", "therapy-platform.test").publish(records)
    failed = [index for index, outcome in enumerate(outcomes) if outcome.error]
    assert failed == list(range(10, 20))
    assert all(outcomes[index].transient for index in failed)


def test_one_call_at_a_time_when_asked() -> None:
    bus = SlowBus()
    EventBridgePublisher(bus, "bus", "therapy-platform.test", parallel_calls=1).publish(_records(40))
    assert bus.most_in_flight == 1 and len(bus.calls) == 4
