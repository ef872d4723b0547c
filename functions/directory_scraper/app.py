"""Scraping service: one region of the 116117 directory per invocation.

Invoked by EventBridge Scheduler (one schedule per region, spread over the week) with
`{"region": "52"}` (a 2-digit postcode prefix, tiled into search points) or
`{"region": "52062-r25"}` / `{"region": {"postcode": "52062", "radius_km": 25}}`; operators may
invoke it the same way. Stores the raw answers in S3 (`raw/YYYY-MM-DD/<region>.json`, which
triggers the therapist service's import) and records the run in `scraping_service.runs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from therapy_platform.directory.adapters.client import DirectoryClient, DirectorySettings
from therapy_platform.directory.adapters.enrichment import WebsiteContactEnricher
from therapy_platform.directory.adapters.polite_http import PoliteSession, RequestBudget
from therapy_platform.directory.adapters.raw_store import S3RawStore
from therapy_platform.directory.adapters.runs import SqlScrapeRunStore
from therapy_platform.directory.domain.entries import Region, RegionKind
from therapy_platform.directory.ports import RawStore, ScrapeRunStore
from therapy_platform.directory.use_cases import (
    PostcodeCentroids,
    ScrapeLimits,
    scrape_region,
    search_points,
)
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.errors import InvalidInputError
from therapy_platform.platform.geography.postcodes import postcode_directory

logger = Logger(service="scraping-service")


class ScrapeRequest(BaseModel):
    """The schedule's input (or an operator's)."""

    model_config = ConfigDict(extra="forbid")

    region: str | dict[str, Any]
    trigger: str = Field(default="schedule", pattern=r"^[a-z_-]{1,20}$")
    max_requests: int | None = Field(default=None, ge=1, description="Lower than the configured cap only")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Dependencies:
    """What a run uses; unit tests swap in fakes (and a local directory server's settings)."""

    settings: Callable[[], DirectorySettings] = DirectorySettings.from_env
    runs: Callable[[], ScrapeRunStore] = field(default=lambda: SqlScrapeRunStore(default_engine()))
    raw_store: Callable[[], RawStore] = S3RawStore.from_settings
    postcodes: Callable[[], PostcodeCentroids] = postcode_directory
    clock: Callable[[], datetime] = _utc_now
    session: Callable[[DirectorySettings, RequestBudget], PoliteSession] = field(
        default=lambda settings, budget: settings.session(budget)
    )


deps = Dependencies()


def _region(request: ScrapeRequest, settings: DirectorySettings) -> Region:
    region = Region.parse(request.region)
    # A prefix given as a bare string is tiled with the configured radius.
    if region.kind is RegionKind.PREFIX and not (
        isinstance(request.region, dict) and "radius_km" in request.region
    ):
        region = region.model_copy(update={"radius_km": settings.tile_radius_km})
    return region


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = ScrapeRequest.model_validate(event or {})
        settings = deps.settings()
        region = _region(request, settings)
        points = search_points(region, deps.postcodes())
    except (ValidationError, ValueError, InvalidInputError) as error:
        # Retrying cannot fix a bad schedule input: say so and end (no retry storm).
        message = error.message if isinstance(error, InvalidInputError) else str(error)
        logger.error("scrape request rejected", extra={"error": message, "input": event})
        return {"status": "rejected", "error": message}
    remaining_s = context.get_remaining_time_in_millis() / 1000
    budget = RequestBudget(
        min(request.max_requests or settings.max_requests, settings.max_requests),
        deadline=time.monotonic() + max(0.0, remaining_s - settings.reserve_seconds),
    )
    session = deps.session(settings, budget)
    enricher = (
        WebsiteContactEnricher(session, max_fetches=settings.max_website_fetches)
        if settings.max_website_fetches
        else None
    )
    logger.info("scraping region", extra={"region": region.key, "points": len(points)})
    run = scrape_region(
        region,
        points,
        search=DirectoryClient(session, settings.search_url),
        enricher=enricher,
        raw_store=deps.raw_store(),
        runs=deps.runs(),
        limits=ScrapeLimits(max_pages_per_point=settings.max_pages_per_point),
        clock=deps.clock,
        trigger=request.trigger,
        source=settings.search_url,
    )
    result = run.model_dump(mode="json")
    logger.info("scrape run finished", extra={key: result[key] for key in result if key != "error_messages"})
    return result
