"""The therapist service's contacts function (contracts/contacts.py): the contact card of one
therapist for the communication service, which looks names and addresses up when it writes or
schedules a call instead of keeping copies from events. Invoked directly (RequestResponse) by
the communication functions, never routed or scheduled; an operator may invoke it with
events/therapist_contacts/. Logs ids and the card's state only, never its content."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.contacts import parse_request
from therapy_platform.platform.database import default_engine
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.use_cases import contact_card

logger = Logger(service="therapist-service")


def unit_of_work() -> SqlTherapistUnitOfWork:  # unit tests swap in an in-memory one
    return SqlTherapistUnitOfWork(default_engine())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event)
    if request is None:
        logger.warning("invalid contact request")
        return {"error": "validation_failed"}
    card = contact_card(unit_of_work(), request.id)
    logger.info("therapist contact card", extra={"therapist_id": str(request.id), "state": card.state.value})
    return card.model_dump(mode="json")
