"""Catch-all route (ANY /{proxy+}): answers every path no other function owns with a JSON 404,
so clients get the same error shape for an unknown route as for everything else."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.platform.rest.resolver import create_resolver

logger = Logger(service="api")
# No routes: the shared not-found handler answers everything.
app = create_resolver(logger, access=API_ACCESS_POLICY)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
