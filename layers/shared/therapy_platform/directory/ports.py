"""Ports of the directory pipeline: reading the 116117 directory and practice websites
(scraping service), the raw-file store between the two services (S3), the scraping service's
run records, and the therapist service's directory listings and import reports."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from therapy_platform.directory.domain.entries import Enrichment, SearchPoint
from therapy_platform.directory.domain.runs import (
    ImportItem,
    ImportReport,
    ImportReportSummary,
    ItemOutcome,
    ScrapeRun,
)
from therapy_platform.therapists.ports import TherapistUnitOfWork

# ---------------------------------------------------------------------------------------------
# Scraping service
# ---------------------------------------------------------------------------------------------


class DirectorySearch(Protocol):
    """The directory's search, politely (rate, retries, robots rules, a hard cap per run)."""

    def search(self, point: SearchPoint, radius_km: float, page: int) -> Any:
        """The parsed JSON answer of one page. Raises MalformedAnswerError (200 but not JSON),
        DirectoryUnavailableError (after retries), BudgetExhaustedError, RobotsDisallowedError."""
        ...

    @property
    def requests_made(self) -> int: ...


class WebsiteEnricher(Protocol):
    def enrich(self, website: str) -> Enrichment | None:
        """Contact email and phone windows a practice website states, with their source URL;
        None when it states neither. Raises BudgetExhaustedError when the run's cap is reached;
        a site that cannot be read is None (the entry is imported without)."""
        ...


@dataclass(frozen=True)
class RawObject:
    body: bytes
    version: str | None  # the store's version tag (S3 ETag)


class RawStore(Protocol):
    """Object storage for raw directory answers (`raw/YYYY-MM-DD/<region>.json`)."""

    def put(self, key: str, body: bytes) -> str | None:
        """Store the object; returns its version tag."""
        ...

    def get(self, key: str) -> RawObject: ...


class ScrapeRunStore(Protocol):
    """scraping_service.runs: one row per run, written at start and at the end."""

    def start(self, run: ScrapeRun) -> None: ...

    def finish(self, run: ScrapeRun) -> None: ...


# ---------------------------------------------------------------------------------------------
# Therapist service: listings and reports
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """What the therapist service remembers of a directory entry it imported."""

    directory_id: str
    therapist_id: uuid.UUID
    content_hash: str
    postcode: str | None
    latitude: float | None
    longitude: float | None
    review_reason: str | None = None  # set while the entry is missing from the directory
    review_since: datetime | None = None


class DirectoryListingRepository(Protocol):
    def snapshot(self) -> dict[str, Listing]:
        """Every listing by directory id (one read per import: hashes are compared in memory)."""
        ...

    def save(
        self, listing: Listing, *, provenance: Mapping[str, str], import_id: uuid.UUID, now: datetime
    ) -> None:
        """Insert or replace the listing of `listing.directory_id`."""
        ...

    def mark_review(self, directory_ids: Sequence[str], *, reason: str | None, now: datetime) -> None:
        """Set (or with None clear) the review mark of these listings."""
        ...


class DirectoryImportUnitOfWork(TherapistUnitOfWork, Protocol):
    @property
    def listings(self) -> DirectoryListingRepository: ...


class ImportReportStore(Protocol):
    def find_finished(self, source: str, version: str) -> ImportReportSummary | None:
        """A finished report of exactly this object version (a redelivered S3 event)."""
        ...

    def start(self, report: ImportReportSummary) -> None: ...

    def finish(self, report: ImportReportSummary, items: Sequence[ImportItem]) -> None: ...

    def list(self, *, page: int, limit: int) -> tuple[Sequence[ImportReportSummary], int]:
        """Newest first."""
        ...

    def get(
        self, import_id: uuid.UUID, *, outcome: ItemOutcome | None, page: int, limit: int
    ) -> ImportReport | None: ...
