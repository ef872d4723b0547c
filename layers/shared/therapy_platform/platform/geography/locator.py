"""Geocoding use cases: locate an address, reverse-geocode a point, look up a postcode, measure
the distance between two places.

Locating an address goes, in order:
  1. the cache (an earlier Nominatim answer younger than its TTL, "not found" included);
  2. Nominatim, when an address geocoder is configured (NOMINATIM_ENABLED=true);
     a match more than MAX_ADDRESS_OFFSET_KM from the postcode's centroid is discarded;
  3. the postcode centroid from the shipped table;
  4. unknown (flagged for staff via `needs_review`).
Only an address with a street goes past step 0: a postcode alone is its centroid.
Nominatim being down never fails a lookup; the answer is then the postcode centroid and
nothing is cached, so the address is asked for again next time.

Distances are geodesic km with a travel-time estimate per mode (car, transit):
  route km  = geodesic km x detour factor (car 1.3, transit 1.4);
  minutes   = fixed minutes (car 5: to and from the car; transit 10: walk to the stop and wait)
              + the route through speed bands: car 25 km/h for the first 5 route km, 50 km/h
                up to 20 km, 90 km/h beyond; transit 15 / 30 / 60 km/h over the same bands;
              rounded up; 0 km is 0 minutes.
(the factors live in domain/geo.py TRAVEL_PROFILES; docs/geocoding.md explains the choice).
An unknown location on either side is refused (UnknownLocationSideError, HTTP 422 naming the
side): a distance is never invented.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from pydantic import ValidationError

from therapy_platform.platform.errors import DependencyUnavailableError, NotFoundError
from therapy_platform.platform.geography.addresses import (
    MAX_ADDRESS_OFFSET_KM,
    REVERSE_POSTCODE_RADIUS_KM,
    AddressLookup,
    AddressMatch,
    AddressQuery,
    DistanceRequest,
    DistanceResult,
    GeocodeResult,
    GeocoderUnavailableError,
    LocationSource,
    NearestPostcode,
    PlaceRef,
    Point,
    PostcodeInfo,
    ResolvedPlace,
    ReverseAddress,
    ReverseResult,
    UnknownLocationSideError,
)
from therapy_platform.platform.geography.locations import (
    Location,
    LocationPrecision,
    distance_km,
    estimate_travel,
)
from therapy_platform.platform.geography.ports import (
    AddressGeocoder,
    CacheHit,
    GeocodingCache,
    PostcodeLookup,
)

logger = logging.getLogger(__name__)

Cached = TypeVar("Cached", AddressMatch, ReverseAddress)

DEFAULT_CACHE_TTL: Final = timedelta(days=30)
DEFAULT_NEGATIVE_CACHE_TTL: Final = timedelta(days=7)
UNLOCATABLE_NOTE: Final = (
    "listed in the postcode table without coordinates (its source could not locate it): records "
    "with this postcode get an unknown location unless their full address can be geocoded"
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def plausible_match(match: AddressMatch, centroid: Location) -> bool:
    """A match far from its postcode's centroid is another street of the same name elsewhere."""
    if not centroid.is_known:
        return True  # nothing to compare with; Nominatim was asked with this postcode
    return distance_km(match.point.as_location(), centroid) <= MAX_ADDRESS_OFFSET_KM


