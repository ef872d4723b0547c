"""The matching service's part of a personal-data export (GDPR Art. 15/20). Invoked directly
(RequestResponse) by the patient and therapist API functions, never routed or scheduled; an
operator may invoke it with a sample event from events/matching_personal_data/. Answers a
`PersonalDataPart` (contracts/personal_data.py), or a `validation_failed` error naming the
fields of a malformed request."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from therapy_platform.contracts.personal_data import PersonalDataRequest, answer_part
from therapy_platform.matching.adapters.personal_data import SqlMatchingPersonalData
from therapy_platform.platform.database import default_engine

logger = Logger(service="matching-service")
reader = SqlMatchingPersonalData(default_engine)  # unit tests swap in an in-memory reader


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = PersonalDataRequest.model_validate(event)
    except ValidationError as error:
        fields = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in error.errors()]
        logger.warning("invalid personal-data request", extra={"fields": fields})
        return {"error": "validation_failed", "fields": fields}
    part = answer_part("matching", reader, request)
    counts = {kind: len(records) for kind, records in part.records.items()}
    logger.info("personal-data part", extra={"request_id": str(request.request_id), "records": counts})
    return part.model_dump(mode="json")
