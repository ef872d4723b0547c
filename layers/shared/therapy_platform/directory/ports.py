"""Ports of the scraping service: reading the 116117 directory and practice websites, where
search points come from, storing the raw file (S3), and the run records."""

from __future__ import annotations

from typing import Any, Protocol

from therapy_platform.contracts.directory_files import Enrichment, SearchPoint
from therapy_platform.directory.domain.runs import ScrapeRun
from therapy_platform.platform.geography.locations import Location


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


class PostcodeCentroids(Protocol):
    """Where postcodes lie (the shipped postcode table)."""

    def centroid(self, postcode: str) -> Location: ...

    def centroids_with_prefix(self, prefix: str) -> list[tuple[float, float]]: ...

    def postcodes(self, *, locatable_only: bool = False) -> list[str]: ...


class RawFileStore(Protocol):
    """Object storage for raw directory files (`raw/YYYY-MM-DD/<region>.json`); the scraping
    service only writes them."""

    def put(self, key: str, body: bytes) -> str | None:
        """Store the object; returns its version tag (S3 ETag)."""
        ...


class ScrapeRunStore(Protocol):
    """scraping_service.runs: one row per run, written at start and at the end."""

    def start(self, run: ScrapeRun) -> None: ...

    def finish(self, run: ScrapeRun) -> None: ...
