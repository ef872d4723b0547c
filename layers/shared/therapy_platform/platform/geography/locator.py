"""The locate chain every service runs in-process when it writes a record, and its builder.

Locating an address goes, in order:
  1. the cache, when one is given (an earlier Nominatim answer younger than its TTL, "not found"
     included); only the geocoding service has one (`geocoding_service.geocode_cache`);
  2. Nominatim, when an address geocoder is configured (NOMINATIM_ENABLED=true);
     a match more than MAX_ADDRESS_OFFSET_KM from the postcode's centroid is discarded;
  3. the postcode centroid from the shipped table;
  4. unknown (flagged for staff).
Only an address with a street goes past step 0: a postcode alone is its centroid.
Nominatim being down never fails a lookup; the answer is then the postcode centroid and
nothing is cached, so the address is asked for again next time. A cache that cannot be reached
is skipped the same way.

`default_locator()` is what other services' bootstraps call: the chain **without a cache**,
because their database roles cannot reach the `geocoding_service` schema (docs/geocoding.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Final, TypeVar

from pydantic import ValidationError

from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.geography.addresses import (
    MAX_ADDRESS_OFFSET_KM,
    AddressMatch,
    AddressQuery,
    GeocoderUnavailableError,
    LocationSource,
)
from therapy_platform.platform.geography.locations import Location, LocationPrecision, distance_km
from therapy_platform.platform.geography.nominatim import NominatimClient, NominatimSettings
from therapy_platform.platform.geography.ports import AddressCache, AddressGeocoder, CacheHit, PostcodeLookup
from therapy_platform.platform.geography.postcodes import postcode_directory

logger = logging.getLogger(__name__)

Cache = TypeVar("Cache")
Cached = TypeVar("Cached")

DEFAULT_CACHE_TTL: Final = timedelta(days=30)
# "Not found" is remembered for a shorter time: OpenStreetMap gains streets and numbers.
DEFAULT_NEGATIVE_CACHE_TTL: Final = timedelta(days=7)


@dataclass(frozen=True)
class CacheTtl:
    """How long the cache keeps an answer of the address geocoder."""

    found: timedelta = DEFAULT_CACHE_TTL
    not_found: timedelta = DEFAULT_NEGATIVE_CACHE_TTL

    def of(self, value: object | None) -> timedelta:
        return self.found if value is not None else self.not_found


@dataclass(frozen=True)
class Located:
    """Where the chain put an address, and how it got there."""

    location: Location
    source: LocationSource
    display_name: str | None = None

    @property
    def needs_review(self) -> bool:
        """Unknown: staff must check the record."""
        return not self.location.is_known


def plausible_match(match: AddressMatch, centroid: Location) -> bool:
    """A match far from its postcode's centroid is another street of the same name elsewhere."""
    if not centroid.is_known:
        return True  # nothing to compare with; Nominatim was asked with this postcode
    return distance_km(match.point.as_location(), centroid) <= MAX_ADDRESS_OFFSET_KM


def read_cache(
    cache: Cache | None, read: Callable[[Cache], CacheHit[Cached] | None]
) -> CacheHit[Cached] | None:
    """Best effort: no cache, or one that cannot be reached, is a miss."""
    if cache is None:
        return None
    try:
        return read(cache)
    except DependencyUnavailableError as error:
        logger.warning("geocoding cache unreadable; asking without it: %s", error.message)
        return None


def write_cache(cache: Cache | None, write: Callable[[Cache], None]) -> None:
    """Best effort: an answer that cannot be cached is still answered."""
    if cache is None:
        return
    try:
        write(cache)
    except DependencyUnavailableError as error:
        logger.warning("geocoding cache unwritable; answer not cached: %s", error.message)


@dataclass
class AddressLocator:
    """The locate chain over its ports; the `Geocoder` port services call (`locate`)."""

    postcodes: PostcodeLookup
    address_geocoder: AddressGeocoder | None = None
    cache: AddressCache | None = None
    ttl: CacheTtl = field(default_factory=CacheTtl)
    clock: Callable[[], datetime] = field(default=utc_now)

    def locate(self, *, postcode: str, street: str | None = None, city: str | None = None) -> Location:
        """Geocoder port. Never raises for an address it cannot locate."""
        try:
            query = AddressQuery(postcode=postcode, street=street or None, city=city or None)
        except ValidationError:
            return self.postcodes.centroid(postcode)
        return self.find(query).location

    def find(self, query: AddressQuery) -> Located:
        centroid = self.postcodes.centroid(query.postcode)
        fallback = Located(centroid, LocationSource.POSTCODE if centroid.is_known else LocationSource.NONE)
        if not query.has_street:
            return fallback
        key, now = query.cache_key(), self.clock()
        hit = read_cache(self.cache, lambda cache: cache.get_address(key, now=now))
        if hit is not None:
            return fallback if hit.value is None else _matched(hit.value, LocationSource.CACHE)
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
        write_cache(self.cache, lambda cache: cache.put_address(key, match, now=now, ttl=self.ttl.of(match)))
        return fallback if match is None else _matched(match, LocationSource.NOMINATIM)


def _matched(match: AddressMatch, source: LocationSource) -> Located:
    location = Location.at(match.point.lat, match.point.lon, LocationPrecision.ADDRESS)
    return Located(location, source, match.display_name)


@cache
def default_locator(settings: NominatimSettings | None = None) -> AddressLocator:
    """The in-process `Geocoder` of a service (its bootstrap calls this once per process):
    the full address through Nominatim only when NOMINATIM_ENABLED=true, else the postcode
    centroid offline. No cache: a service's role cannot reach the geocoding schema."""
    nominatim = settings if settings is not None else NominatimSettings.from_env()
    return AddressLocator(
        postcodes=postcode_directory(),
        address_geocoder=NominatimClient(nominatim) if nominatim.enabled else None,
    )
