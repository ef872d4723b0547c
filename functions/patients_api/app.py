"""Patient service REST API (/api/v2/patients): the routes are the patient service's
(`patients/adapters/api_routes.py`), served with the service this function builds."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.patients import bootstrap
from therapy_platform.patients.adapters.api_routes import register_routes
from therapy_platform.patients.adapters.intake_routes import register_intake_routes
from therapy_platform.platform.rest.resolver import create_resolver

logger = Logger(service="patient-service")
idempotency_keys = bootstrap.idempotency_keys()  # unit tests swap in an in-memory store
app = create_resolver(logger, access=API_ACCESS_POLICY, idempotency=lambda: idempotency_keys)
service = bootstrap.build()  # unit tests swap in one built from in-memory fakes
register_routes(app, lambda: service, logger)
parked = bootstrap.parked_registrations()  # self-registrations that did not become patients
register_intake_routes(app, lambda: parked, logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
