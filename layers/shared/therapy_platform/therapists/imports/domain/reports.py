"""Import reports (therapist service): what one import of a raw directory file did, as stored
in `therapist_service.directory_imports` and returned by GET /api/v2/imports; where a file came
from; and what an import gives back to its caller.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from therapy_platform.platform.metrics import Measurement, Unit


class ImportStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"  # the file was unusable, or the import stopped (database gone); see error


ItemOutcome = Literal["skipped", "vanished", "reappeared"]


class ImportItem(BaseModel):
    """One entry worth a look: skipped (with the reason), or a therapist who vanished from the
    directory (marked for review, not deleted) or came back."""

    model_config = ConfigDict(frozen=True)

    seq: int = Field(ge=1)
    outcome: ItemOutcome
    position: str | None = Field(default=None, description='Where in the file, e.g. "page 3, entry 12"')
    directory_id: str | None = None
    therapist_id: uuid.UUID | None = None
    name: str | None = None
    reason: str = Field(description="A skip reason code, or vanished_from_directory / back_in_directory")
    message: str


class ImportCounts(BaseModel):
    model_config = ConfigDict(frozen=True)

    entries: int = Field(default=0, description="Entries in the file (identical repeats included)")
    new: int = 0
    updated: int = 0
    unchanged: int = Field(default=0, description="Same content as last time, or nothing to change")
    skipped: int = 0
    repeats: int = Field(default=0, description="Identical repeats of an entry (overlapping searches)")
    vanished: int = Field(default=0, description="Listings of this region missing from a complete run")
    reappeared: int = 0
    suppressed: int = Field(
        default=0, description="Entries of erased therapists (GDPR Art. 17), never imported again"
    )


def import_measurements(counts: ImportCounts) -> list[Measurement]:
    """What one import run did, for the metrics (docs/metrics.md): entries created, updated,
    unchanged and rejected (skipped with a reason)."""
    return [
        Measurement("DirectoryEntriesCreated", Unit.COUNT, counts.new),
        Measurement("DirectoryEntriesUpdated", Unit.COUNT, counts.updated),
        Measurement("DirectoryEntriesUnchanged", Unit.COUNT, counts.unchanged),
        Measurement("DirectoryEntriesRejected", Unit.COUNT, counts.skipped),
    ]


class ImportReportSummary(BaseModel):
    """One import run: where the file came from and what it did."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    source: str = Field(description="s3://bucket/key, or the operator's file path")
    source_version: str | None = Field(default=None, description="The S3 object's ETag")
    region: str | None = None
    complete_source: bool = Field(description="The file covered its whole region (vanished listings marked)")
    actor: str
    status: ImportStatus
    started_at: datetime
    finished_at: datetime | None
    counts: ImportCounts
    skip_reasons: dict[str, int] = Field(description="Skipped entries per reason code")
    warnings: int = Field(default=0, description="Values left out of otherwise imported entries")
    error: str | None = None


class ImportReport(ImportReportSummary):
    """A report with its items (skipped, vanished, reappeared), one page of them at a time."""

    items: list[ImportItem]
    items_total: int = Field(ge=0, description="Items matching the outcome filter (all pages)")


@dataclass(frozen=True)
class ImportSource:
    name: str  # s3://bucket/key, or a file path
    version: str | None = None  # S3 ETag: the same version is imported once


@dataclass(frozen=True)
class StoredFile:
    """A raw file in object storage, as an S3 event (or an operator) names it."""

    bucket: str
    key: str
    etag: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class FileNotImported:
    """A stored file the import leaves alone, and why (never retried)."""

    reason: str


@dataclass
class ImportResult:
    """What one import did: its report, the items worth a look, and the ids of the events it
    committed (ids only: a national file commits tens of thousands)."""

    report: ImportReportSummary
    items: list[ImportItem] = field(default_factory=list)
    event_ids: list[uuid.UUID] = field(default_factory=list)
    already_done: bool = False  # the same object version was imported before: nothing ran
