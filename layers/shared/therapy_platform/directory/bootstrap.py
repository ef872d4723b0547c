"""Composition root of the scraping service: the scraper as deployed (its run records in
`scraping_service`, raw files to the RAW_BUCKET in S3, the shipped postcode table, the
directory and the practice websites over polite HTTP sessions sharing one budget per run,
the websites' through the public-address transport, the real clock).
Settings are read at import, i.e. at cold start: a missing or invalid variable fails naming it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from therapy_platform.directory.adapters.client import DirectoryClient
from therapy_platform.directory.adapters.enrichment import WebsiteContactEnricher
from therapy_platform.directory.adapters.polite_http import HttpTransport, PoliteSession, RequestBudget
from therapy_platform.directory.adapters.public_web import PublicWebTransport
from therapy_platform.directory.adapters.raw_store import S3RawStore
from therapy_platform.directory.adapters.runs import SqlScrapeRunStore
from therapy_platform.directory.ports import (
    DirectorySearch,
    PostcodeCentroids,
    RawFileStore,
    ScrapeRunStore,
    WebsiteEnricher,
)
from therapy_platform.directory.settings import DirectorySettings, ScraperSettings
from therapy_platform.directory.use_cases import ScrapeLimits
from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.geography.postcodes import postcode_directory

SETTINGS = ScraperSettings.from_env()


def polite_session(
    settings: DirectorySettings, transport: Callable[[], HttpTransport | None] = lambda: None
) -> Callable[[RequestBudget], PoliteSession]:
    """One polite session per run, spending the run's budget (rate, retries, robots rules),
    over `transport` (default: requests, for the operator's directory)."""

    def session(budget: RequestBudget) -> PoliteSession:
        return PoliteSession(
            user_agent=settings.user_agent,
            budget=budget,
            min_interval=settings.min_interval_seconds,
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries,
            backoff_base=settings.backoff_base_seconds,
            backoff_max=settings.backoff_max_seconds,
            session=transport(),
        )

    return session


def website_session(settings: DirectorySettings) -> Callable[[RequestBudget], PoliteSession]:
    """Practice websites are untrusted: public addresses only (plus the operator's allow-list),
    the connection pinned to the checked address, redirects checked hop by hop."""
    policy = settings.website_policy
    return polite_session(settings, lambda: PublicWebTransport(policy))


@dataclass(frozen=True)
class ScraperService:
    """What the scraping function uses; unit tests build one from fakes."""

    settings: DirectorySettings
    runs: Callable[[], ScrapeRunStore]
    raw_store: Callable[[], RawFileStore]
    postcodes: Callable[[], PostcodeCentroids]
    session: Callable[[RequestBudget], PoliteSession]
    website_session: Callable[[RequestBudget], PoliteSession]
    clock: Callable[[], datetime] = utc_now

    @property
    def limits(self) -> ScrapeLimits:
        return ScrapeLimits(max_pages_per_point=self.settings.max_pages_per_point)

    def readers(
        self, *, max_requests: int | None, remaining_seconds: float
    ) -> tuple[DirectorySearch, WebsiteEnricher | None]:
        """The directory search and the website enricher of one run, sharing its budget: at
        most the configured cap (a request may ask for fewer), and nothing after the Lambda
        deadline minus the reserve kept for storing the file and the run."""
        settings = self.settings
        budget = RequestBudget(
            min(max_requests or settings.max_requests, settings.max_requests),
            deadline=time.monotonic() + max(0.0, remaining_seconds - settings.reserve_seconds),
        )
        session = self.session(budget)
        enricher = (
            WebsiteContactEnricher(self.website_session(budget), max_fetches=settings.max_website_fetches)
            if settings.max_website_fetches
            else None
        )
        return DirectoryClient(session, settings.search_url), enricher


def build(settings: ScraperSettings = SETTINGS) -> ScraperService:
    """Cheap: the engine, the S3 client and the postcode table are made on first use."""
    return ScraperService(
        settings=settings,
        runs=lambda: SqlScrapeRunStore(default_engine()),
        raw_store=lambda: S3RawStore.connect(settings.raw_bucket),
        postcodes=postcode_directory,
        session=polite_session(settings),
        website_session=website_session(settings),
    )
