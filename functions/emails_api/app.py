"""Emails REST API for staff (communication service), rules in domain/staff_emails.py:

- GET  /api/v2/emails: filters `status`, `kind`, `recipient_type`, `recipient_id`,
  `bundle_reference`, `created_from`, `created_to`; newest first, `Page[EmailSummary]` (no bodies);
- GET  /api/v2/emails/{email_id}: one email with subject, HTML and text, status and every
  delivery attempt (the read is audited);
- POST /api/v2/emails: an ad-hoc email to exactly one patient or therapist (by id, through the
  contact read models): subject + Markdown body rendered to safe HTML in the shared layout,
  stored, audited and queued like every email; 201 (200 when `idempotency_key` names an email
  sent before); 404 unknown recipient, 409 erased or without email address;
- GET  /api/v2/patients/{patient_id}/communication,
  GET  /api/v2/therapists/{therapist_id}/communication: that person's emails (no bodies),
  replies and calls, newest first (audited; 404 for an id this service never heard of).

Unknown query parameters are refused (422).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.adapters.state import SqlCommunicationStateUnitOfWork
from therapy_platform.communication.bootstrap import default_staff_email_context
from therapy_platform.communication.domain.emails import (
    BUNDLE_REFERENCE_PATTERN,
    EmailKind,
    EmailStatus,
    RecipientType,
)
from therapy_platform.communication.domain.staff_emails import (
    AdHocEmailRequest,
    EmailDetail,
    EmailQuery,
    EmailSummary,
    PersonCommunication,
    PersonType,
)
from therapy_platform.communication.state_ports import CommunicationStateUnitOfWork
from therapy_platform.communication.use_cases import staff_emails as use_cases
from therapy_platform.communication.use_cases.staff_emails import StaffEmailContext
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.query import refuse_unknown_parameters
from therapy_platform.platform.rest.resolver import create_resolver, current_actor
from therapy_platform.platform.validation import validate_as

logger = Logger(service="communication-service")
app = create_resolver(logger)

EMAILS: Final = "/api/v2/emails"
EmailId = Annotated[uuid.UUID, Path(description="Email id (UUID)")]
PageQuery = Annotated[int, Query(ge=1, le=MAX_PAGE)]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
CreatedQuery = Annotated[
    str | None,
    Query(
        max_length=40,
        description="A day (2026-11-23: that whole day in Germany) or a date-time (without a zone: "
        "German wall-clock time); created_to is exclusive for date-times",
    ),
]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Dependencies:
    """The adapters the routes use; unit tests swap in in-memory fakes (and a fixed clock)."""

    unit_of_work: Callable[[], CommunicationStateUnitOfWork]
    context: Callable[[], StaffEmailContext]
    clock: Callable[[], datetime] = utc_now


deps = Dependencies(
    unit_of_work=lambda: SqlCommunicationStateUnitOfWork(default_engine()),
    context=default_staff_email_context,
)


@app.get(EMAILS)
def list_emails(
    status: Annotated[EmailStatus | None, Query(description="draft, queued, sending, sent or failed")] = None,
    kind: Annotated[
        EmailKind | None, Query(description="The template, e.g. bundle_inquiry or ad_hoc")
    ] = None,
    recipient_type: Annotated[RecipientType | None, Query(description="patient, therapist or staff")] = None,
    recipient_id: Annotated[uuid.UUID | None, Query(description="The patient's or therapist's id")] = None,
    bundle_reference: Annotated[str | None, Query(pattern=BUNDLE_REFERENCE_PATTERN)] = None,
    created_from: CreatedQuery = None,
    created_to: CreatedQuery = None,
    page: PageQuery = 1,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[EmailSummary]:
    refuse_unknown_parameters(app, EmailQuery.model_fields)
    query = validate_as(
        EmailQuery,
        {
            "status": status,
            "kind": kind,
            "recipient_type": recipient_type,
            "recipient_id": recipient_id,
            "bundle_reference": bundle_reference,
            "created_from": created_from,
            "created_to": created_to,
            "page": page,
            "limit": limit,
        },
        location="query",
    )
    items, total = use_cases.list_emails(deps.unit_of_work(), query)
    return Page[EmailSummary](items=items, total=total, page=page, limit=limit)


@app.get(f"{EMAILS}/<email_id>")
def read_email(email_id: EmailId) -> EmailDetail:
    refuse_unknown_parameters(app)
    return use_cases.read_email(deps.unit_of_work(), email_id, actor=current_actor(app), now=deps.clock())


@app.post(EMAILS)
def send_email(request: AdHocEmailRequest) -> Response[EmailDetail]:
    refuse_unknown_parameters(app)
    email, created = use_cases.send_ad_hoc_email(deps.context(), request, actor=current_actor(app))
    logger.info(
        "ad-hoc email queued" if created else "ad-hoc email found by its idempotency key",
        extra={"email_id": str(email.id), "recipient_type": request.recipient_type.value},
    )
    return Response(
        status_code=int(HTTPStatus.CREATED if created else HTTPStatus.OK),
        content_type=content_types.APPLICATION_JSON,
        body=EmailDetail.model_validate(email.model_dump()),
        headers={"Location": f"{EMAILS}/{email.id}"},
    )


def _history(person_type: PersonType, person_id: uuid.UUID, page: int, limit: int) -> PersonCommunication:
    refuse_unknown_parameters(app, frozenset({"page", "limit"}))
    return use_cases.person_communication(
        deps.unit_of_work(),
        person_type,
        person_id,
        page=page,
        limit=limit,
        actor=current_actor(app),
        now=deps.clock(),
    )


@app.get("/api/v2/patients/<patient_id>/communication")
def patient_communication(
    patient_id: Annotated[uuid.UUID, Path(description="Patient id (UUID)")],
    page: PageQuery = 1,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> PersonCommunication:
    return _history(PersonType.PATIENT, patient_id, page, limit)


@app.get("/api/v2/therapists/<therapist_id>/communication")
def therapist_communication(
    therapist_id: Annotated[uuid.UUID, Path(description="Therapist id (UUID)")],
    page: PageQuery = 1,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> PersonCommunication:
    return _history(PersonType.THERAPIST, therapist_id, page, limit)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
