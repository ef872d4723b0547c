"""In-memory therapist unit of work and geocoder, for fast unit tests of the therapist service.
The list filters mirror the SQL adapter's semantics (the integration tests pin those); the unit
of work shares the SQL one's after-commit hooks (publish the committed events, on_commit)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from types import TracebackType
from typing import Any, Self

from fakes import InMemoryDatabase, InMemoryOutbox, StoredEvent
from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.geography.locations import Location, LocationPrecision
from therapy_platform.platform.ports import AfterCommit
from therapy_platform.platform.unit_of_work import AfterCommitHooks, RecordingOutbox
from therapy_platform.therapists.domain.erasure import TherapistErasure
from therapy_platform.therapists.domain.therapist import (
    Therapist,
    TherapistAuditEntry,
    TherapistQuery,
    search_text,
)


@dataclass
class TherapistDatabase(InMemoryDatabase):
    therapists: dict[uuid.UUID, Therapist] = field(default_factory=dict)
    audit: list[TherapistAuditEntry] = field(default_factory=list)
    erasures: dict[uuid.UUID, TherapistErasure] = field(default_factory=dict)
    listed_directory_ids: dict[uuid.UUID, set[str]] = field(default_factory=dict)

    def events(self, event_type: str | None = None) -> list[EventEnvelope]:
        return [row.envelope for row in self.outbox if event_type in (None, row.envelope.event_type)]


def _matches(therapist: Therapist, query: TherapistQuery, today: date) -> bool:
    checks = [
        query.status is None or therapist.status == query.status,
        query.postcode_prefix is None or therapist.postcode.startswith(query.postcode_prefix),
        query.procedure is None or query.procedure in therapist.procedures,
        query.language is None or query.language in therapist.languages,
        query.offers_group_therapy is None or therapist.offers_group_therapy == query.offers_group_therapy,
        query.potentially_available is None or therapist.potentially_available == query.potentially_available,
        query.in_cooling_period is None or therapist.in_cooling_period(today) == query.in_cooling_period,
        query.text is None
        or query.text
        in search_text(therapist.first_name, therapist.last_name, therapist.city, therapist.email),
    ]
    return all(checks)


def _sorted(therapists: list[Therapist], sort: str) -> list[Therapist]:
    key = sort.lstrip("-")
    present = [t for t in therapists if getattr(t, key) is not None]
    missing = [t for t in therapists if getattr(t, key) is None]
    descending = sort.startswith("-")
    present.sort(key=lambda t: (getattr(t, key), t.id), reverse=descending)
    missing.sort(key=lambda t: t.id, reverse=descending)
    return present + missing  # NULLS LAST either way, like the SQL adapter


class InMemoryTherapistRepository:
    def __init__(self, staged: dict[uuid.UUID, Therapist], committed: dict[uuid.UUID, Therapist]) -> None:
        self._staged = staged
        self._committed = committed

    def _all(self) -> list[Therapist]:
        return list({**self._committed, **self._staged}.values())

    def add(self, therapist: Therapist) -> None:
        if therapist.id in self._staged or therapist.id in self._committed:
            raise RuntimeError(f"duplicate key {therapist.id}")
        self._staged[therapist.id] = therapist

    def get(self, therapist_id: uuid.UUID) -> Therapist | None:
        return self._staged.get(therapist_id) or self._committed.get(therapist_id)

    def get_for_update(self, therapist_id: uuid.UUID) -> Therapist | None:
        return self.get(therapist_id)

    def update(self, therapist: Therapist) -> None:
        if self.get(therapist.id) is None:
            raise RuntimeError(f"no row {therapist.id}")
        self._staged[therapist.id] = therapist

    def list(self, query: TherapistQuery, *, today: date) -> tuple[Sequence[Therapist], int]:
        matching = _sorted([t for t in self._all() if _matches(t, query, today)], query.sort)
        return matching[query.offset : query.offset + query.limit], len(matching)

    def find_by_directory_id(self, directory_id: str) -> Therapist | None:
        return next((t for t in self._all() if t.directory_id == directory_id), None)

    def find_by_contact(self, *, email: str, last_name: str, postcode: str) -> Sequence[Therapist]:
        return sorted(
            (
                t
                for t in self._all()
                if t.practice_key == email.strip().lower()
                and t.last_name.casefold() == last_name.strip().casefold()
                and t.postcode == postcode
            ),
            key=lambda t: (t.created_at, t.id),
        )

    def find_by_name(self, *, first_name: str, last_name: str, postcode: str) -> Sequence[Therapist]:
        return sorted(
            (
                t
                for t in self._all()
                if t.first_name.casefold() == first_name.strip().casefold()
                and t.last_name.casefold() == last_name.strip().casefold()
                and t.postcode == postcode
            ),
            key=lambda t: (t.created_at, t.id),
        )


class InMemoryTherapistAuditLog:
    def __init__(self, staged: list[TherapistAuditEntry], committed: list[TherapistAuditEntry]) -> None:
        self._staged = staged
        self._committed = committed

    def add(self, entry: TherapistAuditEntry) -> None:
        self._staged.append(entry)

    def entries_of(self, entity_id: uuid.UUID) -> list[dict[str, Any]]:
        return [entry.model_dump(mode="json") for entry in self._committed if entry.entity_id == entity_id]


class InMemoryTherapistErasures:
    """Erasures staged until commit; erasing personal data drops the record, the listings and
    the outbox rows of the therapist and clears the audit values (the SQL adapter's semantics)."""

    def __init__(self, database: TherapistDatabase, staged: list[Any]) -> None:
        self._database = database
        self._staged = staged

    def get(self, therapist_id: uuid.UUID) -> TherapistErasure | None:
        return self._database.erasures.get(therapist_id)

    def suppressed_keys(self) -> frozenset[str]:
        return frozenset(
            key for erasure in self._database.erasures.values() for key in erasure.suppression_keys
        )

    def listed_directory_ids(self, therapist_id: uuid.UUID) -> set[str]:
        return set(self._database.listed_directory_ids.get(therapist_id, set()))

    def erase_personal_data(self, therapist_id: uuid.UUID) -> None:
        self._staged.append(("erase", therapist_id))

    def add(self, erasure: TherapistErasure) -> None:
        self._staged.append(("add", erasure))

    @staticmethod
    def apply(database: TherapistDatabase, staged: list[Any]) -> None:
        for kind, value in staged:
            if kind == "add":
                database.erasures[value.therapist_id] = value
                continue
            database.therapists.pop(value, None)
            database.listed_directory_ids.pop(value, None)
            listings = getattr(database, "listings", None)  # the directory import's fake
            if listings is not None:
                for directory_id in [key for key, row in listings.items() if row.therapist_id == value]:
                    del listings[directory_id]
            database.audit[:] = [
                entry.model_copy(update={"before": None, "after": None, "reason": None})
                if entry.entity_id == value
                else entry
                for entry in database.audit
            ]
            database.outbox[:] = [row for row in database.outbox if row.key != str(value)]


class InMemoryTherapistUnitOfWork(AfterCommitHooks):
    """Stages writes and applies them only on commit, like a database transaction; then hands
    the committed events to `publish` (a PublishNow over the in-memory outbox, say)."""

    def __init__(
        self, database: TherapistDatabase, *, fail_on_outbox: bool = False, publish: AfterCommit | None = None
    ) -> None:
        self._database = database
        self._fail_on_outbox = fail_on_outbox
        self.publish = publish
        self.commits = 0

    def __enter__(self) -> Self:
        self._staged_therapists: dict[uuid.UUID, Therapist] = {}
        self._staged_audit: list[TherapistAuditEntry] = []
        self._staged_events: list[tuple[str, EventEnvelope]] = []
        self.therapists = InMemoryTherapistRepository(self._staged_therapists, self._database.therapists)
        self.audit = InMemoryTherapistAuditLog(self._staged_audit, self._database.audit)
        self._staged_erasures: list[Any] = []
        self.erasures = InMemoryTherapistErasures(self._database, self._staged_erasures)
        self.outbox = RecordingOutbox(InMemoryOutbox(self._staged_events, self._fail_on_outbox))
        self._reset_hooks()
        return self

    def commit(self) -> None:
        InMemoryTherapistErasures.apply(self._database, self._staged_erasures)
        self._staged_erasures.clear()
        self._database.therapists.update(self._staged_therapists)
        self._database.audit.extend(self._staged_audit)
        for key, envelope in self._staged_events:
            self._database.outbox.append(StoredEvent(len(self._database.outbox) + 1, key, envelope))
        self._staged_therapists.clear()
        self._staged_audit.clear()
        self._staged_events.clear()
        self.commits += 1
        self._after_commit()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._staged_therapists.clear()
        self._staged_audit.clear()
        self._staged_events.clear()


class FakeGeocoder:
    """Knows the postcodes it is given; everything else is unknown. Records each call."""

    def __init__(self, known: dict[str, tuple[float, float]] | None = None) -> None:
        self.known = known if known is not None else {"52062": (50.7766, 6.0834), "10115": (52.5323, 13.3846)}
        self.calls: list[dict[str, Any]] = []
        self.down = False

    def locate(self, *, postcode: str, street: str | None = None, city: str | None = None) -> Location:
        self.calls.append({"postcode": postcode, "street": street, "city": city})
        if self.down:
            raise DependencyUnavailableError("geocoder unreachable")
        point = self.known.get(postcode)
        if point is None:
            return Location.unknown()
        return Location(latitude=point[0], longitude=point[1], precision=LocationPrecision.POSTCODE)
