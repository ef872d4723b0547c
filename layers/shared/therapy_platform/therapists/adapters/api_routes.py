"""The therapist service's REST routes (/api/v2/therapists; the API function's resolver
registers them): create, list, read, replace, patch, delete, block/unblock/reactivate and the
cooling period. Each route parses, calls one use case with the service the function built, and
answers; domain errors map to HTTP in the platform resolver. Logs carry ids only.

Deleting a therapist is a soft delete: the status becomes `inactive` and every field is kept.
Bundles, responses, cooling periods and the matching service's history refer to the therapist,
and staff may still need the contact data to close open bundles; an inactive therapist simply
never receives new bundles. `POST .../reactivate` undoes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from therapy_platform.contracts.languages import LanguageCode
from therapy_platform.contracts.therapy import TherapyProcedure
from therapy_platform.platform.preconditions import entity_tag, require_if_match
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.resolver import (
    IdempotencyKeyHeader,
    IfMatchHeader,
    created,
    current_actor,
    tagged,
)
from therapy_platform.therapists import use_cases
from therapy_platform.therapists.domain.therapist import (
    CoolingPeriod,
    CoolingPeriodChange,
    SortKey,
    StatusChange,
    Therapist,
    TherapistAction,
    TherapistDraft,
    TherapistPatch,
    TherapistStatus,
)

if TYPE_CHECKING:
    from therapy_platform.therapists.bootstrap import TherapistService

BASE: Final = "/api/v2/therapists"
TherapistId = Annotated[uuid.UUID, Path(description="Therapist id (UUID)")]
Flag = Annotated[bool | None, Query()]


def register_routes(
    app: APIGatewayRestResolver, service: Callable[[], TherapistService], logger: Logger
) -> None:
    """`service` is asked on every request, so tests can swap the function's service; `logger`
    is the function's, so these routes log like the rest of it."""

    def actor() -> str:
        return current_actor(app)

    @app.post(BASE)
    def create_therapist(
        draft: TherapistDraft, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[Therapist]:
        del idempotency_key  # the resolver answers a repeated key (platform/idempotency.py)
        s = service()
        therapist = use_cases.create_therapist(
            s.unit_of_work(), s.geocoder(), draft, actor=actor(), now=s.clock()
        ).value
        logger.info("therapist created", extra={"therapist_id": str(therapist.id)})
        return created(therapist, f"{BASE}/{therapist.id}")

    @app.get(BASE)
    def list_therapists(
        status: Annotated[TherapistStatus | None, Query(description="active, blocked or inactive")] = None,
        postcode_prefix: Annotated[
            str | None, Query(pattern=r"^\d{1,5}$", description="1-5 leading digits of the postcode")
        ] = None,
        procedure: Annotated[TherapyProcedure | None, Query(description="Offers this procedure")] = None,
        language: Annotated[LanguageCode | None, Query(description="Speaks this ISO 639-1 language")] = None,
        offers_group_therapy: Flag = None,
        potentially_available: Flag = None,
        in_cooling_period: Annotated[
            bool | None,
            Query(description="true: cooling period ends after today; false: contactable today"),
        ] = None,
        q: Annotated[
            str | None, Query(max_length=100, description="Free text in name, city or email")
        ] = None,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        sort: Annotated[SortKey, Query(description="Sort key; a leading - sorts descending")] = "created_at",
    ) -> Page[Therapist]:
        filters = {
            "status": status,
            "postcode_prefix": postcode_prefix,
            "procedure": procedure,
            "language": language,
            "offers_group_therapy": offers_group_therapy,
            "potentially_available": potentially_available,
            "in_cooling_period": in_cooling_period,
            "q": q,
            "page": page,
            "limit": limit,
            "sort": sort,
        }
        s = service()
        items, total = use_cases.list_therapists(s.unit_of_work(), filters, now=s.clock()).value
        return Page[Therapist](items=list(items), total=total, page=page, limit=limit)

    @app.get(f"{BASE}/<therapist_id>")
    def read_therapist(therapist_id: TherapistId) -> Response[Therapist]:
        therapist = use_cases.get_therapist(service().unit_of_work(), therapist_id).value
        return tagged(therapist, entity_tag(therapist))

    @app.put(f"{BASE}/<therapist_id>")
    def replace_therapist(
        therapist_id: TherapistId, draft: TherapistDraft, if_match: IfMatchHeader = None
    ) -> Response[Therapist]:
        expected = require_if_match(if_match, what="therapist")
        s = service()
        therapist = use_cases.replace_therapist(
            s.unit_of_work(),
            s.geocoder(),
            therapist_id,
            draft,
            actor=actor(),
            now=s.clock(),
            if_match=expected,
        ).value
        return tagged(therapist, entity_tag(therapist))

    @app.patch(f"{BASE}/<therapist_id>")
    def patch_therapist(
        therapist_id: TherapistId, patch: TherapistPatch, if_match: IfMatchHeader = None
    ) -> Response[Therapist]:
        expected = require_if_match(if_match, what="therapist")
        s = service()
        therapist = use_cases.patch_therapist(
            s.unit_of_work(),
            s.geocoder(),
            therapist_id,
            patch,
            actor=actor(),
            now=s.clock(),
            if_match=expected,
        ).value
        return tagged(therapist, entity_tag(therapist))

    @app.delete(f"{BASE}/<therapist_id>")
    def delete_therapist(
        therapist_id: TherapistId,
        reason: Annotated[
            str | None, Query(max_length=500, description="Why (kept in the audit log)")
        ] = None,
    ) -> Therapist:
        """Soft delete: status inactive, data kept (see the module docstring). Repeating it is harmless."""
        return change_status(
            therapist_id, TherapistAction.DEACTIVATE, (reason or "").strip() or "deleted by staff"
        )

    @app.post(f"{BASE}/<therapist_id>/block")
    def block_therapist(therapist_id: TherapistId, change: StatusChange) -> Therapist:
        return change_status(therapist_id, TherapistAction.BLOCK, change.reason)

    @app.post(f"{BASE}/<therapist_id>/unblock")
    def unblock_therapist(therapist_id: TherapistId, change: StatusChange) -> Therapist:
        return change_status(therapist_id, TherapistAction.UNBLOCK, change.reason)

    @app.post(f"{BASE}/<therapist_id>/reactivate")
    def reactivate_therapist(therapist_id: TherapistId, change: StatusChange) -> Therapist:
        return change_status(therapist_id, TherapistAction.REACTIVATE, change.reason)

    def change_status(therapist_id: uuid.UUID, action: TherapistAction, reason: str) -> Therapist:
        s = service()
        therapist = use_cases.change_status(
            s.unit_of_work(), therapist_id, action, reason=reason, actor=actor(), now=s.clock()
        ).value
        logger.info(
            "therapist status changed", extra={"therapist_id": str(therapist_id), "action": str(action)}
        )
        return therapist

    @app.get(f"{BASE}/<therapist_id>/cooling-period")
    def read_cooling_period(therapist_id: TherapistId) -> CoolingPeriod:
        s = service()
        return use_cases.get_cooling_period(s.unit_of_work(), therapist_id, now=s.clock()).value

    @app.put(f"{BASE}/<therapist_id>/cooling-period")
    def set_cooling_period(therapist_id: TherapistId, change: CoolingPeriodChange) -> CoolingPeriod:
        s = service()
        return use_cases.set_cooling_period(
            s.unit_of_work(), therapist_id, change, actor=actor(), now=s.clock()
        ).value
