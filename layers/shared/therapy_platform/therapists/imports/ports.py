"""Ports of the directory import (therapist service): listings inside the therapist unit of
work, the import reports, and reading raw directory files from object storage."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from therapy_platform.therapists.imports.domain.listings import Listing
from therapy_platform.therapists.imports.domain.reports import (
    ImportItem,
    ImportReport,
    ImportReportSummary,
    ItemOutcome,
)
from therapy_platform.therapists.ports import TherapistUnitOfWork


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


@dataclass(frozen=True)
class RawFile:
    body: bytes
    version: str | None  # the store's version tag (S3 ETag)


class RawFileReader(Protocol):
    """One bucket of raw directory files (`raw/YYYY-MM-DD/<region>.json`); the therapist
    service only reads them."""

    def get(self, key: str) -> RawFile:
        """The object; NotFoundError when it is gone, DependencyUnavailableError when the store
        cannot be reached."""
        ...
