"""In-memory implementations of the ports, for fast unit tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from therapy_platform.domain.events import BusMessage, EventEnvelope
from therapy_platform.domain.patients import Patient
from therapy_platform.ports import OutboxRecord, PublishOutcome


@dataclass
class StoredEvent:
    id: int
    key: str
    envelope: EventEnvelope
    published: bool = False
    attempts: int = 0
    last_error: str | None = None


@dataclass
class InMemoryDatabase:
    patients: dict[uuid.UUID, Patient] = field(default_factory=dict)
    outbox: list[StoredEvent] = field(default_factory=list)


class InMemoryPatientRepository:
    def __init__(self, staged: dict[uuid.UUID, Patient], committed: dict[uuid.UUID, Patient]) -> None:
        self._staged = staged
        self._committed = committed

    def add(self, patient: Patient) -> None:
        self._staged[patient.id] = patient

    def get(self, patient_id: uuid.UUID) -> Patient | None:
        return self._staged.get(patient_id) or self._committed.get(patient_id)


class InMemoryOutbox:
    def __init__(self, staged: list[tuple[str, EventEnvelope]], fail_on_add: bool = False) -> None:
        self._staged = staged
        self._fail_on_add = fail_on_add

    def add(self, key: str, envelope: EventEnvelope) -> None:
        if self._fail_on_add:
            raise RuntimeError("simulated crash while writing the outbox")
        self._staged.append((key, envelope))


class InMemoryPatientUnitOfWork:
    """Stages writes and applies them only on commit, like a database transaction."""

    def __init__(self, database: InMemoryDatabase, *, fail_on_outbox: bool = False) -> None:
        self._database = database
        self._fail_on_outbox = fail_on_outbox

    def __enter__(self) -> Self:
        self._staged_patients: dict[uuid.UUID, Patient] = {}
        self._staged_events: list[tuple[str, EventEnvelope]] = []
        self.patients = InMemoryPatientRepository(self._staged_patients, self._database.patients)
        self.outbox = InMemoryOutbox(self._staged_events, self._fail_on_outbox)
        return self

    def commit(self) -> None:
        self._database.patients.update(self._staged_patients)
        for key, envelope in self._staged_events:
            self._database.outbox.append(StoredEvent(len(self._database.outbox) + 1, key, envelope))
        self._staged_patients.clear()
        self._staged_events.clear()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._staged_patients.clear()
        self._staged_events.clear()


class InMemoryOutboxBatch:
    def __init__(self, database: InMemoryDatabase, records: Sequence[OutboxRecord]) -> None:
        self._database = database
        self.records = records

    def _row(self, record_id: int) -> StoredEvent:
        return next(row for row in self._database.outbox if row.id == record_id)

    def mark_published(self, record_ids: Sequence[int]) -> None:
        for record_id in record_ids:
            row = self._row(record_id)
            row.published = True
            row.attempts += 1
            row.last_error = None

    def record_failures(self, failures: Sequence[PublishOutcome]) -> None:
        for failure in failures:
            row = self._row(failure.record_id)
            row.attempts += 1
            row.last_error = failure.error


class InMemoryOutboxStore:
    def __init__(self, database: InMemoryDatabase) -> None:
        self._database = database

    @contextmanager
    def claim(
        self, limit: int, *, event_ids: Sequence[uuid.UUID] | None = None
    ) -> Iterator[InMemoryOutboxBatch]:
        rows = [
            row
            for row in self._database.outbox
            if not row.published and (event_ids is None or row.envelope.event_id in event_ids)
        ][:limit]
        records = [OutboxRecord(row.id, BusMessage(key=row.key, envelope=row.envelope)) for row in rows]
        yield InMemoryOutboxBatch(self._database, records)


class FakeBus:
    """Accepts messages unless told to be down or to refuse particular event types."""

    def __init__(self) -> None:
        self.down = False
        self.refuse_types: set[str] = set()
        self.messages: list[BusMessage] = []

    def publish(self, records: Sequence[OutboxRecord]) -> list[PublishOutcome]:
        outcomes = []
        for record in records:
            if self.down:
                outcomes.append(PublishOutcome(record.id, "EndpointConnectionError: bus unreachable"))
            elif record.message.envelope.event_type in self.refuse_types:
                outcomes.append(PublishOutcome(record.id, "InternalFailure: refused"))
            else:
                self.messages.append(record.message)
                outcomes.append(PublishOutcome(record.id))
        return outcomes


class FakeKafka:
    def __init__(self) -> None:
        self.down = False
        self.topics: dict[str, list[tuple[str, bytes]]] = {}

    def send_all(self, messages: Sequence[tuple[str, str, bytes]]) -> list[str | None]:
        if self.down:
            return ["NoBrokersAvailable: broker down"] * len(messages)
        for topic, key, value in messages:
            self.topics.setdefault(topic, []).append((key, value))
        return [None] * len(messages)
