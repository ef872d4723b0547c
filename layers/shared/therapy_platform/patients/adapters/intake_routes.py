"""The staff view of the self-registration intake: `GET /api/v2/registration-intake/parked`
lists the Kafka records of `patient-registrations` that did not become a patient (forged or
unsigned, malformed, invalid with the failing fields named, or taken while the intake was
paused), newest first. The records hold no content of the registration
(docs/registration-intake.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Query

from therapy_platform.patients.domain.registration import ParkedRegistration
from therapy_platform.patients.ports import ParkedRegistrations
from therapy_platform.patients.registration_intake import list_parked
from therapy_platform.platform.rest.operations import Tag, operation
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page

PARKED = "/api/v2/registration-intake/parked"


def register_intake_routes(
    app: APIGatewayRestResolver, parked: Callable[[], ParkedRegistrations], logger: Logger
) -> None:
    @app.get(
        PARKED,
        **operation(
            "listParkedRegistrations",
            Tag.PATIENTS,
            "List parked self-registrations",
            "Registrations from the website (Kafka topic `patient-registrations`) that did not "
            "become a patient: `unsigned`, `bad_signature` (forged or altered), `malformed`, "
            "`invalid` (the failing fields as `path: code`) or `intake_paused` (flag "
            "`self_registration_intake` off). Each names its topic, partition and offset and the "
            "SHA-256 of its value, never its content. Newest first.",
            ok="One page of parked registrations",
        ),
    )
    def read_parked(
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> Page[ParkedRegistration]:
        result = list_parked(parked(), page=page, limit=limit).value
        logger.info("parked registrations listed", extra={"total": result.total})
        return result
