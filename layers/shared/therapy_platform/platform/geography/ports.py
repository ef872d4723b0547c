"""Ports of locating: the one services call when they write a record (`Geocoder`), and the
ones the locate chain depends on (postcode table, address geocoder such as Nominatim, and an
optional cache of the address geocoder's answers, which only the geocoding service has)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from therapy_platform.platform.geography.addresses import AddressMatch, AddressQuery, Point, ReverseAddress
from therapy_platform.platform.geography.locations import Location


class Geocoder(Protocol):
    def locate(self, *, postcode: str, street: str | None = None, city: str | None = None) -> Location:
        """Best known location: the address when it can be geocoded, else the postcode centroid,
        else unknown. Never raises for an unlocatable address."""
        ...


class PostcodeLookup(Protocol):
    """The postcode table: centroids of German postcodes."""

    def __contains__(self, postcode: object) -> bool:
        """Whether the table lists the postcode at all (locatable or not)."""
        ...

    def centroid(self, postcode: str) -> Location:
        """The centroid, or an unknown location for unlisted and unlocatable postcodes."""
        ...

    def nearest(self, latitude: float, longitude: float, *, within_km: float) -> tuple[str, float] | None:
        """The postcode whose centroid is nearest to the point and its geodesic km, or None when
        no centroid lies within `within_km`."""
        ...


class AddressGeocoder(Protocol):
    """Full-address geocoding (Nominatim). Raises GeocoderUnavailableError when the service
    cannot answer (after its own retries); returns None when it answers "not found"."""

    def geocode(self, query: AddressQuery) -> AddressMatch | None: ...

    def reverse(self, point: Point) -> ReverseAddress | None: ...


Value = TypeVar("Value")


@dataclass(frozen=True)
class CacheHit(Generic[Value]):
    """A fresh cache entry. `value` None records that the geocoder found nothing."""

    value: Value | None
    fetched_at: datetime


class AddressCache(Protocol):
    """Earlier answers of the address geocoder, so each address is asked for once per TTL.
    Failures to reach the cache raise DependencyUnavailableError; callers carry on without it."""

    def get_address(self, key: str, *, now: datetime) -> CacheHit[AddressMatch] | None: ...

    def put_address(self, key: str, value: AddressMatch | None, *, now: datetime, ttl: timedelta) -> None: ...
