"""Publish-after-commit, the one implementation every service's unit of work shares."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Self

from therapy_platform.platform.events import EventEnvelope, new_envelope
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.platform.unit_of_work import AfterCommitHooks, RecordingOutbox

NOW = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)


class ListOutbox:
    def __init__(self) -> None:
        self.rows: list[tuple[str, EventEnvelope]] = []

    def add(self, key: str, envelope: EventEnvelope) -> None:
        self.rows.append((key, envelope))

    def add_many(self, events: Sequence[tuple[str, EventEnvelope]]) -> None:
        self.rows.extend(events)


class MemoryUnitOfWork(AfterCommitHooks):
    def __init__(self, publish: Any) -> None:
        self.publish = publish
        self.committed: list[tuple[str, EventEnvelope]] = []

    def __enter__(self) -> Self:
        self._staged = ListOutbox()
        self.outbox = RecordingOutbox(self._staged)
        self._reset_hooks()
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def commit(self) -> None:
        self.committed.extend(self._staged.rows)
        self._staged.rows = []
        self._after_commit()


def envelope() -> EventEnvelope:
    return new_envelope("patient.updated", "patient-service", {"id": str(uuid.uuid4())}, now=NOW)


def test_events_are_published_after_commit_and_never_after_a_rollback() -> None:
    published: list[list[EventEnvelope]] = []
    steps: list[str] = []
    uow = MemoryUnitOfWork(lambda events: published.append(list(events)))
    first, second = envelope(), envelope()
    with uow:
        uow.outbox.add("a", first)
        uow.on_commit(lambda: steps.append("queued"))
        assert published == [] and steps == []
        uow.commit()
    assert published == [[first]] and steps == ["queued"]
    with uow:
        uow.outbox.add_many([("b", second)])
        uow.on_commit(lambda: steps.append("never"))
    with uow:
        uow.commit()  # nothing written: nothing to publish
    assert published == [[first]] and steps == ["queued"]


def test_a_failing_publisher_never_undoes_the_commit() -> None:
    def down(_: Sequence[EventEnvelope]) -> None:
        raise ConnectionError("bus unreachable")

    uow = MemoryUnitOfWork(down)
    with uow:
        uow.outbox.add("a", envelope())
        uow.commit()
    assert len(uow.committed) == 1


class RecordingStore:
    def __init__(self) -> None:
        self.asked: list[list[uuid.UUID]] = []

    def claim(self, limit: int, *, due_at: datetime, event_ids: Sequence[uuid.UUID] | None = None) -> Any:
        self.asked.append(list(event_ids or []))
        raise ConnectionError("database gone")


def test_publish_now_is_best_effort_and_leaves_large_batches_to_the_relay() -> None:
    store = RecordingStore()
    hook = PublishNow(store=lambda: store, publisher=lambda: None, limit=2)  # type: ignore[arg-type,return-value]
    events = [envelope(), envelope()]
    hook(events)  # the store fails: logged, not raised
    hook([*events, envelope()])  # over the limit: not even tried
    assert store.asked == [[e.event_id for e in events]]


def test_publish_now_sends_every_event_of_a_transaction_up_to_its_limit() -> None:
    from fakes import FakeBus, InMemoryDatabase, InMemoryOutboxStore, StoredEvent

    database, bus = InMemoryDatabase(), FakeBus()
    events = [envelope() for _ in range(250)]
    for event in events:
        database.outbox.append(StoredEvent(len(database.outbox) + 1, str(uuid.uuid4()), event))
    PublishNow(store=lambda: InMemoryOutboxStore(database), publisher=lambda: bus)(events)
    assert {message.envelope.event_id for message in bus.messages} == {e.event_id for e in events}
    assert all(row.published for row in database.outbox)
