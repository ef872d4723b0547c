"""Therapist service REST API (/api/v2/therapists).

Deleting a therapist is a soft delete: the status becomes `inactive` and every field is kept.
Bundles, responses, cooling periods and the matching service's history refer to the therapist,
and staff may still need the contact data to close open bundles; an inactive therapist simply
never receives new bundles. `POST .../reactivate` undoes it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.languages import LanguageCode
from therapy_platform.contracts.therapy import TherapyProcedure
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.resolver import create_resolver, created, current_actor
from therapy_platform.therapists import use_cases
from therapy_platform.therapists.bootstrap import build
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

logger = Logger(service="therapist-service")
app = create_resolver(logger)
service = build()

BASE: Final = "/api/v2/therapists"
TherapistId = Annotated[uuid.UUID, Path(description="Therapist id (UUID)")]
Flag = Annotated[bool | None, Query()]


@app.post(BASE)
def create_therapist(draft: TherapistDraft) -> Response[Therapist]:
    therapist = use_cases.create_therapist(
        service.unit_of_work(), service.geocoder(), draft, actor=current_actor(app), now=service.clock()
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
        bool | None, Query(description="true: cooling period ends after today; false: contactable today")
    ] = None,
    q: Annotated[str | None, Query(max_length=100, description="Free text in name, city or email")] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    sort: Annotated[SortKey, Query(description="Sort key; a leading - sorts descending")] = "created_at",
) -> Page[Therapist]:
    filters = dict(locals())  # exactly the declared query parameters, by name
    items, total = use_cases.list_therapists(service.unit_of_work(), filters, now=service.clock()).value
    return Page[Therapist](items=list(items), total=total, page=page, limit=limit)


@app.get(f"{BASE}/<therapist_id>")
def read_therapist(therapist_id: TherapistId) -> Therapist:
    return use_cases.get_therapist(service.unit_of_work(), therapist_id).value


@app.put(f"{BASE}/<therapist_id>")
def replace_therapist(therapist_id: TherapistId, draft: TherapistDraft) -> Therapist:
    return use_cases.replace_therapist(
        service.unit_of_work(),
        service.geocoder(),
        therapist_id,
        draft,
        actor=current_actor(app),
        now=service.clock(),
    ).value


@app.patch(f"{BASE}/<therapist_id>")
def patch_therapist(therapist_id: TherapistId, patch: TherapistPatch) -> Therapist:
    return use_cases.patch_therapist(
        service.unit_of_work(),
        service.geocoder(),
        therapist_id,
        patch,
        actor=current_actor(app),
        now=service.clock(),
    ).value


@app.delete(f"{BASE}/<therapist_id>")
def delete_therapist(
    therapist_id: TherapistId,
    reason: Annotated[str | None, Query(max_length=500, description="Why (kept in the audit log)")] = None,
) -> Therapist:
    """Soft delete: status inactive, data kept (see the module docstring). Repeating it is harmless."""
    return _change_status(
        therapist_id, TherapistAction.DEACTIVATE, (reason or "").strip() or "deleted by staff"
    )


@app.post(f"{BASE}/<therapist_id>/block")
def block_therapist(therapist_id: TherapistId, change: StatusChange) -> Therapist:
    return _change_status(therapist_id, TherapistAction.BLOCK, change.reason)


@app.post(f"{BASE}/<therapist_id>/unblock")
def unblock_therapist(therapist_id: TherapistId, change: StatusChange) -> Therapist:
    return _change_status(therapist_id, TherapistAction.UNBLOCK, change.reason)


@app.post(f"{BASE}/<therapist_id>/reactivate")
def reactivate_therapist(therapist_id: TherapistId, change: StatusChange) -> Therapist:
    return _change_status(therapist_id, TherapistAction.REACTIVATE, change.reason)


def _change_status(therapist_id: uuid.UUID, action: TherapistAction, reason: str) -> Therapist:
    therapist = use_cases.change_status(
        service.unit_of_work(),
        therapist_id,
        action,
        reason=reason,
        actor=current_actor(app),
        now=service.clock(),
    ).value
    logger.info("therapist status changed", extra={"therapist_id": str(therapist_id), "action": str(action)})
    return therapist


@app.get(f"{BASE}/<therapist_id>/cooling-period")
def read_cooling_period(therapist_id: TherapistId) -> CoolingPeriod:
    return use_cases.get_cooling_period(service.unit_of_work(), therapist_id, now=service.clock()).value


@app.put(f"{BASE}/<therapist_id>/cooling-period")
def set_cooling_period(therapist_id: TherapistId, change: CoolingPeriodChange) -> CoolingPeriod:
    return use_cases.set_cooling_period(
        service.unit_of_work(), therapist_id, change, actor=current_actor(app), now=service.clock()
    ).value


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
