"""In-memory implementations of the ports, for fast unit tests: the patient service's unit of
work (publish-after-commit like the SQL one), its outbox store, a geocoder, a bus and Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from types import TracebackType
from typing import Any, Final, Self

from therapy_platform.contracts.personal_data import PersonalDataPart, PersonalDataParts, PersonalDataRequest
from therapy_platform.patients.domain.patient import Patient, PatientQuery, PatientSort
from therapy_platform.patients.ports import PatientAuditEntry
from therapy_platform.patients.use_cases import PatientService
from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.errors import InternalCallError
from therapy_platform.platform.events import BusMessage, EventEnvelope
from therapy_platform.platform.geography.locations import Location, LocationPrecision
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.platform.ports import (
    AfterCommit,
    EventPublisher,
    FailedAttempt,
    OutboxRecord,
    ParkedRow,
    PublishOutcome,
)
from therapy_platform.platform.unit_of_work import AfterCommitHooks, RecordingOutbox


@dataclass
class StoredEvent:
    id: int
    key: str
    envelope: EventEnvelope
    published_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    parked_at: datetime | None = None

    @property
    def published(self) -> bool:
        return self.published_at is not None


@dataclass
class InMemoryDatabase:
    patients: dict[uuid.UUID, Patient] = field(default_factory=dict)
    erased: dict[uuid.UUID, datetime] = field(default_factory=dict)
    statistics: list[Any] = field(default_factory=list)
    patient_audit: list[PatientAuditEntry] = field(default_factory=list)
    outbox: list[StoredEvent] = field(default_factory=list)
    processed_events: set[tuple[uuid.UUID, str]] = field(default_factory=set)


def _patient_matches(patient: Patient, query: PatientQuery) -> bool:
    """The SQL filters of adapters/patients.py, in Python."""
    start, end = query.created_bounds()
    return (
        (not query.status or patient.status in query.status)
        and (not query.postcode_prefix or patient.postcode.startswith(query.postcode_prefix))
        and (not query.insurer or query.insurer.casefold() in (patient.health_insurer or "").casefold())
        and all(
            term.casefold() in f"{patient.first_name}\n{patient.last_name}".casefold()
            for term in query.name_terms
        )
        and (start is None or patient.created_at >= start)
        and (end is None or patient.created_at < end)
    )


def _patients_sorted(patients: list[Patient], sort: PatientSort) -> list[Patient]:
    """ORDER BY key [DESC] NULLS LAST, id: Python's sort is stable even reversed, so ties keep
    ascending ids in both directions."""

    def key(patient: Patient) -> Any:
        if sort.field == "last_name":
            return (patient.last_name.lower(), patient.first_name.lower())
        return getattr(patient, sort.field)

    by_id = sorted(patients, key=lambda patient: patient.id)
    present = [patient for patient in by_id if getattr(patient, sort.field) is not None]
    missing = [patient for patient in by_id if getattr(patient, sort.field) is None]
    return sorted(present, key=key, reverse=sort.descending) + missing


class InMemoryPatientRepository:
    def __init__(self, unit: InMemoryPatientUnitOfWork) -> None:
        self._unit = unit

    def _live(self) -> dict[uuid.UUID, Patient]:
        database, unit = self._unit.database, self._unit
        merged = {**database.patients, **unit.staged_patients}
        return {key: value for key, value in merged.items() if key not in unit.staged_erasures}

    def add(self, patient: Patient) -> None:
        self._unit.staged_patients[patient.id] = patient

    def get(self, patient_id: uuid.UUID, *, for_update: bool = False) -> Patient | None:
        return self._live().get(patient_id)

    def erased_at(self, patient_id: uuid.UUID) -> datetime | None:
        return self._unit.staged_erasures.get(patient_id) or self._unit.database.erased.get(patient_id)

    def update(self, patient: Patient) -> None:
        if patient.id in self._live():
            self._unit.staged_patients[patient.id] = patient

    def erase(self, patient_id: uuid.UUID, *, erased_at: datetime, statistics: Any) -> None:
        self._unit.staged_erasures[patient_id] = erased_at
        self._unit.database.statistics.append(statistics)

    def search(self, query: PatientQuery) -> tuple[list[Patient], int]:
        found = _patients_sorted([p for p in self._live().values() if _patient_matches(p, query)], query.sort)
        return found[query.offset : query.offset + query.limit], len(found)

    def find_by_identity(self, *, email: str, last_name: str, birth_date: date) -> list[Patient]:
        return [
            patient
            for patient in self._live().values()
            if (patient.email or "").lower() == email.lower()
            and patient.last_name.lower() == last_name.lower()
            and patient.birth_date == birth_date
        ]


class InMemoryAuditLog:
    def __init__(
        self, staged: list[PatientAuditEntry], redactions: set[uuid.UUID], committed: list[PatientAuditEntry]
    ) -> None:
        self._staged = staged
        self._redactions = redactions
        self._committed = committed

    def entries_of(self, entity_id: uuid.UUID) -> list[dict[str, Any]]:
        return [
            {
                "actor": e.actor,
                "action": str(e.action),
                "at": e.at.isoformat(),
                "before": e.before,
                "after": e.after,
            }
            for e in self._committed
            if e.entity_id == entity_id
        ]

    def record(self, entries: Sequence[PatientAuditEntry]) -> None:
        self._staged.extend(entries)

    def redact(self, entity_id: uuid.UUID) -> None:
        self._redactions.add(entity_id)


class InMemoryOutbox:
    def __init__(self, staged: list[tuple[str, EventEnvelope]], fail_on_add: bool = False) -> None:
        self._staged = staged
        self._fail_on_add = fail_on_add

    def add(self, key: str, envelope: EventEnvelope) -> None:
        if self._fail_on_add:
            raise RuntimeError("simulated crash while writing the outbox")
        self._staged.append((key, envelope))

    def add_many(self, events: Sequence[tuple[str, EventEnvelope]]) -> None:
        for key, envelope in events:
            self.add(key, envelope)


class InMemoryProcessedEvents:
    """Claims staged in the transaction, like `SqlProcessedEvents`: a rollback forgets them."""

    def __init__(self, unit: InMemoryPatientUnitOfWork) -> None:
        self._unit = unit

    def first_time(self, event_id: uuid.UUID, consumer: str, at: datetime) -> bool:
        claim = (event_id, consumer)
        if claim in self._unit.database.processed_events or claim in self._unit.staged_claims:
            return False
        self._unit.staged_claims.add(claim)
        return True


def _blank(values: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if values is None else dict.fromkeys(values)


class InMemoryPatientUnitOfWork(AfterCommitHooks):
    """Stages writes and applies them only on commit, like a database transaction; then hands
    the committed events to its after-commit hook (`publish`), as the SQL unit of work does."""

    def __init__(
        self, database: InMemoryDatabase, *, fail_on_outbox: bool = False, publish: AfterCommit | None = None
    ) -> None:
        self.database = database
        self._fail_on_outbox = fail_on_outbox
        self.publish = publish

    def __enter__(self) -> Self:
        self.staged_patients: dict[uuid.UUID, Patient] = {}
        self.staged_erasures: dict[uuid.UUID, datetime] = {}
        self.staged_claims: set[tuple[uuid.UUID, str]] = set()
        self._staged_audit: list[PatientAuditEntry] = []
        self._staged_redactions: set[uuid.UUID] = set()
        self._staged_events: list[tuple[str, EventEnvelope]] = []
        self.patients = InMemoryPatientRepository(self)
        self.audit = InMemoryAuditLog(
            self._staged_audit, self._staged_redactions, self.database.patient_audit
        )
        self.processed_events = InMemoryProcessedEvents(self)
        self.outbox = RecordingOutbox(InMemoryOutbox(self._staged_events, self._fail_on_outbox))
        self._reset_hooks()
        return self

    def commit(self) -> None:
        database = self.database
        database.patients.update(self.staged_patients)
        for patient_id, erased_at in self.staged_erasures.items():
            database.patients.pop(patient_id, None)
            database.erased[patient_id] = erased_at
            database.outbox[:] = [row for row in database.outbox if row.key != str(patient_id)]
        database.patient_audit[:] = [
            replace(entry, before=_blank(entry.before), after=_blank(entry.after))
            if entry.entity_id in self._staged_redactions
            else entry
            for entry in database.patient_audit
        ]
        database.patient_audit.extend(self._staged_audit)
        database.processed_events |= self.staged_claims
        for key, envelope in self._staged_events:
            next_id = max((row.id for row in database.outbox), default=0) + 1
            database.outbox.append(StoredEvent(next_id, key, envelope))
        self._clear()
        self._after_commit()

    def _clear(self) -> None:
        self.staged_patients.clear()
        self.staged_erasures.clear()
        self.staged_claims.clear()
        self._staged_audit.clear()
        self._staged_redactions.clear()
        self._staged_events.clear()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._clear()


class FakeGeocoder:
    """Knows the postcodes it was given; anything else is unknown. Counts its lookups."""

    def __init__(self, known: dict[str, tuple[float, float]] | None = None) -> None:
        self.known = known if known is not None else {"10115": (52.5323, 13.3846), "52062": (50.7766, 6.0834)}
        self.calls: list[tuple[str, str | None, str | None]] = []

    def locate(self, *, postcode: str, street: str | None = None, city: str | None = None) -> Location:
        self.calls.append((postcode, street, city))
        point = self.known.get(postcode)
        if point is None:
            return Location.unknown()
        precision = LocationPrecision.ADDRESS if street else LocationPrecision.POSTCODE
        return Location(latitude=point[0], longitude=point[1], precision=precision)


class InMemoryOutboxBatch:
    def __init__(self, database: InMemoryDatabase, records: Sequence[OutboxRecord]) -> None:
        self._database = database
        self.records = records

    def _row(self, record_id: int) -> StoredEvent:
        return next(row for row in self._database.outbox if row.id == record_id)

    def mark_published(self, record_ids: Sequence[int], at: datetime) -> None:
        for record_id in record_ids:
            row = self._row(record_id)
            row.published_at = at
            row.next_attempt_at = None
            row.last_error = None

    def record_failures(self, failures: Sequence[FailedAttempt]) -> None:
        for failure in failures:
            row = self._row(failure.record_id)
            row.attempts = failure.attempts
            row.last_error = failure.last_error
            row.next_attempt_at = failure.next_attempt_at
            row.parked_at = failure.parked_at


class InMemoryOutboxStore:
    """The SQL outbox store's rules (platform/outbox.py) over an in-memory list."""

    def __init__(self, database: InMemoryDatabase) -> None:
        self._database = database

    @contextmanager
    def claim(
        self, limit: int, *, due_at: datetime, event_ids: Sequence[uuid.UUID] | None = None
    ) -> Iterator[InMemoryOutboxBatch]:
        rows = [
            row
            for row in self._database.outbox
            if not row.published
            and row.parked_at is None
            and (row.next_attempt_at is None or row.next_attempt_at <= due_at)
            and (event_ids is None or row.envelope.event_id in event_ids)
        ][:limit]
        records = [
            OutboxRecord(row.id, BusMessage(key=row.key, envelope=row.envelope), row.attempts) for row in rows
        ]
        yield InMemoryOutboxBatch(self._database, records)

    def purge_published(self, before: datetime, limit: int) -> int:
        old = sorted(
            (
                row
                for row in self._database.outbox
                if row.published_at is not None and row.published_at < before
            ),
            key=lambda row: (row.published_at, row.id),
        )[:limit]
        gone = {row.id for row in old}
        self._database.outbox[:] = [row for row in self._database.outbox if row.id not in gone]
        return len(gone)

    def parked_count(self) -> int:
        return sum(1 for row in self._database.outbox if row.parked_at is not None)

    def parked(self, limit: int) -> list[ParkedRow]:
        return [
            ParkedRow(
                row.id,
                row.envelope.event_id,
                row.envelope.event_type,
                row.envelope.timestamp,
                row.attempts,
                row.parked_at,
                row.last_error,
            )
            for row in self._database.outbox
            if row.parked_at is not None
        ][:limit]

    def requeue(self, event_ids: Sequence[uuid.UUID]) -> int:
        rows = [row for row in self._database.outbox if row.parked_at and row.envelope.event_id in event_ids]
        for row in rows:
            row.parked_at = row.next_attempt_at = None
            row.attempts = 0
        return len(rows)

    def oldest_unpublished_at(self) -> datetime | None:
        return min(
            (
                row.envelope.timestamp
                for row in self._database.outbox
                if not row.published and row.parked_at is None
            ),
            default=None,
        )


