"""GET /api/v2/openapi.json (the committed OpenAPI document, generated from the code by
infra/tools/openapi.py) and GET /api/v2/docs (Swagger UI over it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.platform.rest.resolver import create_resolver

logger = Logger(service="api-docs")
app = create_resolver(logger, access=API_ACCESS_POLICY)
# Read at cold start: a package without its document fails there, not on the first request.
OPENAPI_DOCUMENT = (Path(__file__).parent / "openapi.json").read_text(encoding="utf-8")

SWAGGER_UI = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Therapy matching platform API</title>
  <link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
  <script>
    // Relative URL: works behind any stage or custom domain.
    window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui"});
  </script>
</body>
</html>
"""


@app.get("/api/v2/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=OPENAPI_DOCUMENT)


@app.get("/api/v2/docs", include_in_schema=False)
def swagger_ui() -> Response[str]:
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=SWAGGER_UI)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
