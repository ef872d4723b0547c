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
from therapy_platform.platform.rest.operations import Tag, operation
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

    @app.post(
        SEARCHES,
        **operation(
            "startSearch",
            Tag.SEARCHES,
            "Start a patient's search",
            "Opens an active search for a registered patient; from the next round on, the patient "
            "can be offered to therapists. A patient registered seconds ago may not have reached the "
            "matching service yet (404: retry shortly). Emits `search.created`.",
            ok="The new search",
            status=201,
            location="The new search: /api/v2/patient-searches/{id}",
            errors={
                404: "The patient is not known to the matching service (yet)",
                409: "The patient was erased, or already has an unfinished search (`search_id` names it)",
            },
        ),
    )
    def create_search(
        draft: SearchDraft, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[PatientSearch]:
        del idempotency_key  # the resolver answers a repeated key (platform/idempotency.py)
        s = service()
        search = search_cases.create_search(s.unit_of_work(), draft, actor=actor(), now=s.clock()).value
        return created(search, f"{SEARCHES}/{search.id}")

    @app.get(
        SEARCHES,
        **operation(
            "listSearches",
            Tag.SEARCHES,
            "List patient searches",
            "One page of searches matching every filter given, with the total over all pages.",
            ok="One page of searches",
        ),
    )
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

    @app.get(
        f"{SEARCHES}/<search_id>",
        **operation(
            "getSearch",
            Tag.SEARCHES,
            "Read one search",
            "The search with its exclusions, contacts used and the bundles that listed it.",
            ok="The search in detail",
            errors={404: "No search with this id"},
        ),
    )
    def read_search(search_id: SearchId) -> Response[PatientSearchDetail]:
        s = service()
        search = search_cases.get_search(s.unit_of_work(), search_id, now=s.clock()).value
        return tagged(search, search_tag(search))

    @app.patch(
        f"{SEARCHES}/<search_id>",
        **operation(
            "updateSearch",
            Tag.SEARCHES,
            "Pause, resume, cancel or change a search",
            "Changes the status (active, paused, placed, cancelled; a placed search goes back to "
            "active only with a reason), excludes or readmits therapists. Emits "
            "`search.status_changed` when the status changes.",
            ok="The search as stored",
            errors={
                404: "No search with this id",
                409: "The status change is not allowed from the current status, a readmitted "
                "therapist was not excluded, or the patient has another unfinished search",
            },
        ),
    )
    def change_search(
        search_id: SearchId, patch: SearchPatch, if_match: IfMatchHeader = None
    ) -> Response[PatientSearch]:
        expected = require_if_match(if_match, what="patient search")
        s = service()
        search = search_cases.change_search(
            s.unit_of_work(), search_id, patch, actor=actor(), now=s.clock(), if_match=expected
        ).value
        return tagged(search, search_tag(search))

    @app.post(
        f"{SEARCHES}/<search_id>/contact-requests",
        **operation(
            "addSearchContacts",
            Tag.SEARCHES,
            "Add to a search's contact budget",
            "Raises how many therapists may be contacted for this patient in total.",
            ok="The search as stored",
            errors={404: "No search with this id", 409: "The search is not active or paused"},
        ),
    )
    def add_contacts(search_id: SearchId, request: ContactRequest) -> PatientSearch:
        s = service()
        return search_cases.add_contacts(
            s.unit_of_work(), search_id, request, actor=actor(), now=s.clock()
        ).value

    # ------------------------------------------------------------------ bundles

    @app.post(
        f"{BUNDLES}/create",
        **operation(
            "createBundles",
            Tag.BUNDLES,
            "Run a bundle round now",
            "Plans bundles for every eligible therapist, as the scheduled round on weekday mornings "
            "does. With `dry_run` nothing is written and every decision is explained (200); otherwise "
            "the bundles are created as drafts (201), and sent at once with `send_immediately`.",
            ok="The round's bundles (written)",
            status=201,
            also={200: "The dry run: what a round would do, nothing written"},
        ),
    )
    def create_bundles(
        request: RoundRequest, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[RoundResult]:
        """A round on demand. `dry_run` writes nothing and explains every decision."""
        del idempotency_key  # the resolver answers a repeated key (platform/idempotency.py)
        s = service()
        result = bundle_cases.run_round(
            s.unit_of_work(),
            request,
            actor=actor(),
            trigger="api",
            now=s.clock(),
            config=s.config,
            metrics=s.metrics,
            flags=s.flags,
            preferences=s.preferences,
        ).value
        return _json(200 if request.dry_run else 201, result)

    @app.get(
        BUNDLES,
        **operation(
            "listBundles",
            Tag.BUNDLES,
            "List bundles",
            "One page of bundles matching every filter given, newest first by default, with the total "
            "over all pages. `needs_follow_up` finds unanswered bundles past the reminder and conflicts.",
            ok="One page of bundles",
        ),
    )
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

    @app.get(
        f"{BUNDLES}/<bundle_id>",
        **operation(
            "getBundle",
            Tag.BUNDLES,
            "Read one bundle",
            "The bundle with its members (the patients it offers) and their outcomes.",
            ok="The bundle",
            errors={404: "No bundle with this id"},
        ),
    )
    def read_bundle(bundle_id: BundleId) -> Bundle:
        s = service()
        return bundle_cases.get_bundle(s.unit_of_work(), bundle_id, now=s.clock(), timings=s.timings).value

    @app.post(
        f"{BUNDLES}/<bundle_id>/send",
        **operation(
            "sendBundle",
            Tag.BUNDLES,
            "Send a draft bundle",
            "Sends the inquiry: an email when the therapist has an address, else a phone-call task. "
            "Emits `bundle.sent`.",
            ok="The sent bundle",
            errors={
                404: "No bundle with this id",
                409: "The bundle is not a draft, has no pending member left, or its therapist cannot be "
                "contacted",
            },
        ),
    )
    def send_bundle(bundle_id: BundleId) -> Bundle:
        s = service()
        return bundle_cases.send_bundle(s.unit_of_work(), bundle_id, actor=actor(), now=s.clock()).value

    @app.put(
        f"{BUNDLES}/<bundle_id>/response",
        **operation(
            "recordBundleResponse",
            Tag.BUNDLES,
            "Record the therapist's response",
            "One outcome per member of the bundle (accepted, rejected, no response). Acceptances place "
            "patients (a patient accepted by two therapists raises a conflict alert and a follow-up "
            "bundle), other members' searches continue; the therapist's cooling period starts. "
            "Sending the same response again changes nothing.",
            ok="What the response changed: placements, conflicts, withdrawals, the cooling date",
            errors={
                400: "The members listed are not exactly the bundle's members",
                404: "No bundle with this id",
                409: "The bundle is not sent (a draft, expired or discarded), or was already answered "
                "with a different response",
            },
        ),
    )
    def record_response(bundle_id: BundleId, request: BundleResponseRequest) -> ResponseRecorded:
        s = service()
        return bundle_cases.record_response(
            s.unit_of_work(), bundle_id, request, actor=actor(), now=s.clock(), config=s.config
        ).value

    # ------------------------------------------------------------------ staff selection, alerts

    @app.get(
        "/api/v2/therapists/eligible",
        **operation(
            "listEligibleTherapists",
            Tag.BUNDLES,
            "List therapists who may get a bundle",
            "The staff selection list for a region: one row per practice (its owner), contactable "
            "today, with whether they may have free places.",
            ok="One page of eligible therapists",
        ),
    )
    def eligible_therapists(
        postcode_prefix: PostcodePrefix, page: PageNumber = 1, limit: PageSize = DEFAULT_LIMIT
    ) -> Page[EligibleTherapist]:
        s = service()
        return bundle_cases.eligible_therapists(
            s.unit_of_work(), postcode_prefix, now=s.clock(), page=page, limit=limit
        ).value

    @app.post(
        "/api/v2/therapists/<therapist_id>/bundles",
        **operation(
            "createStaffBundle",
            Tag.BUNDLES,
            "Build a bundle for one therapist",
            "Staff pick a therapist; the platform picks the best-fitting patients by the round's rules. "
            "With `dry_run` nothing is written (200); otherwise the bundle is created as a draft "
            "(201), and sent at once with `send_immediately`.",
            ok="The bundle built (written)",
            status=201,
            location="The new bundle: /api/v2/bundles/{id}",
            also={200: "The dry run: the bundle that would be built, nothing written"},
            errors={
                404: "The therapist is not known to the matching service",
                409: "A search named is not active or not within reach of the therapist, or no bundle "
                "can be built for the therapist now (`reason` says why)",
            },
        ),
    )
    def build_staff_bundle(
        therapist_id: TherapistId, request: StaffBundleRequest, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[StaffBundleResult]:
        del idempotency_key  # the resolver answers a repeated key (platform/idempotency.py)
        s = service()
        result = bundle_cases.staff_bundle(
            s.unit_of_work(),
            therapist_id,
            request,
            actor=actor(),
            now=s.clock(),
            config=s.config,
            flags=s.flags,
        ).value
        if result.bundle is not None and result.bundle.bundle_id is not None:  # written: where it lives
            return created(result, f"{BUNDLES}/{result.bundle.bundle_id}")
        return _json(200, result)

    @app.get(
        "/api/v2/alerts",
        **operation(
            "listAlerts",
            Tag.BUNDLES,
            "List open staff alerts",
            "Open alerts staff must act on (e.g. a patient accepted by two therapists), newest first.",
            ok="The open alerts",
        ),
    )
    def list_alerts(limit: PageSize = DEFAULT_LIMIT) -> list[StaffAlert]:
        """Open staff alerts (conflicts and the like), newest first."""
        return bundle_cases.open_alerts(service().unit_of_work(), limit=limit).value
