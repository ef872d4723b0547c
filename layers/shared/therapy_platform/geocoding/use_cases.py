"""Geocoding use cases: locate an address (through the shared locate chain, with this service's
cache), reverse-geocode a point, look up a postcode, measure the distance between two places.

Locating is the chain of therapy_platform.platform.geography.locator with the cache in front
(an earlier Nominatim answer younger than its TTL, "not found" included). Reverse lookups name
the nearest postcode centroid within REVERSE_POSTCODE_RADIUS_KM and the address Nominatim gives
for the point, cached the same way; Nominatim down answers `address_lookup: unavailable`.

Distances are geodesic km with a travel-time estimate per mode (car, transit) and the origin's
area class (urban / suburban / rural, from the density of postcode centroids around it):
  route km  = geodesic km x detour factor;
  minutes   = fixed minutes (to and from the car; walk to the stop and wait)
              + the route through three speed bands (first 5 route km, up to 20, beyond);
              rounded up; 0 km is 0 minutes.
(the factors live in platform/geography/locations.py TRAVEL_PROFILES_BY_AREA; docs/geocoding.md
and docs/matching.md explain the choice; matching uses the same function). An unknown location
on either side is refused (UnknownLocationSideError, HTTP 422 naming the side): a distance is never invented.

The service changes no entity of the platform, so its outcomes carry no events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from therapy_platform.geocoding.domain.models import (
    REVERSE_POSTCODE_RADIUS_KM,
    UNLOCATABLE_NOTE,
    AddressLookup,
    DistanceRequest,
    DistanceResult,
    GeocodeResult,
    NearestPostcode,
    PlaceRef,
    PostcodeInfo,
    ResolvedPlace,
    ReverseResult,
    UnknownLocationSideError,
)
from therapy_platform.geocoding.ports import GeocodingCache
from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.errors import NotFoundError
from therapy_platform.platform.geography.addresses import (
    AddressQuery,
    GeocoderUnavailableError,
    LocationSource,
    Point,
    ReverseAddress,
)
from therapy_platform.platform.geography.locations import estimate_travel
from therapy_platform.platform.geography.locator import AddressLocator, CacheTtl, read_cache, write_cache
from therapy_platform.platform.geography.ports import AddressGeocoder, PostcodeLookup
from therapy_platform.platform.geography.postcodes import area_density_of
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.problems import FieldError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unlocated:
    """Why a place has no location: `reason` for the answer's detail (English), `message` for its
    field entry (German)."""

    reason: str
    message: str


@dataclass
class GeocodingService:
    """The geocoding service's use cases over its ports: `bootstrap.build()` wires the deployed
    one (PostgreSQL cache, Nominatim when enabled); unit tests build one from fakes."""

    postcodes: PostcodeLookup
    address_geocoder: AddressGeocoder | None = None
    cache: GeocodingCache | None = None
    ttl: CacheTtl = field(default_factory=CacheTtl)
    clock: Callable[[], datetime] = field(default=utc_now)

    @property
    def locator(self) -> AddressLocator:
        """The shared locate chain, with this service's cache in front."""
        return AddressLocator(self.postcodes, self.address_geocoder, self.cache, self.ttl, self.clock)

    # ------------------------------------------------------------------ addresses

    def geocode(self, query: AddressQuery) -> Outcome[GeocodeResult]:
        located = self.locator.find(query)
        return Outcome(
            GeocodeResult(
                query=query,
                location=located.location,
                source=located.source,
                display_name=located.display_name,
                needs_review=located.needs_review,
            )
        )

    # ------------------------------------------------------------------ points

    def reverse(self, point: Point) -> Outcome[ReverseResult]:
        nearest = self.postcodes.nearest(point.lat, point.lon, within_km=REVERSE_POSTCODE_RADIUS_KM)
        postcode = (
            NearestPostcode(
                postcode=nearest[0], km=round(nearest[1], 2), location=self.postcodes.centroid(nearest[0])
            )
            if nearest is not None
            else None
        )
        address, lookup, source = self._reverse_address(point)
        return Outcome(
            ReverseResult(
                point=point, postcode=postcode, address=address, address_lookup=lookup, address_source=source
            )
        )

    def _reverse_address(
        self, point: Point
    ) -> tuple[ReverseAddress | None, AddressLookup, LocationSource | None]:
        key, now = point.cache_key(), self.clock()
        hit = read_cache(self.cache, lambda cache: cache.get_reverse(key, now=now))
        if hit is not None:
            if hit.value is None:
                return None, AddressLookup.NOT_FOUND, LocationSource.CACHE
            return hit.value, AddressLookup.FOUND, LocationSource.CACHE
        if self.address_geocoder is None:
            return None, AddressLookup.DISABLED, None
        try:
            address = self.address_geocoder.reverse(point)
        except GeocoderUnavailableError as error:
            logger.warning("address geocoder unavailable for a reverse lookup: %s", error.message)
            return None, AddressLookup.UNAVAILABLE, None
        write_cache(
            self.cache, lambda cache: cache.put_reverse(key, address, now=now, ttl=self.ttl.of(address))
        )
        if address is None:
            return None, AddressLookup.NOT_FOUND, LocationSource.NOMINATIM
        return address, AddressLookup.FOUND, LocationSource.NOMINATIM

    # ------------------------------------------------------------------ postcodes

    def postcode_info(self, postcode: str) -> Outcome[PostcodeInfo]:
        if postcode not in self.postcodes:
            raise NotFoundError(f"postcode {postcode} is not in the German postcode table")
        location = self.postcodes.centroid(postcode)
        if not location.is_known:
            return Outcome(
                PostcodeInfo(postcode=postcode, locatable=False, location=location, note=UNLOCATABLE_NOTE)
            )
        return Outcome(PostcodeInfo(postcode=postcode, locatable=True, location=location))

    # ------------------------------------------------------------------ distances

    def resolve(self, place: PlaceRef) -> tuple[ResolvedPlace, Unlocated | None]:
        """The place's location and, when it is unknown, why."""
        if place.point is not None:
            return ResolvedPlace(
                kind="point", location=place.point.as_location(), source=LocationSource.POINT
            ), None
        if place.postcode is not None:
            location = self.postcodes.centroid(place.postcode)
            resolved = ResolvedPlace(
                kind="postcode",
                location=location,
                source=LocationSource.POSTCODE if location.is_known else LocationSource.NONE,
            )
            if location.is_known:
                return resolved, None
            if place.postcode in self.postcodes:
                return resolved, Unlocated(
                    "its postcode has no known centroid",
                    "Postleitzahl ohne bekannte Koordinaten",
                )
            return resolved, Unlocated(
                "its postcode is not in the German postcode table",
                "Postleitzahl nicht im deutschen Postleitzahlenverzeichnis",
            )
        assert place.address is not None  # PlaceRef holds exactly one of the three
        located = self.locator.find(place.address)
        resolved = ResolvedPlace(
            kind="address",
            location=located.location,
            source=located.source,
            display_name=located.display_name,
        )
        if located.location.is_known:
            return resolved, None
        return resolved, Unlocated(
            "the address could not be geocoded and its postcode has no known centroid",
            "Adresse nicht gefunden, Postleitzahl ohne bekannte Koordinaten",
        )

    def distance(self, request: DistanceRequest) -> Outcome[DistanceResult]:
        origin, origin_reason = self.resolve(request.origin)
        destination, destination_reason = self.resolve(request.destination)
        unknown = [
            (side, reason)
            for side, reason in (("from", origin_reason), ("to", destination_reason))
            if reason is not None
        ]
        if unknown:
            sides = [side for side, _ in unknown]
            raise UnknownLocationSideError(
                f"no distance: the location of {' and '.join(repr(side) for side in sides)} is unknown ("
                + "; ".join(f"{side}: {why.reason}" for side, why in unknown)
                + ")",
                details={"sides": sides},
                errors=[
                    FieldError(
                        side, "body", "unknown_location", f"Ort kann nicht bestimmt werden: {why.message}"
                    )
                    for side, why in unknown
                ],
            )
        # The origin's area class, as matching uses the patient's (domain/travel.py).
        area = area_density_of(origin.location)
        estimate = estimate_travel(origin.location, destination.location, request.mode, area)
        return Outcome(
            DistanceResult(
                origin=origin,
                destination=destination,
                mode=request.mode,
                area=estimate.area,
                km=estimate.km,
                minutes=estimate.minutes,
            )
        )
