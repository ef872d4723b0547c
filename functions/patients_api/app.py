"""Patient service REST API (`/api/v2/patients`): register (POST, 201 + Location), list (GET:
filters, sort, page/limit, total), read, full update (PUT), partial update (PATCH: null clears
optional fields), GDPR erasure (DELETE: 409 while a search is unfinished). Erased patients answer
410 Gone on every route; every access is audited with the acting staff member."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.patients import use_cases
from therapy_platform.patients.bootstrap import build
from therapy_platform.patients.domain import patient as model
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.resolver import create_resolver, created, current_actor

logger = Logger(service="patient-service")
app = create_resolver(logger)
service = build()

PatientId = Annotated[uuid.UUID, Path(description="Patient id (UUID)")]


@app.post("/api/v2/patients")
def create_patient(draft: model.PatientDraft) -> Response[model.Patient]:
    patient = use_cases.register_patient(service, draft, actor=current_actor(app)).value
    logger.info("patient registered", extra={"patient_id": str(patient.id)})
    return created(patient, f"/api/v2/patients/{patient.id}")


@app.get("/api/v2/patients")
def read_patients(
    status: Annotated[
        list[model.PatientStatus] | None, Query(description="Repeat to match any of several statuses")
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
        model.PatientSort, Query(description="Sort key; '-' for descending")
    ] = model.PatientSort.CREATED_AT_DESC,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[model.Patient]:
    # The declared parameters are exactly PatientQuery's fields (the resolver refuses others).
    query = model.validated(model.PatientQuery, locals(), location="query")
    return use_cases.list_patients(service, query, actor=current_actor(app)).value


@app.get("/api/v2/patients/<patient_id>")
def read_patient(patient_id: PatientId) -> model.Patient:
    return use_cases.get_patient(service, patient_id, actor=current_actor(app)).value


@app.put("/api/v2/patients/<patient_id>")
def replace(patient_id: PatientId, replacement: model.PatientReplacement) -> model.Patient:
    return use_cases.replace_patient(service, patient_id, replacement, actor=current_actor(app)).value


@app.patch("/api/v2/patients/<patient_id>")
def patch(patient_id: PatientId, changes: model.PatientPatch) -> model.Patient:
    return use_cases.patch_patient(service, patient_id, changes, actor=current_actor(app)).value


@app.delete("/api/v2/patients/<patient_id>")
def erase(
    patient_id: PatientId,
    reason: Annotated[
        str | None, Query(max_length=500, description="Why (e.g. the request's reference); no personal data")
    ] = None,
) -> model.PatientDeleted:
    request = model.validated(model.ErasureRequest, {"reason": reason}, location="query")
    deleted = use_cases.erase_patient(
        service, patient_id, actor=current_actor(app), reason=request.reason
    ).value
    logger.info("patient erased", extra={"patient_id": str(patient_id)})
    return deleted


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
