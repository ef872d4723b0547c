"""Environment of the geocoding service: how long its cache keeps Nominatim's answers, and the
Nominatim client's own settings. A missing or malformed variable fails at cold start naming it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic import Field

from therapy_platform.platform.geography.locator import CacheTtl
from therapy_platform.platform.geography.nominatim import NominatimSettings
from therapy_platform.platform.settings import EnvModel


class GeocodingCacheSettings(EnvModel):
    ttl_days: int = Field(default=30, ge=1, le=365, alias="GEOCODING_CACHE_TTL_DAYS")
    # "Not found" is remembered for a shorter time: OpenStreetMap gains streets and numbers.
    negative_ttl_days: int = Field(default=7, ge=1, le=365, alias="GEOCODING_NEGATIVE_CACHE_TTL_DAYS")

    def ttl(self) -> CacheTtl:
        return CacheTtl(found=timedelta(days=self.ttl_days), not_found=timedelta(days=self.negative_ttl_days))


@dataclass(frozen=True)
class GeocodingSettings:
    cache: GeocodingCacheSettings
    nominatim: NominatimSettings

    @classmethod
    def from_env(cls) -> GeocodingSettings:
        return cls(cache=GeocodingCacheSettings.from_env(), nominatim=NominatimSettings.from_env())
