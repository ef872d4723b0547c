"""Matching service REST API: patient searches, bundles (rounds, staff bundles, sending,
responses), the staff selection list of eligible therapists and open staff alerts.

Routes under /api/v2/therapists/eligible and /api/v2/therapists/{id}/bundles belong here, not
to the therapist service: they answer from the matching service's read models and bundles.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Annotated, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.matching.adapters.store import SqlMatchingUnitOfWork
from therapy_platform.matching.domain.bundles import (
    Bundle,
    BundleQuery,
    BundleResponseRequest,
    BundleSortKey,
    BundleStatus,
    EligibleTherapist,
    ResponseRecorded,
    RoundRequest,
    RoundResult,
    StaffAlert,
    StaffBundleRequest,
    StaffBundleResult,
)
from therapy_platform.matching.domain.models import MatchingConfig, SearchStatus
from therapy_platform.matching.domain.searches import (
    ContactRequest,
    PatientSearch,
    PatientSearchDetail,
    SearchDraft,
    SearchPatch,
    SearchQuery,
    SearchSortKey,
)
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.matching.use_cases import searches as search_cases
from therapy_platform.matching.use_cases.jobs import bundle_timings, matching_config
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.query import refuse_unknown_parameters
from therapy_platform.platform.rest.resolver import create_resolver, current_actor
from therapy_platform.platform.rest.services import default_dependencies
from therapy_platform.platform.settings import MatchingSettings

logger = Logger(service="matching-service")
app = create_resolver(logger)

SEARCHES: Final = "/api/v2/patient-searches"
BUNDLES: Final = "/api/v2/bundles"
SearchId = Annotated[uuid.UUID, Path(description="Patient search id (UUID)")]
BundleId = Annotated[uuid.UUID, Path(description="Bundle id (UUID)")]
TherapistId = Annotated[uuid.UUID, Path(description="Therapist id (UUID)")]
PostcodePrefix = Annotated[str, Query(pattern=r"^\d{1,5}$", description="1-5 leading digits of the postcode")]

# The adapters the routes use; tests swap in other ones (and a fixed clock).
deps = default_dependencies(SqlMatchingUnitOfWork)


@cache
def settings() -> MatchingSettings:
    return MatchingSettings.from_env()


def config() -> MatchingConfig:
    return matching_config(settings())


def timings() -> bundle_cases.BundleTimings:
    return bundle_timings(settings())


def _created(body: object, location: str) -> Response[object]:
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Location": location},
    )


# ------------------------------------------------------------------ patient searches


@app.post(SEARCHES)
def create_search(draft: SearchDraft) -> Response[PatientSearch]:
    result = search_cases.create_search(
        deps.unit_of_work(), draft, actor=current_actor(app), now=deps.clock()
    )
    deps.publish_now(result.events, logger)
    return _created(result.value, f"{SEARCHES}/{result.value.id}")  # type: ignore[return-value]


SEARCH_PARAMETERS: Final = frozenset(
    {"status", "patient_id", "postcode_prefix", "waiting_longer_than_days", "page", "limit", "sort"}
)


@app.get(SEARCHES)
def list_searches(
    status: Annotated[SearchStatus | None, Query(description="active, paused, placed or cancelled")] = None,
    patient_id: Annotated[uuid.UUID | None, Query(description="Searches of this patient")] = None,
    postcode_prefix: Annotated[
        str | None, Query(pattern=r"^\d{1,5}$", description="Patient's postcode")
    ] = None,
    waiting_longer_than_days: Annotated[int | None, Query(ge=0, le=36500)] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    sort: Annotated[
        SearchSortKey, Query(description="Sort key; a leading - sorts descending")
    ] = "created_at",
) -> Page[PatientSearch]:
    refuse_unknown_parameters(app, SEARCH_PARAMETERS)
    query = SearchQuery(
        status=status,
        patient_id=patient_id,
        postcode_prefix=postcode_prefix,
        waiting_longer_than_days=waiting_longer_than_days,
        page=page,
        limit=limit,
        sort=sort,
    )
    items, total = search_cases.list_searches(deps.unit_of_work(), query, now=deps.clock())
    return Page[PatientSearch](items=items, total=total, page=page, limit=limit)


@app.get(f"{SEARCHES}/<search_id>")
def read_search(search_id: SearchId) -> PatientSearchDetail:
    return search_cases.get_search(deps.unit_of_work(), search_id, now=deps.clock())


@app.patch(f"{SEARCHES}/<search_id>")
def change_search(search_id: SearchId, patch: SearchPatch) -> PatientSearch:
    result = search_cases.change_search(
        deps.unit_of_work(), search_id, patch, actor=current_actor(app), now=deps.clock()
    )
    deps.publish_now(result.events, logger)
    return result.value


@app.post(f"{SEARCHES}/<search_id>/contact-requests")
def add_contacts(search_id: SearchId, request: ContactRequest) -> PatientSearch:
    result = search_cases.add_contacts(
        deps.unit_of_work(), search_id, request, actor=current_actor(app), now=deps.clock()
    )
    deps.publish_now(result.events, logger)
    return result.value


# ------------------------------------------------------------------ bundles


@app.post(f"{BUNDLES}/create")
def create_bundles(request: RoundRequest) -> Response[RoundResult]:
    """A round on demand. `dry_run` writes nothing and explains every decision."""
    result = bundle_cases.run_round(
        deps.unit_of_work(),
        request,
        actor=current_actor(app),
        trigger="api",
        now=deps.clock(),
        config=config(),
    )
    deps.publish_now(result.events, logger)
    logger.info("round", extra={"dry_run": request.dry_run, "bundles": len(result.value.bundles)})
    return Response(
        status_code=200 if request.dry_run else 201,
        content_type=content_types.APPLICATION_JSON,
        body=result.value,
    )


BUNDLE_PARAMETERS: Final = frozenset(
    {"status", "therapist_id", "postcode_prefix", "needs_follow_up", "search_id", "page", "limit", "sort"}
)


@app.get(BUNDLES)
def list_bundles(
    status: Annotated[
        BundleStatus | None, Query(description="draft, sent, answered, expired, discarded")
    ] = None,
    therapist_id: Annotated[uuid.UUID | None, Query()] = None,
    postcode_prefix: Annotated[
        str | None, Query(pattern=r"^\d{1,5}$", description="Therapist's region")
    ] = None,
    needs_follow_up: Annotated[
        bool | None, Query(description="Unanswered past the reminder, or a conflict")
    ] = None,
    search_id: Annotated[uuid.UUID | None, Query(description="Bundles listing this search")] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    sort: Annotated[
        BundleSortKey, Query(description="Sort key; a leading - sorts descending")
    ] = "-created_at",
) -> Page[Bundle]:
    refuse_unknown_parameters(app, BUNDLE_PARAMETERS)
    query = BundleQuery(
        status=status,
        therapist_id=therapist_id,
        postcode_prefix=postcode_prefix,
        needs_follow_up=needs_follow_up,
        search_id=search_id,
        page=page,
        limit=limit,
        sort=sort,
    )
    items, total = bundle_cases.list_bundles(deps.unit_of_work(), query, now=deps.clock(), timings=timings())
    return Page[Bundle](items=items, total=total, page=page, limit=limit)


@app.get(f"{BUNDLES}/<bundle_id>")
def read_bundle(bundle_id: BundleId) -> Bundle:
    return bundle_cases.get_bundle(deps.unit_of_work(), bundle_id, now=deps.clock(), timings=timings())


@app.post(f"{BUNDLES}/<bundle_id>/send")
def send_bundle(bundle_id: BundleId) -> Bundle:
    result = bundle_cases.send_bundle(
        deps.unit_of_work(), bundle_id, actor=current_actor(app), now=deps.clock()
    )
    deps.publish_now(result.events, logger)
    return result.value


@app.put(f"{BUNDLES}/<bundle_id>/response")
def record_response(bundle_id: BundleId, request: BundleResponseRequest) -> ResponseRecorded:
    result = bundle_cases.record_response(
        deps.unit_of_work(), bundle_id, request, actor=current_actor(app), now=deps.clock(), config=config()
    )
    deps.publish_now(result.events, logger)
    return result.value


# ------------------------------------------------------------------ staff selection


@app.get("/api/v2/therapists/eligible")
def eligible_therapists(
    postcode_prefix: PostcodePrefix,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[EligibleTherapist]:
    refuse_unknown_parameters(app, frozenset({"postcode_prefix", "page", "limit"}))
    rows = bundle_cases.eligible_therapists(deps.unit_of_work(), postcode_prefix, now=deps.clock())
    start = (page - 1) * limit
    return Page[EligibleTherapist](items=rows[start : start + limit], total=len(rows), page=page, limit=limit)


@app.post("/api/v2/therapists/<therapist_id>/bundles")
def build_staff_bundle(therapist_id: TherapistId, request: StaffBundleRequest) -> Response[StaffBundleResult]:
    result = bundle_cases.staff_bundle(
        deps.unit_of_work(),
        therapist_id,
        request,
        actor=current_actor(app),
        now=deps.clock(),
        config=config(),
    )
    deps.publish_now(result.events, logger)
    return Response(
        status_code=200 if request.dry_run else 201,
        content_type=content_types.APPLICATION_JSON,
        body=result.value,
    )


@app.get("/api/v2/alerts")
def list_alerts(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT) -> list[StaffAlert]:
    """Open staff alerts (conflicts and the like), newest first."""
    refuse_unknown_parameters(app, frozenset({"limit"}))
    return bundle_cases.open_alerts(deps.unit_of_work(), limit=limit)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
