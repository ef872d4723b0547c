"""The geocoding service's REST routes (/api/v2/geocoding/...; the API function's resolver
registers them):

POST /api/v2/geocoding/geocode              {street?, postcode, city?} -> GeocodeResult
GET  /api/v2/geocoding/reverse?lat=&lon=    -> ReverseResult
GET  /api/v2/geocoding/postcodes/{postcode} -> PostcodeInfo (404 unknown postcode)
POST /api/v2/geocoding/distance             {from, to, mode} -> DistanceResult (422 unknown side)

Each route calls one method of the service the function built; logs carry the postcode only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from therapy_platform.geocoding.domain.models import (
    DistanceRequest,
    DistanceResult,
    GeocodeResult,
    PostcodeInfo,
    ReverseResult,
)
from therapy_platform.geocoding.use_cases import GeocodingService
from therapy_platform.platform.geography.addresses import AddressQuery, Point
from therapy_platform.platform.rest.operations import Tag, operation


def register_routes(
    app: APIGatewayRestResolver, service: Callable[[], GeocodingService], logger: Logger
) -> None:
    """`service` is asked on every request, so tests can swap the function's service; `logger`
    is the function's, so these routes log like the rest of it."""

    @app.post(
        "/api/v2/geocoding/geocode",
        **operation(
            "geocodeAddress",
            Tag.GEOCODING,
            "Locate an address",
            "Coordinates of a German address: the street address when it can be found (cached), "
            "else the postcode's centroid with `needs_review` set. Without a street only the "
            "centroid is used.",
            ok="Where the address lies and how precisely",
        ),
    )
    def geocode(query: AddressQuery) -> GeocodeResult:
        result = service().geocode(query).value
        if result.needs_review:
            logger.info("address could not be located", extra={"postcode": query.postcode})
        return result

    @app.get(
        "/api/v2/geocoding/reverse",
        **operation(
            "reverseGeocode",
            Tag.GEOCODING,
            "Find the address at a point",
            "The nearest postcode within reach of a point and, when the address lookup is enabled, "
            "the address there.",
            ok="The nearest postcode and address",
        ),
    )
    def reverse(
        lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="WGS84 latitude")],
        lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="WGS84 longitude")],
    ) -> ReverseResult:
        return service().reverse(Point(lat=lat, lon=lon)).value

    @app.get(
        "/api/v2/geocoding/postcodes/<postcode>",
        **operation(
            "getPostcode",
            Tag.GEOCODING,
            "Read a postcode",
            "A German postcode's centroid and place name from the shipped postcode table.",
            ok="The postcode",
            errors={404: "The postcode is not in the German postcode table"},
        ),
    )
    def postcode(
        postcode: Annotated[str, Path(pattern=r"^\d{5}$", description="German postcode (PLZ), 5 digits")],
    ) -> PostcodeInfo:
        return service().postcode_info(postcode).value

    @app.post(
        "/api/v2/geocoding/distance",
        **operation(
            "getDistance",
            Tag.GEOCODING,
            "Distance and travel time between two places",
            "Geodesic kilometres and estimated door-to-door minutes by car or public transport; each "
            "side is a postcode, an address or a point. 422 names a side that cannot be located.",
            ok="The distance and travel time",
        ),
    )
    def distance(request: DistanceRequest) -> DistanceResult:
        return service().distance(request).value
