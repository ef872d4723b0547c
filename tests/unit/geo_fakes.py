"""In-memory geocoding ports for unit tests: a fake Nominatim and a dict-backed cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.geography.addresses import (
    AddressMatch,
    AddressQuery,
    GeocoderUnavailableError,
    Point,
    ReverseAddress,
)
from therapy_platform.platform.geography.ports import CacheHit

# Real places (OpenStreetMap, rounded): enough for tests to tell an address from a centroid.
AACHEN_CATHEDRAL = AddressMatch(
    point=Point(lat=50.77475, lon=6.08393),
    display_name="Domhof 1, 52062 Aachen, Deutschland",
    postcode="52062",
)
BERLIN_INVALIDENSTRASSE = AddressMatch(
    point=Point(lat=52.53054, lon=13.38364),
    display_name="Invalidenstraße 43, 10115 Berlin, Deutschland",
    postcode="10115",
)


@dataclass
class FakeNominatim:
    """AddressGeocoder port in memory. Knows the addresses it is given by cache key; `down`
    makes every call raise GeocoderUnavailableError, as the real client does after retries."""

    addresses: dict[str, AddressMatch] = field(default_factory=dict)
    points: dict[str, ReverseAddress] = field(default_factory=dict)
    down: bool = False
    calls: list[str] = field(default_factory=list)

    def know(self, query: AddressQuery, match: AddressMatch) -> None:
        self.addresses[query.cache_key()] = match

    def geocode(self, query: AddressQuery) -> AddressMatch | None:
        self.calls.append(f"search {query.cache_key()}")
        if self.down:
            raise GeocoderUnavailableError("fake Nominatim is down")
        return self.addresses.get(query.cache_key())

    def reverse(self, point: Point) -> ReverseAddress | None:
        self.calls.append(f"reverse {point.cache_key()}")
        if self.down:
            raise GeocoderUnavailableError("fake Nominatim is down")
        return self.points.get(point.cache_key())


@dataclass
class InMemoryGeocodingCache:
    """GeocodingCache port in memory, honouring expiry like the SQL store."""

    entries: dict[tuple[str, str], tuple[AddressMatch | ReverseAddress | None, datetime, datetime]] = field(
        default_factory=dict
    )
    down: bool = False

    def _check(self) -> None:
        if self.down:
            raise DependencyUnavailableError("the database cannot be reached right now")

    def get_address(self, key: str, *, now: datetime) -> CacheHit[AddressMatch] | None:
        self._check()
        entry = self.entries.get(("address", key))
        if entry is None or entry[2] <= now:
            return None
        assert entry[0] is None or isinstance(entry[0], AddressMatch)
        return CacheHit(value=entry[0], fetched_at=entry[1])

    def put_address(self, key: str, value: AddressMatch | None, *, now: datetime, ttl: timedelta) -> None:
        self._check()
        self.entries[("address", key)] = (value, now, now + ttl)

    def get_reverse(self, key: str, *, now: datetime) -> CacheHit[ReverseAddress] | None:
        self._check()
        entry = self.entries.get(("reverse", key))
        if entry is None or entry[2] <= now:
            return None
        assert entry[0] is None or isinstance(entry[0], ReverseAddress)
        return CacheHit(value=entry[0], fetched_at=entry[1])

    def put_reverse(self, key: str, value: ReverseAddress | None, *, now: datetime, ttl: timedelta) -> None:
        self._check()
        self.entries[("reverse", key)] = (value, now, now + ttl)

    def purge_expired(self, *, now: datetime) -> int:
        self._check()
        expired = [key for key, entry in self.entries.items() if entry[2] <= now]
        for key in expired:
            del self.entries[key]
        return len(expired)


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 22, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
