"""A scraping run as recorded in `scraping_service.runs` (and returned by the scraper), and
what can go wrong while reading the directory or a practice website."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from therapy_platform.platform.errors import DependencyUnavailableError, DomainError

MAX_RUN_ERRORS: Final = 100  # error messages kept per run (the count is exact)


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
