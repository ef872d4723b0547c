"""Therapist service: the directory import reports (/api/v2/imports). The routes are the
import's (`therapists/imports/adapters/api_routes.py`), served with the reports of the service
this function builds."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.platform.rest.resolver import create_resolver
from therapy_platform.therapists.bootstrap import build_directory_import
from therapy_platform.therapists.imports.adapters.api_routes import register_routes

logger = Logger(service="therapist-service")
app = create_resolver(logger, access=API_ACCESS_POLICY)
service = build_directory_import()  # unit tests swap in one built from in-memory fakes
register_routes(app, lambda: service.reports())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
