"""Where geocoders are put together from configuration.

- `default_geocoder()`: the `Geocoder` patient and therapist services call in-process when
  they write a record. Postcode centroid offline; the full address through Nominatim only when
  NOMINATIM_ENABLED=true. It uses **no cache**: those services' database roles cannot reach
  the `geocoding_service` schema (one schema per service), see docs/geocoding.md.
- `geocoding_service(engine)`: what the geocoding API runs: the same chain plus the
  PostgreSQL cache in `geocoding_service` (GEOCODING_CACHE_TTL_DAYS, default 30).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from pydantic import Field
from sqlalchemy import Engine

from therapy_platform.geocoding.adapters.cache import SqlGeocodingCache
from therapy_platform.platform.geography.locator import GeocodingService
from therapy_platform.platform.geography.nominatim import NominatimClient
from therapy_platform.platform.geography.ports import Geocoder
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.settings import EnvModel


class GeocodingCacheSettings(EnvModel):
    ttl_days: int = Field(default=30, ge=1, le=365, alias="GEOCODING_CACHE_TTL_DAYS")
    # "Not found" is remembered for a shorter time: OpenStreetMap gains streets and numbers.
    negative_ttl_days: int = Field(default=7, ge=1, le=365, alias="GEOCODING_NEGATIVE_CACHE_TTL_DAYS")


@cache
def default_geocoder() -> Geocoder:
    """Read once per process (Lambda environment); the postcode table loads on first use."""
    return GeocodingService(postcodes=postcode_directory(), address_geocoder=NominatimClient.from_env())


def geocoding_service(engine: Engine) -> GeocodingService:
    settings = GeocodingCacheSettings.from_env()
    return GeocodingService(
        postcodes=postcode_directory(),
        address_geocoder=NominatimClient.from_env(),
        cache=SqlGeocodingCache(engine),
        cache_ttl=timedelta(days=settings.ttl_days),
        negative_cache_ttl=timedelta(days=settings.negative_ttl_days),
    )
