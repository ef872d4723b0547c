"""Geocoding service REST API (/api/v2/geocoding/...): the routes are the geocoding service's
(`geocoding/adapters/api_routes.py`), served with the service this function builds.

Read-only for the platform's entities: it changes none, so it emits no events. Its only
writes are cache rows in `geocoding_service.geocode_cache`.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.geocoding.adapters.api_routes import register_routes
from therapy_platform.geocoding.bootstrap import build
from therapy_platform.platform.rest.resolver import create_resolver

logger = Logger(service="geocoding-service")
app = create_resolver(logger, access=API_ACCESS_POLICY)
service = build()  # unit tests swap in one built from in-memory fakes
register_routes(app, lambda: service, logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
