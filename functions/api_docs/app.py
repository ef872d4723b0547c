"""GET /api/v2/openapi.json (the committed OpenAPI document, generated from the code by
infra/tools/openapi.py), GET /api/v2/docs (Swagger UI over it) and GET /api/v2/docs/{asset}
(Swagger UI's files, shipped with Powertools: no CDN, works offline; platform/rest/swagger_ui.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.platform.errors import NotFoundError
from therapy_platform.platform.rest import swagger_ui
from therapy_platform.platform.rest.resolver import create_resolver

logger = Logger(service="api-docs")
app = create_resolver(logger, access=API_ACCESS_POLICY)
# Read at cold start: a package without its document or assets fails there, not on a request.
OPENAPI_DOCUMENT = (Path(__file__).parent / "openapi.json").read_text(encoding="utf-8")
ASSETS = swagger_ui.load_assets()
PAGE = swagger_ui.page("Therapy matching platform API", ASSETS)
SECURITY_HEADERS = {
    "Content-Security-Policy": swagger_ui.CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
}


@app.get("/api/v2/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=OPENAPI_DOCUMENT)


@app.get("/api/v2/docs", include_in_schema=False)
def swagger_page() -> Response[str]:
    return Response(
        status_code=200, content_type="text/html; charset=utf-8", body=PAGE, headers=dict(SECURITY_HEADERS)
    )


@app.get("/api/v2/docs/<asset>", include_in_schema=False)
def swagger_asset(asset: str) -> Response[str]:
    found = ASSETS.get(asset)
    if found is None:
        raise NotFoundError(f"no file {asset} in the API documentation")
    # They change only with the Powertools version (a new deployment): a day in the cache is fine.
    headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"}
    return Response(status_code=200, content_type=found.content_type, body=found.body, headers=headers)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
