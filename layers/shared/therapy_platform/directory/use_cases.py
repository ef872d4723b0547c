"""Use cases of the scraping service: plan a run from the schedule's request (region ->
search points), and run it: read one region of the 116117 directory, complete entries from
practice websites, store the raw file (contracts/directory_files.py), record the run.

A run is `partial` (stored, but never used to mark listings as vanished) when it could not
read the whole region: the hard cap or time limit was reached, a page failed after its
retries, an answer was not JSON, or a point had more pages than allowed. It is `failed` when
nothing usable was read (no file is stored then).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from therapy_platform.contracts.directory_files import (
    Enrichment,
    RawPage,
    RawRun,
    Region,
    RegionKind,
    SearchPoint,
    raw_object_key,
)
from therapy_platform.directory.domain.regions import ScrapeRequest, tile_points
from therapy_platform.directory.domain.runs import (
    BudgetExhaustedError,
    DirectoryUnavailableError,
    MalformedAnswerError,
    RobotsDisallowedError,
    RunStatus,
    ScrapeRun,
)
from therapy_platform.directory.domain.week_plan import region_due, regions_of
from therapy_platform.directory.ports import (
    DirectorySearch,
    PostcodeCentroids,
    RawFileStore,
    ScrapeRunStore,
    WebsiteEnricher,
)
from therapy_platform.platform.clock import platform_today
from therapy_platform.platform.errors import DependencyUnavailableError, InvalidInputError
from therapy_platform.platform.outcome import Outcome

# This many failed points in a row mean the directory is down: stop instead of spending the cap.
MAX_CONSECUTIVE_FAILURES: Final = 3


def search_points(region: Region, postcodes: PostcodeCentroids) -> list[SearchPoint]:
    """Where to search: the postcode's centre (radius region) or the tiled centroids of every
    postcode with the prefix (prefix region)."""
    if region.kind is RegionKind.RADIUS:
        location = postcodes.centroid(str(region.postcode))
        if location.latitude is None or location.longitude is None:
            raise InvalidInputError(f"postcode {region.postcode} cannot be located: no search point")
        return [SearchPoint(latitude=location.latitude, longitude=location.longitude)]
    centroids = postcodes.centroids_with_prefix(str(region.prefix))
    if not centroids:
        raise InvalidInputError(f"no German postcode starts with {region.prefix}: nothing to search")
    return tile_points(centroids, region.radius_km)


@dataclass(frozen=True)
class ScrapeLimits:
    max_pages_per_point: int


@dataclass(frozen=True)
class ScrapePlan:
    """What one invocation will search: the region, its search points, who asked, and the
    request cap asked for (never above the configured one)."""

    region: Region
    points: list[SearchPoint]
    trigger: str
    max_requests: int | None


def plan_scrape(
    request: Mapping[str, Any], postcodes: PostcodeCentroids, *, tile_radius_km: float
) -> Outcome[ScrapePlan | None]:
    """The schedule's (or an operator's) input as a plan; None when the schedule fired at a slot
    the week plan leaves free. A request no retry can fix (unknown fields, a malformed region, a
    prefix without postcodes) is InvalidInputError naming the problem."""
    try:
        parsed = ScrapeRequest.model_validate(request)
        if parsed.scheduled_time is not None:
            due = region_due(regions_of(postcodes.postcodes(locatable_only=True)), parsed.scheduled_time)
            if due is None:
                return Outcome(None)
            parsed = parsed.model_copy(update={"region": due, "scheduled_time": None})
        region = parsed.resolved_region(tile_radius_km)
    except (ValidationError, ValueError) as error:
        raise InvalidInputError(str(error)) from error
    return Outcome(ScrapePlan(region, search_points(region, postcodes), parsed.trigger, parsed.max_requests))


class _StopError(Exception):
    """The directory refuses or is down: the run ends early (partial)."""


@dataclass
class _RunState:
    pages: list[RawPage]
    errors: list[str]
    entries: int = 0
    complete: bool = True


def _read_point(
    search: DirectorySearch,
    point: SearchPoint,
    radius_km: float,
    limits: ScrapeLimits,
    state: _RunState,
    clock: Callable[[], datetime],
) -> bool:
    """Every page at one point; returns False when the point failed."""
    for page in range(limits.max_pages_per_point):
        try:
            answer = search.search(point, radius_km, page)
        except MalformedAnswerError as error:
            state.pages.append(
                RawPage(point=point, page=page, fetched_at=clock(), raw_text=error.text, error=error.message)
            )
            state.errors.append(error.message)
            state.complete = False
            return True  # the directory answered; the next point may be fine
        except RobotsDisallowedError as error:
            state.errors.append(error.message)
            state.complete = False
            raise _StopError from error
        except DirectoryUnavailableError as error:
            state.errors.append(f"{point.latitude:.4f},{point.longitude:.4f} page {page}: {error.message}")
            state.complete = False
            return False
        state.pages.append(RawPage(point=point, page=page, fetched_at=clock(), answer=answer))
        items = answer.get("arztPraxisDatas") if isinstance(answer, Mapping) else None
        if not isinstance(items, list):
            state.errors.append(
                f"page {page} at {point.latitude:.4f},{point.longitude:.4f}: no arztPraxisDatas"
            )
            state.complete = False
            return True
        state.entries += len(items)
        if answer.get("moreResults") is not True:
            return True
    state.errors.append(
        f"{point.latitude:.4f},{point.longitude:.4f}: more than {limits.max_pages_per_point} pages; "
        "use a smaller tile radius for this region"
    )
    state.complete = False
    return True


def _to_enrich(pages: Sequence[RawPage]) -> dict[str, str]:
    """Directory id -> website of entries with a website but no email (first sighting)."""
    wanted: dict[str, str] = {}
    for page in pages:
        items = page.answer.get("arztPraxisDatas") if isinstance(page.answer, Mapping) else None
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, Mapping):
                continue
            entry_id, web, email = item.get("id"), item.get("web"), item.get("email")
            if entry_id is None or not isinstance(web, str) or not web.strip():
                continue
            if isinstance(email, str) and email.strip():
                continue
            wanted.setdefault(str(entry_id), web.strip())
    return wanted


def _enrich(enricher: WebsiteEnricher, pages: Sequence[RawPage], errors: list[str]) -> dict[str, Enrichment]:
    found: dict[str, Enrichment] = {}
    for entry_id, website in _to_enrich(pages).items():
        try:
            result = enricher.enrich(website)
        except BudgetExhaustedError as error:
            errors.append(f"enrichment stopped: {error.message}")
            break
        if result is not None:
            found[entry_id] = result
    return found


def scrape_region(
    region: Region,
    points: Sequence[SearchPoint],
    *,
    search: DirectorySearch,
    enricher: WebsiteEnricher | None,
    raw_store: RawFileStore,
    runs: ScrapeRunStore,
    limits: ScrapeLimits,
    clock: Callable[[], datetime],
    trigger: str,
    source: str,
) -> Outcome[ScrapeRun]:
    """Run one region; see the module docstring. The run row is written at the start (so a run
    that dies is visible as `running`) and at the end."""
    started = clock()
    run = ScrapeRun(
        id=uuid.uuid4(), region=region.key, trigger=trigger, status=RunStatus.RUNNING, started_at=started
    )
    runs.start(run)
    state = _RunState(pages=[], errors=[])
    failures = 0
    try:
        for point in points:
            failures = (
                0 if _read_point(search, point, region.radius_km, limits, state, clock) else failures + 1
            )
            if failures >= MAX_CONSECUTIVE_FAILURES:
                state.errors.append(
                    f"{failures} points failed in a row: the directory seems down; run stopped"
                )
                raise _StopError
    except BudgetExhaustedError as error:
        state.errors.append(error.message)
        state.complete = False
    except _StopError:
        state.complete = False
    enrichment = _enrich(enricher, state.pages, state.errors) if enricher is not None and state.pages else {}

    def finished(status: RunStatus, key: str | None = None, **extra: Any) -> ScrapeRun:
        return run.model_copy(
            update={
                "status": status,
                "finished_at": clock(),
                "requests": search.requests_made,
                "pages": len(state.pages),
                "entries": state.entries,
                "enriched": len(enrichment),
                "errors": len(state.errors),
                "error_messages": list(state.errors),
                "raw_object_key": key,
                **extra,
            }
        )

    if not any(page.answer is not None for page in state.pages):
        state.errors.append("no page of the directory could be read: nothing stored")
        result = finished(RunStatus.FAILED)
        runs.finish(result)
        return Outcome(result)
    document = RawRun(
        run_id=str(run.id),
        region=region,
        radius_km=region.radius_km,
        points=list(points),
        started_at=started,
        finished_at=clock(),
        complete=state.complete,
        source=source,
        pages=state.pages,
        enrichment=enrichment,
        errors=state.errors,
    )
    key = raw_object_key(platform_today(started), region)
    try:
        raw_store.put(key, document.to_json_bytes())
    except DependencyUnavailableError as error:
        state.errors.append(f"storing {key} failed: {error.message}")
        runs.finish(finished(RunStatus.FAILED))
        raise
    result = finished(RunStatus.SUCCEEDED if state.complete else RunStatus.PARTIAL, key)
    runs.finish(result)
    return Outcome(result)
