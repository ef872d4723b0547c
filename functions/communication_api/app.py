"""Communication service REST API for staff: a bundle's communication history and the phone
calls to make.

- GET /api/v2/communications?bundle_reference=B123: emails, calls and replies of a bundle,
  newest first;
- GET /api/v2/phone-calls: calls by `status`, `date` (a day in Germany), `therapist_id`,
  `bundle_reference`, in slot order;
- GET /api/v2/phone-calls/{call_id}: one call;
- POST /api/v2/phone-calls/{call_id}/complete: outcome + notes, emits `phone_call.completed`
  (409 unless the call is scheduled).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.bootstrap import build_api
from therapy_platform.communication.domain.emails import BUNDLE_REFERENCE_PATTERN
from therapy_platform.communication.domain.phone_calls import (
    CallCompletion,
    PhoneCallQuery,
    PhoneCallStatus,
    PhoneCallTask,
)
from therapy_platform.communication.domain.tracking import BundleCommunication
from therapy_platform.communication.use_cases import phone_calls as use_cases
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.resolver import create_resolver, current_actor
from therapy_platform.platform.validation import validate_as

logger = Logger(service="communication-service")
app = create_resolver(logger)
service = build_api()

CALLS: Final = "/api/v2/phone-calls"
CallId = Annotated[uuid.UUID, Path(description="Phone call id (UUID)")]
PageQuery = Annotated[int, Query(ge=1, le=MAX_PAGE)]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Reference = Annotated[
    str, Query(pattern=BUNDLE_REFERENCE_PATTERN, description='The bundle\'s reference, e.g. "B1042"')
]


@app.get("/api/v2/communications")
def bundle_communication(
    bundle_reference: Reference, page: PageQuery = 1, limit: LimitQuery = DEFAULT_LIMIT
) -> BundleCommunication:
    return use_cases.bundle_communication(service.unit_of_work(), bundle_reference, page=page, limit=limit)


@app.get(CALLS)
def list_calls(
    status: Annotated[PhoneCallStatus | None, Query(description="scheduled, completed or cancelled")] = None,
    date: Annotated[
        dt.date | None, Query(description="Calls whose slot starts on this day (Germany)")
    ] = None,
    therapist_id: Annotated[uuid.UUID | None, Query()] = None,
    bundle_reference: Annotated[str | None, Query(pattern=BUNDLE_REFERENCE_PATTERN)] = None,
    page: PageQuery = 1,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[PhoneCallTask]:
    query = validate_as(PhoneCallQuery, locals(), location="query")  # the parameters above, as given
    return use_cases.list_calls(service.unit_of_work(), query)


@app.get(f"{CALLS}/<call_id>")
def read_call(call_id: CallId) -> PhoneCallTask:
    return use_cases.get_call(service.unit_of_work(), call_id)


@app.post(f"{CALLS}/<call_id>/complete")
def complete_call(call_id: CallId, completion: CallCompletion) -> PhoneCallTask:
    actor, now = current_actor(app), service.clock()
    task = use_cases.complete_call(service.unit_of_work(), call_id, completion, actor=actor, now=now).value
    logger.info("phone call completed", extra={"call_id": str(call_id), "outcome": completion.outcome.value})
    return task


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
