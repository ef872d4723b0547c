"""Records of the directory pipeline: a scraping run (scraping service) and an import report
(therapist service), as stored and as the API returns them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from therapy_platform.directory.domain.entries import SkipReason
from therapy_platform.platform.errors import DependencyUnavailableError, DomainError

MAX_RUN_ERRORS: Final = 100  # error messages kept per run (the count is exact)


# ---------------------------------------------------------------------------------------------
# Scraping runs
# ---------------------------------------------------------------------------------------------


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # the whole region was read
    PARTIAL = "partial"  # stored, but something was missed (cap, errors): nothing marked vanished
    FAILED = "failed"  # nothing usable was read; no file stored


class ScrapeRun(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    region: str
    trigger: str = Field(description="schedule, operator or test")
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None
    requests: int = 0
    pages: int = 0
    entries: int = 0
    enriched: int = Field(default=0, description="Entries completed from the practice website")
    errors: int = 0
    error_messages: list[str] = Field(default_factory=list, description=f"The first {MAX_RUN_ERRORS}")
    raw_object_key: str | None = None


# ---------------------------------------------------------------------------------------------
# Import reports
# ---------------------------------------------------------------------------------------------


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


REASON_VANISHED: Final = "vanished_from_directory"
REASON_BACK: Final = "back_in_directory"
SKIP_REASON_CODES: Final = tuple(reason.value for reason in SkipReason)
ImportId = Annotated[uuid.UUID, Field(description="Import report id")]


# ---------------------------------------------------------------------------------------------
# What can go wrong while reading the directory
# ---------------------------------------------------------------------------------------------


class DirectoryUnavailableError(DependencyUnavailableError):
    """The directory (or a practice website) did not answer usefully after every retry."""


class BudgetExhaustedError(DomainError):
    """The run reached its hard cap of requests (or its time limit): it stops, marked partial."""

    code = "budget_exhausted"


class RobotsDisallowedError(DomainError):
    """robots.txt of the host does not allow this path for our user agent."""

    code = "robots_disallowed"


class MalformedAnswerError(DomainError):
    """The directory answered 200 with something that is not JSON; `text` keeps its start."""

    code = "malformed_answer"

    def __init__(self, message: str, *, text: str) -> None:
        super().__init__(message)
        self.text = text
