"""The patient service's REST routes (`/api/v2/patients`; the API function's resolver registers
them): register (POST, 201 + Location), list (GET: filters, sort, page/limit, total), read, full
update (PUT), partial update (PATCH: null clears optional fields), GDPR erasure (DELETE: 409 while
a search is unfinished), GDPR export (GET .../export: every service's part). Erased patients
answer 410 Gone on every route; every access is audited with the acting staff member. Each route
parses, calls one use case with the service the function built, and answers; domain errors map
to HTTP in the platform resolver. Logs carry ids only, never personal data."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from therapy_platform.contracts.personal_data import PersonalDataExport
from therapy_platform.patients import use_cases
from therapy_platform.patients.domain import patient as model
from therapy_platform.patients.use_cases import PatientService
from therapy_platform.platform.preconditions import entity_tag, require_if_match
from therapy_platform.platform.rest.operations import Tag, operation
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.resolver import (
    IdempotencyKeyHeader,
    IfMatchHeader,
    created,
    current_actor,
    tagged,
)

PATIENTS = "/api/v2/patients"
PatientId = Annotated[uuid.UUID, Path(description="Patient id (UUID)")]
GONE = "The patient was erased (GDPR); their data is gone for good"


def register_routes(
    app: APIGatewayRestResolver, service: Callable[[], PatientService], logger: Logger
) -> None:
    """`service` is asked on every request, so tests can swap the function's service; `logger`
    is the function's, so these routes log like the rest of it."""

    def actor() -> str:
        return current_actor(app)

    @app.post(
        PATIENTS,
        **operation(
            "createPatient",
            Tag.PATIENTS,
            "Register a waiting patient",
            "Stores a new patient with status `open` and locates their address (postcode centroid "
            "when the street cannot be found; `location.needs_review` then says so). Emits "
            "`patient.created`; the matching service knows the patient a moment later, so a search "
            "started right away may briefly answer 404.",
            ok="The registered patient",
            status=201,
            location="The new patient: /api/v2/patients/{id}",
        ),
    )
    def create_patient(
        draft: model.PatientDraft, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[model.Patient]:
        del idempotency_key  # the resolver answers a repeated key (platform/idempotency.py)
        patient = use_cases.register_patient(service(), draft, actor=actor()).value
        logger.info("patient registered", extra={"patient_id": str(patient.id)})
        return created(patient, f"{PATIENTS}/{patient.id}")

    @app.get(
        PATIENTS,
        **operation(
            "listPatients",
            Tag.PATIENTS,
            "List patients",
            "One page of patients matching every filter given, with the total over all pages. "
            "Erased patients are not listed. Every patient shown is audited as read.",
            ok="One page of patients",
        ),
    )
    def read_patients(
        status: Annotated[
            list[model.PatientStatus] | None, Query(description="Repeat to match any of several statuses")
        ] = None,
        postcode_prefix: Annotated[
            str | None, Query(pattern=r"^[0-9]{1,5}$", description="First 1-5 digits of the postcode")
        ] = None,
        insurer: Annotated[
            str | None, Query(max_length=100, description="Part of the insurer's name")
        ] = None,
        q: Annotated[
            str | None,
            Query(max_length=100, description="Free-text search: words in first or last name (any case)"),
        ] = None,
        created_from: Annotated[date | None, Query(description="Registered on or after (UTC date)")] = None,
        created_to: Annotated[date | None, Query(description="Registered on or before (UTC date)")] = None,
        sort: Annotated[
            model.PatientSort, Query(description="Sort key; '-' for descending")
        ] = model.PatientSort.CREATED_AT_DESC,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> Page[model.Patient]:
        parameters = {
            "status": status,
            "postcode_prefix": postcode_prefix,
            "insurer": insurer,
            "q": q,
            "created_from": created_from,
            "created_to": created_to,
            "sort": sort,
            "page": page,
            "limit": limit,
        }
        query = model.validated(model.PatientQuery, parameters, location="query")
        return use_cases.list_patients(service(), query, actor=actor()).value

    @app.get(
        f"{PATIENTS}/<patient_id>",
        **operation(
            "getPatient",
            Tag.PATIENTS,
            "Read one patient",
            "The full record; the read is audited.",
            ok="The patient",
            errors={404: "No patient with this id", 410: GONE},
        ),
    )
    def read_patient(patient_id: PatientId) -> Response[model.Patient]:
        patient = use_cases.get_patient(service(), patient_id, actor=actor()).value
        return tagged(patient, entity_tag(patient))

    @app.get(
        f"{PATIENTS}/<patient_id>/export",
        **operation(
            "exportPatient",
            Tag.PATIENTS,
            "Export everything about a patient (GDPR)",
            "Every datum the platform holds about the patient, from every service, as one JSON "
            "document (right of access, Art. 15; portability, Art. 20): the patient service's "
            "record and audit trail, then each other service's part (matching: searches, "
            "memberships, alerts; communication: contact copy, emails, delivery attempts), table "
            "by table. Each service contributes its own part; the export is audited. When a "
            "service cannot answer, nothing is returned (502) rather than an incomplete export.",
            ok="The patient's data from every service",
            errors={
                404: "No patient with this id",
                410: GONE,
                502: "A service could not contribute its part; retry later",
            },
        ),
    )
    def export(patient_id: PatientId) -> PersonalDataExport:
        exported = use_cases.export_patient(service(), patient_id, actor=actor()).value
        logger.info(
            "patient exported",
            extra={"patient_id": str(patient_id), "services": [part.service for part in exported.parts]},
        )
        return exported

    @app.put(
        f"{PATIENTS}/<patient_id>",
        **operation(
            "replacePatient",
            Tag.PATIENTS,
            "Replace a patient's record",
            "Full update: every editable field is taken from the body (absent optional fields are "
            "cleared). Relocates the address when it changed. Emits `patient.updated` when anything "
            "changed.",
            ok="The patient as stored",
            errors={404: "No patient with this id", 410: GONE},
        ),
    )
    def replace(
        patient_id: PatientId, replacement: model.PatientReplacement, if_match: IfMatchHeader = None
    ) -> Response[model.Patient]:
        expected = require_if_match(if_match, what="patient")
        patient = use_cases.replace_patient(
            service(), patient_id, replacement, actor=actor(), if_match=expected
        ).value
        return tagged(patient, entity_tag(patient))

    @app.patch(
        f"{PATIENTS}/<patient_id>",
        **operation(
            "updatePatient",
            Tag.PATIENTS,
            "Change some of a patient's fields",
            "Partial update: only the fields sent change; `null` clears an optional field. The "
            "merged record must satisfy every rule (422 naming the fields otherwise). Emits "
            "`patient.updated` when anything changed.",
            ok="The patient as stored",
            errors={404: "No patient with this id", 410: GONE},
        ),
    )
    def patch(
        patient_id: PatientId, changes: model.PatientPatch, if_match: IfMatchHeader = None
    ) -> Response[model.Patient]:
        expected = require_if_match(if_match, what="patient")
        patient = use_cases.patch_patient(
            service(), patient_id, changes, actor=actor(), if_match=expected
        ).value
        return tagged(patient, entity_tag(patient))

    @app.delete(
        f"{PATIENTS}/<patient_id>",
        **operation(
            "erasePatient",
            Tag.PATIENTS,
            "Erase a patient (GDPR)",
            "Empties the personal data for good, keeping an anonymised row for statistics, and "
            "emits `patient.deleted`. Refused while the patient's search is unfinished (end the "
            "search first). Afterwards every route answers 410 for this patient.",
            ok="When the patient was erased",
            errors={
                404: "No patient with this id",
                409: "The patient's search is not finished (`patient_status` names the status)",
                410: GONE,
            },
        ),
    )
    def erase(
        patient_id: PatientId,
        reason: Annotated[
            str | None,
            Query(max_length=500, description="Why (e.g. the request's reference); no personal data"),
        ] = None,
    ) -> model.PatientDeleted:
        request = model.validated(model.ErasureRequest, {"reason": reason}, location="query")
        deleted = use_cases.erase_patient(service(), patient_id, actor=actor(), reason=request.reason).value
        logger.info("patient erased", extra={"patient_id": str(patient_id)})
        return deleted
