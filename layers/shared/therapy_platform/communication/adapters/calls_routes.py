"""The communication API's REST routes for staff (the communication function's resolver
registers them): a bundle's communication history and the phone calls to make.

- GET /api/v2/communications?bundle_reference=B123: emails, calls and replies of a bundle,
  newest first;
- GET /api/v2/phone-calls: calls by `status`, `date` (a day in Germany), `therapist_id`,
  `bundle_reference`, in slot order;
- GET /api/v2/phone-calls/{call_id}: one call;
- POST /api/v2/phone-calls/{call_id}/complete: outcome + notes, emits `phone_call.completed`
  (409 unless the call is scheduled);
- GET /api/v2/reply-reviews: the staff review list of reply intake, newest first: messages to a
  reply address that were not attached to a bundle (forged or unauthenticated senders, SES
  spam/virus verdicts, unknown bundles, oversized or unreadable messages), with the reasons.

Each route parses, calls one use case with the service the function built, and answers; domain
errors map to HTTP in the platform resolver. Logs carry ids and the outcome, never the notes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from therapy_platform.communication.domain.emails import BUNDLE_REFERENCE_PATTERN
from therapy_platform.communication.domain.phone_calls import (
    CallCompletion,
    PhoneCallQuery,
    PhoneCallStatus,
    PhoneCallTask,
)
from therapy_platform.communication.domain.replies import ReviewedReply
from therapy_platform.communication.domain.tracking import BundleCommunication
from therapy_platform.communication.use_cases import phone_calls as use_cases
from therapy_platform.communication.use_cases import replies as reply_cases
from therapy_platform.platform.rest.operations import Tag, operation
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.resolver import current_actor
from therapy_platform.platform.validation import validate_as

if TYPE_CHECKING:
    from therapy_platform.communication.bootstrap import CommunicationService

CALLS: Final = "/api/v2/phone-calls"
CallId = Annotated[uuid.UUID, Path(description="Phone call id (UUID)")]
PageQuery = Annotated[int, Query(ge=1, le=MAX_PAGE)]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Reference = Annotated[
    str, Query(pattern=BUNDLE_REFERENCE_PATTERN, description='The bundle\'s reference, e.g. "B1042"')
]


def register_routes(
    app: APIGatewayRestResolver, service: Callable[[], CommunicationService], logger: Logger
) -> None:
    """`service` is asked on every request, so tests can swap the function's service; `logger`
    is the function's, so these routes log like the rest of it."""

    @app.get(
        "/api/v2/communications",
        **operation(
            "getBundleCommunication",
            Tag.COMMUNICATION,
            "A bundle's communication history",
            "Emails, phone calls and replies about one bundle (by its reference, e.g. B1042), newest first.",
            ok="The bundle's history",
        ),
    )
    def bundle_communication(
        bundle_reference: Reference, page: PageQuery = 1, limit: LimitQuery = DEFAULT_LIMIT
    ) -> BundleCommunication:
        return use_cases.bundle_communication(
            service().unit_of_work(), bundle_reference, page=page, limit=limit
        )

    @app.get(
        CALLS,
        **operation(
            "listPhoneCalls",
            Tag.COMMUNICATION,
            "List phone calls to make",
            "Phone-call tasks (inquiries to therapists without an email address, follow-ups) matching "
            "every filter given, in slot order.",
            ok="One page of phone calls",
        ),
    )
    def list_calls(
        status: Annotated[
            PhoneCallStatus | None, Query(description="scheduled, completed or cancelled")
        ] = None,
        date: Annotated[
            dt.date | None, Query(description="Calls whose slot starts on this day (Germany)")
        ] = None,
        therapist_id: Annotated[uuid.UUID | None, Query()] = None,
        bundle_reference: Annotated[str | None, Query(pattern=BUNDLE_REFERENCE_PATTERN)] = None,
        page: PageQuery = 1,
        limit: LimitQuery = DEFAULT_LIMIT,
    ) -> Page[PhoneCallTask]:
        parameters = {
            "status": status,
            "date": date,
            "therapist_id": therapist_id,
            "bundle_reference": bundle_reference,
            "page": page,
            "limit": limit,
        }
        query = validate_as(PhoneCallQuery, parameters, location="query")
        return use_cases.list_calls(service().unit_of_work(), query)

    @app.get(
        "/api/v2/reply-reviews",
        **operation(
            "listReplyReviews",
            Tag.COMMUNICATION,
            "List replies that need a review",
            "Messages to a reply address that were not attached to a bundle (unauthenticated or "
            "forged senders, spam or virus verdicts, unknown bundles, oversized or unreadable "
            "messages), with the reasons, newest first.",
            ok="One page of reviewed replies",
        ),
    )
    def reply_reviews(page: PageQuery = 1, limit: LimitQuery = DEFAULT_LIMIT) -> Page[ReviewedReply]:
        return reply_cases.review_list(service().unit_of_work(), page=page, limit=limit)

    @app.get(
        f"{CALLS}/<call_id>",
        **operation(
            "getPhoneCall",
            Tag.COMMUNICATION,
            "Read one phone call",
            "The call task with its slot, purpose and, once made, its outcome.",
            ok="The phone call",
            errors={404: "No phone call with this id"},
        ),
    )
    def read_call(call_id: CallId) -> PhoneCallTask:
        return use_cases.get_call(service().unit_of_work(), call_id)

    @app.post(
        f"{CALLS}/<call_id>/complete",
        **operation(
            "completePhoneCall",
            Tag.COMMUNICATION,
            "Record a phone call's outcome",
            "Completes a scheduled call with its outcome and notes. Emits `phone_call.completed`.",
            ok="The completed phone call",
            errors={404: "No phone call with this id", 409: "The call is not scheduled (`current_status`)"},
        ),
    )
    def complete_call(call_id: CallId, completion: CallCompletion) -> PhoneCallTask:
        s = service()
        task = use_cases.complete_call(
            s.unit_of_work(), call_id, completion, actor=current_actor(app), now=s.clock()
        ).value
        logger.info(
            "phone call completed", extra={"call_id": str(call_id), "outcome": completion.outcome.value}
        )
        return task
