"""GET /health: reports whether the database, the event bus and the Kafka broker answer."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.platform.health import HealthReport, deployed_checks, health_report
from therapy_platform.platform.rest.operations import Tag
from therapy_platform.platform.rest.resolver import create_resolver

logger = Logger(service="health")
app = create_resolver(logger, access=API_ACCESS_POLICY)
checks = deployed_checks()


@app.get(
    "/health",
    operation_id="getHealth",
    summary="Is the platform healthy?",
    description="Whether the database, the event bus and the Kafka broker answer, with each one's "
    "latency, for load balancers and monitoring; no personal data.",
    tags=[Tag.ADMIN.value],
    responses={
        200: {"description": "Every component answers"},
        503: {"description": "At least one component does not answer (the body says which)"},
    },
)
def health() -> Response[HealthReport]:
    report = health_report(checks)
    return Response(
        status_code=200 if report.healthy else 503, content_type=content_types.APPLICATION_JSON, body=report
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
