"""Ports of the geocoding service beyond the shared locate chain's (therapy_platform.platform.
geography.ports): its cache, which also remembers reverse lookups and can be purged."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from therapy_platform.platform.geography.addresses import ReverseAddress
from therapy_platform.platform.geography.ports import AddressCache, CacheHit


class GeocodingCache(AddressCache, Protocol):
    """Earlier answers of the address geocoder (addresses and points), so each is asked for
    once per TTL. Failures to reach the cache raise DependencyUnavailableError; callers carry
    on without it."""

    def get_reverse(self, key: str, *, now: datetime) -> CacheHit[ReverseAddress] | None: ...

    def put_reverse(
        self, key: str, value: ReverseAddress | None, *, now: datetime, ttl: timedelta
    ) -> None: ...

    def purge_expired(self, *, now: datetime) -> int: ...
