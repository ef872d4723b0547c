"""Analytics REST API for staff (/api/v2/analytics/...: bundle efficiency, therapist
preferences, the placement funnel): the routes are the matching service's
(`matching/adapters/analytics_routes.py`), answered from its own schema, read only."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.matching import bootstrap
from therapy_platform.matching.adapters.analytics_routes import register_routes
from therapy_platform.platform.rest.resolver import create_resolver

logger = Logger(service="matching-analytics")
app = create_resolver(logger, access=API_ACCESS_POLICY)
service = bootstrap.build_analytics()  # unit tests swap in one built from in-memory fakes
register_routes(app, lambda: service)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
