"""The matching service's REST routes (the API function's resolver registers them): patient
searches, bundles (rounds, staff bundles, sending, responses), the staff selection list of
eligible therapists and open staff alerts. Each route parses, calls one use case with the
service the function built, and answers; domain errors map to HTTP in the platform resolver.

The routes under /api/v2/therapists/eligible and .../{id}/bundles answer from the matching
service's read models and bundles, so they live here, not in the therapist service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

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
from therapy_platform.matching.domain.models import SearchStatus
from therapy_platform.matching.domain.searches import (
    ContactRequest,
    PatientSearch,
    PatientSearchDetail,
    SearchDraft,
    SearchPatch,
    SearchQuery,
    SearchSortKey,
    search_tag,
)
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.matching.use_cases import searches as search_cases
from therapy_platform.platform.preconditions import require_if_match
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.resolver import (
    IdempotencyKeyHeader,
    IfMatchHeader,
    created,
    current_actor,
    tagged,
)

if TYPE_CHECKING:
    from therapy_platform.matching.bootstrap import MatchingService

SEARCHES = "/api/v2/patient-searches"
BUNDLES = "/api/v2/bundles"
SearchId = Annotated[uuid.UUID, Path(description="Patient search id (UUID)")]
BundleId = Annotated[uuid.UUID, Path(description="Bundle id (UUID)")]
TherapistId = Annotated[uuid.UUID, Path(description="Therapist id (UUID)")]
PostcodePrefix = Annotated[str, Query(pattern=r"^\d{1,5}$", description="1-5 leading digits of the postcode")]
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PageSize = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _json(status_code: int, body: Any) -> Response[Any]:
    return Response(status_code=status_code, content_type=content_types.APPLICATION_JSON, body=body)


def register_routes(app: APIGatewayRestResolver, service: Callable[[], MatchingService]) -> None:
    """`service` is asked on every request, so tests can swap the function's service."""

    def actor() -> str:
        return current_actor(app)

    # ------------------------------------------------------------------ patient searches

    @app.post(SEARCHES)
    def create_search(
        draft: SearchDraft, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[PatientSearch]:
        del idempotency_key  # the resolver answers a repeated key (platform/idempotency.py)
        s = service()
        search = search_cases.create_search(s.unit_of_work(), draft, actor=actor(), now=s.clock()).value
        return created(search, f"{SEARCHES}/{search.id}")

    @app.get(SEARCHES)
    def list_searches(
        status: Annotated[
            SearchStatus | None, Query(description="active, paused, placed or cancelled")
        ] = None,
        patient_id: Annotated[uuid.UUID | None, Query(description="Searches of this patient")] = None,
        postcode_prefix: Annotated[
            str | None, Query(pattern=r"^\d{1,5}$", description="Patient's postcode")
        ] = None,
        waiting_longer_than_days: Annotated[int | None, Query(ge=0, le=36500)] = None,
        page: PageNumber = 1,
        limit: PageSize = DEFAULT_LIMIT,
        sort: Annotated[
            SearchSortKey, Query(description="Sort key; a leading - sorts descending")
        ] = "created_at",
    ) -> Page[PatientSearch]:
        query = SearchQuery(
            status=status,
            patient_id=patient_id,
            postcode_prefix=postcode_prefix,
            waiting_longer_than_days=waiting_longer_than_days,
            page=page,
            limit=limit,
            sort=sort,
        )
        s = service()
        return search_cases.list_searches(s.unit_of_work(), query, now=s.clock()).value

    @app.get(f"{SEARCHES}/<search_id>")
    def read_search(search_id: SearchId) -> Response[PatientSearchDetail]:
        s = service()
        search = search_cases.get_search(s.unit_of_work(), search_id, now=s.clock()).value
        return tagged(search, search_tag(search))

    @app.patch(f"{SEARCHES}/<search_id>")
    def change_search(
        search_id: SearchId, patch: SearchPatch, if_match: IfMatchHeader = None
    ) -> Response[PatientSearch]:
        expected = require_if_match(if_match, what="patient search")
        s = service()
        search = search_cases.change_search(
            s.unit_of_work(), search_id, patch, actor=actor(), now=s.clock(), if_match=expected
        ).value
        return tagged(search, search_tag(search))

    @app.post(f"{SEARCHES}/<search_id>/contact-requests")
    def add_contacts(search_id: SearchId, request: ContactRequest) -> PatientSearch:
        s = service()
        return search_cases.add_contacts(
            s.unit_of_work(), search_id, request, actor=actor(), now=s.clock()
        ).value

    # ------------------------------------------------------------------ bundles

    @app.post(f"{BUNDLES}/create")
    def create_bundles(
        request: RoundRequest, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[RoundResult]:
        """A round on demand. `dry_run` writes nothing and explains every decision."""
        del idempotency_key  # the resolver answers a repeated key (platform/idempotency.py)
        s = service()
        result = bundle_cases.run_round(
            s.unit_of_work(), request, actor=actor(), trigger="api", now=s.clock(), config=s.config
        ).value
        return _json(200 if request.dry_run else 201, result)

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
        page: PageNumber = 1,
        limit: PageSize = DEFAULT_LIMIT,
        sort: Annotated[
            BundleSortKey, Query(description="Sort key; a leading - sorts descending")
        ] = "-created_at",
    ) -> Page[Bundle]:
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
        s = service()
        return bundle_cases.list_bundles(s.unit_of_work(), query, now=s.clock(), timings=s.timings).value

    @app.get(f"{BUNDLES}/<bundle_id>")
    def read_bundle(bundle_id: BundleId) -> Bundle:
        s = service()
        return bundle_cases.get_bundle(s.unit_of_work(), bundle_id, now=s.clock(), timings=s.timings).value

    @app.post(f"{BUNDLES}/<bundle_id>/send")
    def send_bundle(bundle_id: BundleId) -> Bundle:
        s = service()
        return bundle_cases.send_bundle(s.unit_of_work(), bundle_id, actor=actor(), now=s.clock()).value

    @app.put(f"{BUNDLES}/<bundle_id>/response")
    def record_response(bundle_id: BundleId, request: BundleResponseRequest) -> ResponseRecorded:
        s = service()
        return bundle_cases.record_response(
            s.unit_of_work(), bundle_id, request, actor=actor(), now=s.clock(), config=s.config
        ).value

    # ------------------------------------------------------------------ staff selection, alerts

    @app.get("/api/v2/therapists/eligible")
    def eligible_therapists(
        postcode_prefix: PostcodePrefix, page: PageNumber = 1, limit: PageSize = DEFAULT_LIMIT
    ) -> Page[EligibleTherapist]:
        s = service()
        return bundle_cases.eligible_therapists(
            s.unit_of_work(), postcode_prefix, now=s.clock(), page=page, limit=limit
        ).value

    @app.post("/api/v2/therapists/<therapist_id>/bundles")
    def build_staff_bundle(
        therapist_id: TherapistId, request: StaffBundleRequest, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[StaffBundleResult]:
        del idempotency_key  # the resolver answers a repeated key (platform/idempotency.py)
        s = service()
        result = bundle_cases.staff_bundle(
            s.unit_of_work(), therapist_id, request, actor=actor(), now=s.clock(), config=s.config
        ).value
        return _json(200 if request.dry_run else 201, result)

    @app.get("/api/v2/alerts")
    def list_alerts(limit: PageSize = DEFAULT_LIMIT) -> list[StaffAlert]:
        """Open staff alerts (conflicts and the like), newest first."""
        return bundle_cases.open_alerts(service().unit_of_work(), limit=limit).value
