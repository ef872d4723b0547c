"""Composition root of the geocoding service (its API function).

`build()` wires the deployed `GeocodingService`: the shipped postcode table, Nominatim when
NOMINATIM_ENABLED=true, and the PostgreSQL cache in `geocoding_service` (its TTLs from
GEOCODING_CACHE_TTL_DAYS / GEOCODING_NEGATIVE_CACHE_TTL_DAYS). Other services locate records
in-process with `platform.geography.locator.default_locator()` instead, without this cache.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from therapy_platform.geocoding.adapters.cache import SqlGeocodingCache
from therapy_platform.geocoding.settings import GeocodingSettings
from therapy_platform.geocoding.use_cases import GeocodingService
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.geography.nominatim import NominatimClient
from therapy_platform.platform.geography.postcodes import postcode_directory

SETTINGS = GeocodingSettings.from_env()  # at import = cold start: a bad variable fails naming it

__all__ = ["SETTINGS", "GeocodingService", "build"]


def build(
    settings: GeocodingSettings = SETTINGS, *, engine: Engine | Callable[[], Engine] = default_engine
) -> GeocodingService:
    """The deployed service. Cheap: the engine (DB_SECRET_ARN / DATABASE_URL by default) is
    created on the cache's first use."""
    return GeocodingService(
        postcodes=postcode_directory(),
        address_geocoder=NominatimClient(settings.nominatim) if settings.nominatim.enabled else None,
        cache=SqlGeocodingCache(engine),
        ttl=settings.cache.ttl(),
    )
