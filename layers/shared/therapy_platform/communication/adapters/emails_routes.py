"""The emails API's REST routes for staff (the emails function's resolver registers them; rules
in domain/staff_emails.py): GET /api/v2/emails (filtered, newest first, no bodies) and
/api/v2/emails/{id} (bodies and attempts; audited); POST /api/v2/emails, an ad-hoc email to one
patient or therapist (201; the first answer again for a repeated `Idempotency-Key` header; 404 unknown
recipient, 409 erased or without address); GET /api/v2/patients/{id}/communications and
/api/v2/therapists/{id}/communications, one person's history (audited). Each route parses, calls
one use case with the context the function built, and answers; domain errors map to HTTP in the
platform resolver. Logs carry ids and kinds only, never addresses or content."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from therapy_platform.communication.domain import emails as mail
from therapy_platform.communication.domain import staff_emails as rules
from therapy_platform.communication.use_cases import staff_emails as use_cases
from therapy_platform.platform.rest.operations import Tag, operation
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.resolver import IdempotencyKeyHeader, created, current_actor
from therapy_platform.platform.validation import validate_as

EMAILS: Final = "/api/v2/emails"
PageQuery = Annotated[int, Query(ge=1, le=MAX_PAGE)]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
CreatedQuery = Annotated[str | None, Query(max_length=40, description=rules.CREATED_DESCRIPTION)]
Status = Annotated[mail.EmailStatus | None, Query(description="draft, queued, sending, sent or failed")]
Kind = Annotated[mail.EmailKind | None, Query(description="The template, e.g. bundle_inquiry or ad_hoc")]
Recipient = Annotated[mail.RecipientType | None, Query(description="patient, therapist or staff")]
RecipientId = Annotated[uuid.UUID | None, Query(description="The patient's or therapist's id")]
Reference = Annotated[str | None, Query(pattern=mail.BUNDLE_REFERENCE_PATTERN)]
EmailId = Annotated[uuid.UUID, Path(description="Email id (UUID)")]
PatientId = Annotated[uuid.UUID, Path(description="Patient id (UUID)")]
TherapistId = Annotated[uuid.UUID, Path(description="Therapist id (UUID)")]
History = rules.PersonCommunication


def register_routes(
    app: APIGatewayRestResolver, service: Callable[[], use_cases.StaffEmailContext], logger: Logger
) -> None:
    """`service` is asked on every request, so tests can swap the function's context; `logger`
    is the function's, so these routes log like the rest of it."""

    def actor() -> str:
        return current_actor(app)

    @app.get(
        EMAILS,
        **operation(
            "listEmails",
            Tag.COMMUNICATION,
            "List emails",
            "One page of emails (without their bodies) matching every filter given, newest first, "
            "with the total over all pages.",
            ok="One page of emails",
        ),
    )
    def list_emails(
        status: Status = None,
        kind: Kind = None,
        recipient_type: Recipient = None,
        recipient_id: RecipientId = None,
        bundle_reference: Reference = None,
        created_from: CreatedQuery = None,
        created_to: CreatedQuery = None,
        page: PageQuery = 1,
        limit: LimitQuery = DEFAULT_LIMIT,
    ) -> Page[rules.EmailSummary]:
        parameters = {
            "status": status,
            "kind": kind,
            "recipient_type": recipient_type,
            "recipient_id": recipient_id,
            "bundle_reference": bundle_reference,
            "created_from": created_from,
            "created_to": created_to,
            "page": page,
            "limit": limit,
        }
        query = validate_as(rules.EmailQuery, parameters, location="query")
        return use_cases.list_emails(service().unit_of_work(), query)

    @app.get(
        f"{EMAILS}/<email_id>",
        **operation(
            "getEmail",
            Tag.COMMUNICATION,
            "Read one email",
            "The email as it was (or will be) sent, with its delivery attempts; the read is audited.",
            ok="The email",
            errors={404: "No email with this id"},
        ),
    )
    def read_email(email_id: EmailId) -> rules.EmailDetail:
        s = service()
        return use_cases.read_email(s.unit_of_work(), email_id, actor=actor(), now=s.clock())

    @app.post(
        EMAILS,
        **operation(
            "sendEmail",
            Tag.COMMUNICATION,
            "Send an email to a patient or therapist",
            "Queues one email written by staff (Markdown) to one patient or therapist. Sending again "
            "with the same `idempotency_key` returns the first email (200) instead of a second one.",
            ok="The queued email",
            status=201,
            location="The email: /api/v2/emails/{id}",
            also={200: "An email sent before with the same idempotency key"},
            errors={
                404: "The recipient is not known to the communication service",
                409: "The recipient was erased or has no email address (`reason`)",
            },
        ),
    )
    def send_email(
        request: rules.AdHocEmailRequest, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[rules.EmailDetail]:
        # The resolver answers a repeated key; the email keeps it too (racing retries).
        result = use_cases.send_ad_hoc_email(
            service(), request, actor=actor(), idempotency_key=idempotency_key
        ).value
        logger.info(
            "ad-hoc email queued" if result.created else "ad-hoc email found by its idempotency key",
            extra={"email_id": str(result.email.id), "recipient_type": request.recipient_type.value},
        )
        email = rules.EmailDetail.model_validate(result.email.model_dump())
        response = created(email, f"{EMAILS}/{email.id}")
        if not result.created:  # found by its idempotency key: nothing new, but where it lives
            response.status_code = HTTPStatus.OK
        return response

    def history(kind: rules.PersonType, person_id: uuid.UUID, page: int, limit: int) -> History:
        s = service()
        return use_cases.person_communication(
            s.unit_of_work(), kind, person_id, page=page, limit=limit, actor=actor(), now=s.clock()
        )

    @app.get(
        "/api/v2/patients/<patient_id>/communications",
        **operation(
            "getPatientCommunication",
            Tag.COMMUNICATION,
            "A patient's communication history",
            "Emails and replies to and from the patient, newest first; the read is audited.",
            ok="The patient's history",
            errors={404: "The patient is not known to the communication service"},
        ),
    )
    def patient_communication(
        patient_id: PatientId, page: PageQuery = 1, limit: LimitQuery = DEFAULT_LIMIT
    ) -> History:
        return history(rules.PersonType.PATIENT, patient_id, page, limit)

    @app.get(
        "/api/v2/therapists/<therapist_id>/communications",
        **operation(
            "getTherapistCommunication",
            Tag.COMMUNICATION,
            "A therapist's communication history",
            "Emails, replies and phone calls with the therapist, newest first; the read is audited.",
            ok="The therapist's history",
            errors={404: "The therapist is not known to the communication service"},
        ),
    )
    def therapist_communication(
        therapist_id: TherapistId, page: PageQuery = 1, limit: LimitQuery = DEFAULT_LIMIT
    ) -> History:
        return history(rules.PersonType.THERAPIST, therapist_id, page, limit)
