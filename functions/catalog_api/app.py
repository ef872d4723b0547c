"""GET /api/v2/catalog: the code catalogue (contracts/codes.py), every enumeration of the API
with German and English labels. Built once per environment; cacheable: a strong ETag (the hash
of the body), `Cache-Control: private` (it answers authenticated requests only, so no shared
cache may hand it out) and 304 for a client whose `If-None-Match` names the current tag."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.contracts.codes import code_catalog
from therapy_platform.platform.preconditions import not_modified, strong_tag
from therapy_platform.platform.rest.operations import Tag, operation
from therapy_platform.platform.rest.resolver import create_resolver

logger = Logger(service="catalog")
app = create_resolver(logger, access=API_ACCESS_POLICY)

CATALOG: Final = code_catalog()
BODY: Final = CATALOG.model_dump_json()
ETAG: Final = strong_tag(BODY)
# Labels change only with a deployment; an hour keeps a reworded label from lingering long.
CACHE_CONTROL: Final = "private, max-age=3600"


@app.get(
    "/api/v2/catalog",
    **operation(
        "getCatalog",
        Tag.ADMIN,
        "Every code of the API with its labels",
        "Each enumeration the API uses (symptoms, languages, genders, insurance types, procedures, "
        "statuses, skip reasons, ...) with German and English labels, so a frontend shows the same "
        "words as the emails. Cache it: the answer carries a strong ETag and `Cache-Control: "
        "private`; send `If-None-Match` to get 304 while it is current.",
        ok="The catalogue",
        also={304: "Not modified: the copy named by If-None-Match is current"},
    ),
)
def read_catalog(
    if_none_match: Annotated[
        str | None, Header(alias="If-None-Match", description="The ETag of the copy you hold: 304 if current")
    ] = None,
) -> Response[Any]:  # 304 has no body; the responses above document the 200
    headers = {"ETag": ETAG, "Cache-Control": CACHE_CONTROL}
    if not_modified(if_none_match, ETAG):
        return Response(status_code=int(HTTPStatus.NOT_MODIFIED), headers=headers)
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=CATALOG, headers=headers
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
