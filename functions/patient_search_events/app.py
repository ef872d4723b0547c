"""Patient service: the patient's status follows their search (`search.status_changed`, a
`contracts.searches` payload delivered through SQS at least once; applying is idempotent, a
redelivery changes nothing)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.searches import SearchStatusChanged
from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
from therapy_platform.patients.use_cases import follow_search_status
from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.consumer import Handled, bus_consumer
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.events import BusMessage
from therapy_platform.platform.geography.locator import GeocodingService
from therapy_platform.platform.geography.nominatim import NominatimClient
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.sqs import SqsQueueAdapter

logger = Logger(service="patient-service")


def follow(message: BusMessage) -> Handled:
    change = SearchStatusChanged.model_validate(message.envelope.payload)
    # In process: the postcode table, and Nominatim when NOMINATIM_ENABLED (no cache schema here).
    geocoder = GeocodingService(postcodes=postcode_directory(), address_geocoder=NominatimClient.from_env())
    result = follow_search_status(
        SqlPatientUnitOfWork(default_engine()),
        change.patient_id,
        change.status.value,
        geocoder=geocoder,
        now=utc_now(),
    )
    detail = {
        "patient_id": str(change.patient_id),
        "search_status": change.status.value,
        "changed": bool(result and result[1]),
    }
    return Handled("", message.envelope.event_type, "done", detail)


consumer = bus_consumer(
    "patient-search-events",
    {"search.status_changed": follow},
    queues=SqsQueueAdapter.from_env,
    dead_letter_queue_url=os.environ.get("DEAD_LETTER_QUEUE_URL") or None,
    logger=logger,
)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.handle(event)
