"""Patient service REST API (`/api/v2/patients`).

POST   /api/v2/patients                register (201 + Location)
GET    /api/v2/patients                list: filters, sort, page/limit, total
GET    /api/v2/patients/{patient_id}   read
PUT    /api/v2/patients/{patient_id}   full update
PATCH  /api/v2/patients/{patient_id}   partial update (null clears optional fields)
DELETE /api/v2/patients/{patient_id}   GDPR erasure (409 while a search is unfinished)

Erased patients answer 410 Gone on every route. Every access is audited with the acting staff
member (`current_actor`). Unknown query parameters are refused (422) so that a mistyped filter
never silently lists everyone.
"""

from __future__ import annotations

import uuid
from datetime import date
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
from therapy_platform.patients.domain.patient import (
    ErasureRequest,
    Patient,
    PatientDeleted,
    PatientDraft,
    PatientErasedError,
    PatientPatch,
    PatientQuery,
    PatientReplacement,
    PatientSort,
    PatientStatus,
    validated,
)
from therapy_platform.patients.use_cases import (
    erase_patient,
    get_patient,
    list_patients,
    patch_patient,
    register_patient,
    replace_patient,
)
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.query import refuse_unknown_parameters
from therapy_platform.platform.rest.resolver import create_resolver, current_actor, error_response
from therapy_platform.platform.rest.services import default_dependencies

logger = Logger(service="patient-service")
app = create_resolver(logger)

PatientId = Annotated[uuid.UUID, Path(description="Patient id (UUID)")]

# The adapters the routes use; unit tests swap in in-memory fakes (and a fixed clock).
deps = default_dependencies(SqlPatientUnitOfWork)


@app.exception_handler(PatientErasedError)  # type: ignore[untyped-decorator]
def _erased(error: PatientErasedError) -> Response[dict[str, Any]]:
    # More specific than the shared NotFoundError -> 404 mapping: the record existed.
    return error_response(HTTPStatus.GONE, error.code, error.message, **error.details)


@app.post("/api/v2/patients")
def create_patient(draft: PatientDraft) -> Response[Patient]:
    refuse_unknown_parameters(app)
    patient, event = register_patient(
        deps.unit_of_work(), draft, geocoder=deps.geocoder(), now=deps.clock(), actor=current_actor(app)
    )
    logger.info("patient registered", extra={"patient_id": str(patient.id)})
    deps.publish_now([event], logger)
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=patient,
        headers={"Location": f"/api/v2/patients/{patient.id}"},
    )


@app.get("/api/v2/patients")
def read_patients(
    status: Annotated[
        list[PatientStatus] | None, Query(description="Repeat to match any of several statuses")
    ] = None,
    postcode_prefix: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,5}$", description="First 1-5 digits of the postcode")
    ] = None,
    insurer: Annotated[str | None, Query(max_length=100, description="Part of the insurer's name")] = None,
    name: Annotated[
        str | None, Query(max_length=100, description="Words found in first or last name (any case)")
    ] = None,
    created_from: Annotated[date | None, Query(description="Registered on or after (UTC date)")] = None,
    created_to: Annotated[date | None, Query(description="Registered on or before (UTC date)")] = None,
    sort: Annotated[
        PatientSort, Query(description="Sort key; '-' for descending")
    ] = PatientSort.CREATED_AT_DESC,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[Patient]:
    refuse_unknown_parameters(app, PatientQuery.model_fields)
    query = validated(
        PatientQuery,
        {
            "status": tuple(status or ()),
            "postcode_prefix": postcode_prefix,
            "insurer": insurer,
            "name": name,
            "created_from": created_from,
            "created_to": created_to,
            "sort": sort,
            "page": page,
            "limit": limit,
        },
        location="query",
    )
    items, total = list_patients(deps.unit_of_work(), query, actor=current_actor(app), now=deps.clock())
    return Page[Patient](items=items, total=total, page=query.page, limit=query.limit)


@app.get("/api/v2/patients/<patient_id>")
def read_patient(patient_id: PatientId) -> Patient:
    refuse_unknown_parameters(app)
    return get_patient(deps.unit_of_work(), patient_id, actor=current_actor(app), now=deps.clock())


@app.put("/api/v2/patients/<patient_id>")
def replace(patient_id: PatientId, replacement: PatientReplacement) -> Patient:
    refuse_unknown_parameters(app)
    patient, event = replace_patient(
        deps.unit_of_work(),
        patient_id,
        replacement,
        geocoder=deps.geocoder(),
        now=deps.clock(),
        actor=current_actor(app),
    )
    deps.publish_now([event], logger)
    return patient


@app.patch("/api/v2/patients/<patient_id>")
def patch(patient_id: PatientId, changes: PatientPatch) -> Patient:
    refuse_unknown_parameters(app)
    patient, event = patch_patient(
        deps.unit_of_work(),
        patient_id,
        changes,
        geocoder=deps.geocoder(),
        now=deps.clock(),
        actor=current_actor(app),
    )
    deps.publish_now([event], logger)
    return patient


@app.delete("/api/v2/patients/<patient_id>")
def erase(
    patient_id: PatientId,
    reason: Annotated[
        str | None, Query(max_length=500, description="Why (e.g. the request's reference); no personal data")
    ] = None,
) -> PatientDeleted:
    refuse_unknown_parameters(app, ["reason"])
    request = validated(ErasureRequest, {"reason": reason}, location="query")
    deleted, event = erase_patient(
        deps.unit_of_work(), patient_id, now=deps.clock(), actor=current_actor(app), reason=request.reason
    )
    logger.info("patient erased", extra={"patient_id": str(patient_id)})
    deps.publish_now([event], logger)
    return deleted


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