@dataclass
class GeocodingService:
    """The use cases over their ports. Also the `Geocoder` port patient and therapist services
    call when they write a record (`locate`)."""

    postcodes: PostcodeLookup
    address_geocoder: AddressGeocoder | None = None
    cache: GeocodingCache | None = None
    cache_ttl: timedelta = DEFAULT_CACHE_TTL
    negative_cache_ttl: timedelta = DEFAULT_NEGATIVE_CACHE_TTL
    clock: Callable[[], datetime] = field(default=_utc_now)

    # ------------------------------------------------------------------ addresses

    def locate(self, *, postcode: str, street: str | None = None, city: str | None = None) -> Location:
        """Geocoder port. Never raises for an address it cannot locate."""
        try:
            query = AddressQuery(postcode=postcode, street=street or None, city=city or None)
        except ValidationError:
            return self.postcodes.centroid(postcode)
        return self.geocode(query).location

    def geocode(self, query: AddressQuery) -> GeocodeResult:
        centroid = self.postcodes.centroid(query.postcode)
        fallback = GeocodeResult(
            query=query,
            location=centroid,
            source=LocationSource.POSTCODE if centroid.is_known else LocationSource.NONE,
            needs_review=not centroid.is_known,
        )
        if not query.has_street:
            return fallback
        key, now = query.cache_key(), self.clock()
        hit = self._cache_read(lambda cache: cache.get_address(key, now=now))
        if hit is not None:
            return fallback if hit.value is None else self._matched(query, hit.value, LocationSource.CACHE)
        if self.address_geocoder is None:
            return fallback
        try:
            match = self.address_geocoder.geocode(query)
        except GeocoderUnavailableError as error:
            logger.warning("address geocoder unavailable; using the postcode centroid: %s", error.message)
            return fallback
        if match is not None and not plausible_match(match, centroid):
            logger.warning("discarding an address match far from its postcode %s", query.postcode)
            match = None
        ttl = self.cache_ttl if match is not None else self.negative_cache_ttl
        self._cache_write(lambda cache: cache.put_address(key, match, now=now, ttl=ttl))
        return fallback if match is None else self._matched(query, match, LocationSource.NOMINATIM)

    @staticmethod
    def _matched(query: AddressQuery, match: AddressMatch, source: LocationSource) -> GeocodeResult:
        return GeocodeResult(
            query=query,
            location=Location.at(match.point.lat, match.point.lon, LocationPrecision.ADDRESS),
            source=source,
            display_name=match.display_name,
            needs_review=False,
        )

    # ------------------------------------------------------------------ points

    def reverse(self, point: Point) -> ReverseResult:
        nearest = self.postcodes.nearest(point.lat, point.lon, within_km=REVERSE_POSTCODE_RADIUS_KM)
        postcode = (
            NearestPostcode(
                postcode=nearest[0], km=round(nearest[1], 2), location=self.postcodes.centroid(nearest[0])
            )
            if nearest is not None
            else None
        )
        address, lookup, source = self._reverse_address(point)
        return ReverseResult(
            point=point, postcode=postcode, address=address, address_lookup=lookup, address_source=source
        )

    def _reverse_address(
        self, point: Point
    ) -> tuple[ReverseAddress | None, AddressLookup, LocationSource | None]:
        key, now = point.cache_key(), self.clock()
        hit = self._cache_read(lambda cache: cache.get_reverse(key, now=now))
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
        ttl = self.cache_ttl if address is not None else self.negative_cache_ttl
        self._cache_write(lambda cache: cache.put_reverse(key, address, now=now, ttl=ttl))
        if address is None:
            return None, AddressLookup.NOT_FOUND, LocationSource.NOMINATIM
        return address, AddressLookup.FOUND, LocationSource.NOMINATIM

    # ------------------------------------------------------------------ postcodes

    def postcode(self, postcode: str) -> PostcodeInfo:
        if postcode not in self.postcodes:
            raise NotFoundError(f"postcode {postcode} is not in the German postcode table")
        location = self.postcodes.centroid(postcode)
        if not location.is_known:
            return PostcodeInfo(postcode=postcode, locatable=False, location=location, note=UNLOCATABLE_NOTE)
        return PostcodeInfo(postcode=postcode, locatable=True, location=location)

    # ------------------------------------------------------------------ distances

    def resolve(self, place: PlaceRef) -> tuple[ResolvedPlace, str | None]:
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
                return resolved, f"postcode {place.postcode} has no known centroid"
            return resolved, f"postcode {place.postcode} is not in the German postcode table"
        assert place.address is not None  # PlaceRef holds exactly one of the three
        result = self.geocode(place.address)
        resolved = ResolvedPlace(
            kind="address", location=result.location, source=result.source, display_name=result.display_name
        )
        if result.location.is_known:
            return resolved, None
        postcode = place.address.postcode
        return resolved, f"the address could not be geocoded and postcode {postcode} has no known centroid"

    def distance(self, request: DistanceRequest) -> DistanceResult:
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
                + "; ".join(f"{side}: {reason}" for side, reason in unknown)
                + ")",
                details={
                    "sides": sides,
                    "fields": [
                        {"field": side, "location": "body", "message": reason, "type": "unknown_location"}
                        for side, reason in unknown
                    ],
                },
            )
        estimate = estimate_travel(origin.location, destination.location, request.mode)
        return DistanceResult(
            origin=origin,
            destination=destination,
            mode=request.mode,
            km=estimate.km,
            minutes=estimate.minutes,
        )

    # ------------------------------------------------------------------ cache, best effort

    def _cache_read(
        self, read: Callable[[GeocodingCache], CacheHit[Cached] | None]
    ) -> CacheHit[Cached] | None:
        if self.cache is None:
            return None
        try:
            return read(self.cache)
        except DependencyUnavailableError as error:
            logger.warning("geocoding cache unreadable; asking without it: %s", error.message)
            return None

    def _cache_write(self, write: Callable[[GeocodingCache], None]) -> None:
        if self.cache is None:
            return
        try:
            write(self.cache)
        except DependencyUnavailableError as error:
            logger.warning("geocoding cache unwritable; answer not cached: %s", error.message)
