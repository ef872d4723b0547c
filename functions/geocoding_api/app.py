"""Geocoding service REST API (/api/v2/geocoding/...):

POST /api/v2/geocoding/geocode              {street?, postcode, city?} -> GeocodeResult
GET  /api/v2/geocoding/reverse?lat=&lon=    -> ReverseResult
GET  /api/v2/geocoding/postcodes/{postcode} -> PostcodeInfo (404 unknown postcode)
POST /api/v2/geocoding/distance             {from, to, mode} -> DistanceResult (422 unknown side)

Read-only for the platform's entities: it changes none, so it emits no events. Its only
writes are cache rows in `geocoding_service.geocode_cache`.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.geocoding.bootstrap import build
from therapy_platform.geocoding.domain.models import (
    DistanceRequest,
    DistanceResult,
    GeocodeResult,
    PostcodeInfo,
    ReverseResult,
)
from therapy_platform.platform.geography.addresses import AddressQuery, Point
from therapy_platform.platform.rest.resolver import create_resolver

logger = Logger(service="geocoding-service")
app = create_resolver(logger, access=API_ACCESS_POLICY)
service = build()


@app.post("/api/v2/geocoding/geocode")
def geocode(query: AddressQuery) -> GeocodeResult:
    result = service.geocode(query).value
    if result.needs_review:
        logger.info("address could not be located", extra={"postcode": query.postcode})
    return result


@app.get("/api/v2/geocoding/reverse")
def reverse(
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="WGS84 latitude")],
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="WGS84 longitude")],
) -> ReverseResult:
    return service.reverse(Point(lat=lat, lon=lon)).value


@app.get("/api/v2/geocoding/postcodes/<postcode>")
def postcode(
    postcode: Annotated[str, Path(pattern=r"^\d{5}$", description="German postcode (PLZ), 5 digits")],
) -> PostcodeInfo:
    return service.postcode_info(postcode).value


@app.post("/api/v2/geocoding/distance")
def distance(request: DistanceRequest) -> DistanceResult:
    return service.distance(request).value


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