class FakeBus:
    """Accepts messages unless told to be down (transient) or to refuse particular event types
    (the entry's own error, as EventBridge names it per entry)."""

    def __init__(self) -> None:
        self.down = False
        self.refuse_types: set[str] = set()
        self.messages: list[BusMessage] = []

    def publish(self, records: Sequence[OutboxRecord]) -> list[PublishOutcome]:
        outcomes = []
        for record in records:
            if self.down:
                outcomes.append(
                    PublishOutcome(record.id, "EndpointConnectionError: bus unreachable", transient=True)
                )
            elif record.message.envelope.event_type in self.refuse_types:
                outcomes.append(PublishOutcome(record.id, "MalformedDetail: refused"))
            else:
                self.messages.append(record.message)
                outcomes.append(PublishOutcome(record.id))
        return outcomes


class FakeKafka:
    def __init__(self) -> None:
        self.down = False
        self.topics: dict[str, list[tuple[str, bytes | None]]] = {}

    def send_all(self, messages: Sequence[tuple[str, str, bytes | None]]) -> list[str | None]:
        if self.down:
            return ["NoBrokersAvailable: broker down"] * len(messages)
        for topic, key, value in messages:
            self.topics.setdefault(topic, []).append((key, value))
        return [None] * len(messages)


class FakeOtherServices:
    """The other services' personal-data functions, in memory: each answers its records as a
    part of the request it is asked (`failing`: the named service answers an error instead)."""

    def __init__(
        self, records: dict[str, dict[str, list[dict[str, Any]]]], failing: str | None = None
    ) -> None:
        self.records = records
        self.failing = failing
        self.requests: list[PersonalDataRequest] = []

    def collect(self, request: PersonalDataRequest) -> list[PersonalDataPart]:
        self.requests.append(request)
        if self.failing is not None:
            raise InternalCallError(f"{self.failing} failed (Unhandled)")
        return [
            PersonalDataPart(
                service=service,
                request_id=request.request_id,
                subject=request.subject,
                subject_id=request.subject_id,
                records=records,
            )
            for service, records in self.records.items()
        ]


OTHER_SERVICES: Final[dict[str, dict[str, list[dict[str, Any]]]]] = {
    "matching": {"searches": []},
    "communication": {"emails": []},
}


def patient_service(
    database: InMemoryDatabase,
    *,
    bus: EventPublisher | None = None,
    geocoder: FakeGeocoder | None = None,
    clock: Callable[[], datetime] | None = None,
    other_services: PersonalDataParts | None = None,
) -> PatientService:
    """A PatientService on the in-memory database. With a bus, committed events are published
    at once (PublishNow, as deployed); without, they stay in the outbox for the relay."""
    publish = (
        PublishNow(store=lambda: InMemoryOutboxStore(database), publisher=lambda: bus)
        if bus is not None
        else None
    )
    return PatientService(
        unit_of_work=lambda: InMemoryPatientUnitOfWork(database, publish=publish),
        geocoder=geocoder if geocoder is not None else FakeGeocoder(),
        clock=clock if clock is not None else utc_now,
        personal_data_parts=other_services
        if other_services is not None
        else FakeOtherServices(OTHER_SERVICES),
    )
