"""In-memory adapters of the directory pipeline: listings inside the therapist unit of work
(staged until commit, like a transaction), import reports, raw files, scraping runs, and a
scripted directory; and a sample directory entry (`entry`). Every write is counted, so tests can
say "the second import wrote nothing"."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Self

from therapist_fakes import InMemoryTherapistUnitOfWork, TherapistDatabase
from therapy_platform.contracts.directory_files import Enrichment, SearchPoint
from therapy_platform.directory.domain.runs import ScrapeRun
from therapy_platform.platform.errors import DependencyUnavailableError, NotFoundError
from therapy_platform.platform.ports import AfterCommit
from therapy_platform.therapists.imports.domain.listings import Listing
from therapy_platform.therapists.imports.domain.reports import (
    ImportItem,
    ImportReport,
    ImportReportSummary,
    ItemOutcome,
)
from therapy_platform.therapists.imports.ports import RawFile


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "a1b2c3",
        "anrede": "Frau",
        "titel": "Dr. phil.",
        "vorname": "Änne",
        "name": "Müller-Lüdenscheidt",
        "geschlecht": "W",
        "strasse": "Pontstraße",
        "hausnummer": "12",
        "plz": "52062",
        "ort": "Aachen",
        "lat": 50.7766,
        "lon": 6.0834,
        "distance": 0.4,
        "tel": "0241 123456",
        "handy": "",
        "fax": "0241 123457",
        "email": "praxis@mueller.example",
        "web": "www.praxis-mueller.example",
        "psy": [
            {"verfahren": "Verhaltenstherapie", "altersgruppen": ["Erwachsene"]},
            {
                "verfahren": "Tiefenpsychologisch fundierte Psychotherapie",
                "altersgruppen": ["Kinder und Jugendliche"],
            },
        ],
        "fs": ["Englisch", "Türkisch"],
        "tsz": [
            {
                "datum": "23.11.2026",
                "tag": "Montag",
                "typen": [
                    {"typ": "Sprechzeiten", "zeiten": ["09:00-12:00"]},
                    {"typ": "Telefonische Erreichbarkeit", "zeiten": ["08:00-08:50"]},
                ],
            },
            {
                "datum": "26.11.2026",
                "typen": [{"typ": "Telefonische Erreichbarkeit", "zeiten": ["12:00 - 12:30"]}],
            },
        ],
        "keineSprechzeiten": False,
    }
    base.update(overrides)
    return base


@dataclass
class DirectoryDatabase(TherapistDatabase):
    listings: dict[str, Listing] = field(default_factory=dict)
    provenance: dict[str, dict[str, str]] = field(default_factory=dict)
    writes: int = 0  # rows written by committed units of work (therapists, audit, outbox, listings)


class InMemoryListingRepository:
    def __init__(
        self, staged: dict[str, Listing], committed: dict[str, Listing], provenance: dict[str, dict[str, str]]
    ):
        self._staged = staged
        self._committed = committed
        self._provenance = provenance

    def snapshot(self) -> dict[str, Listing]:
        return {**self._committed, **self._staged}

    def save(
        self, listing: Listing, *, provenance: Mapping[str, str], import_id: uuid.UUID, now: datetime
    ) -> None:
        self._staged[listing.directory_id] = listing
        self._provenance[listing.directory_id] = dict(provenance)

    def mark_review(self, directory_ids: Sequence[str], *, reason: str | None, now: datetime) -> None:
        for directory_id in directory_ids:
            current = self._staged.get(directory_id) or self._committed[directory_id]
            self._staged[directory_id] = replace(
                current, review_reason=reason, review_since=now if reason else None
            )


class InMemoryDirectoryImportUnitOfWork(InMemoryTherapistUnitOfWork):
    def __init__(self, database: DirectoryDatabase, *, publish: AfterCommit | None = None) -> None:
        super().__init__(database, publish=publish)
        self.directory_database = database

    def __enter__(self) -> Self:
        super().__enter__()
        self._staged_listings: dict[str, Listing] = {}
        self._staged_provenance: dict[str, dict[str, str]] = {}
        self.listings = InMemoryListingRepository(
            self._staged_listings, self.directory_database.listings, self._staged_provenance
        )
        return self

    def commit(self) -> None:
        database = self.directory_database
        database.writes += (
            len(self._staged_therapists)
            + len(self._staged_audit)
            + len(self._staged_events)
            + len(self._staged_listings)
        )
        database.listings.update(self._staged_listings)
        database.provenance.update(self._staged_provenance)
        self._staged_listings.clear()
        super().commit()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._staged_listings.clear()
        super().__exit__(exc_type, exc, tb)


@dataclass
class InMemoryImportReportStore:
    reports: dict[uuid.UUID, ImportReportSummary] = field(default_factory=dict)
    items: dict[uuid.UUID, list[ImportItem]] = field(default_factory=dict)

    def find_finished(self, source: str, version: str) -> ImportReportSummary | None:
        done = [
            report
            for report in self.reports.values()
            if report.source == source and report.source_version == version and report.status == "finished"
        ]
        return done[-1] if done else None

    def start(self, report: ImportReportSummary) -> None:
        self.reports[report.id] = report

    def finish(self, report: ImportReportSummary, items: Sequence[ImportItem]) -> None:
        self.reports[report.id] = report
        self.items[report.id] = list(items)

    def list(self, *, page: int, limit: int) -> tuple[Sequence[ImportReportSummary], int]:
        ordered = sorted(self.reports.values(), key=lambda r: (r.started_at, r.id), reverse=True)
        return ordered[(page - 1) * limit : page * limit], len(ordered)

    def get(
        self, import_id: uuid.UUID, *, outcome: ItemOutcome | None, page: int, limit: int
    ) -> ImportReport | None:
        report = self.reports.get(import_id)
        if report is None:
            return None
        items = [item for item in self.items.get(import_id, []) if outcome in (None, item.outcome)]
        return ImportReport(
            **report.model_dump(), items=items[(page - 1) * limit : page * limit], items_total=len(items)
        )


@dataclass
class InMemoryRawStore:
    """One bucket: the scraper's RawFileStore and the import's RawFileReader."""

    objects: dict[str, bytes] = field(default_factory=dict)
    fail: bool = False

    def put(self, key: str, body: bytes) -> str | None:
        if self.fail:
            raise DependencyUnavailableError("bucket unreachable")
        self.objects[key] = body
        return f"etag-{len(body)}"

    def get(self, key: str) -> RawFile:
        if self.fail:
            raise DependencyUnavailableError("bucket unreachable")
        if key not in self.objects:
            raise NotFoundError(f"{key} does not exist")
        return RawFile(self.objects[key], f"etag-{len(self.objects[key])}")


@dataclass
class InMemoryRunStore:
    runs: dict[uuid.UUID, ScrapeRun] = field(default_factory=dict)
    history: list[ScrapeRun] = field(default_factory=list)

    def start(self, run: ScrapeRun) -> None:
        self.runs[run.id] = run
        self.history.append(run)

    def finish(self, run: ScrapeRun) -> None:
        self.runs[run.id] = run
        self.history.append(run)


@dataclass
class ScriptedDirectory:
    """Answers (or exceptions) per (point index, page); unknown pages are empty answers."""

    points: list[SearchPoint]
    script: dict[tuple[int, int], Any] = field(default_factory=dict)
    calls: list[tuple[int, int]] = field(default_factory=list)

    @property
    def requests_made(self) -> int:
        return len(self.calls)

    def search(self, point: SearchPoint, radius_km: float, page: int) -> Any:
        key = (self.points.index(point), page)
        self.calls.append(key)
        answer = self.script.get(key, {"arztPraxisDatas": [], "moreResults": False})
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class FakeEnricher:
    found: dict[str, Enrichment] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def enrich(self, website: str) -> Enrichment | None:
        self.asked.append(website)
        return self.found.get(website)
