"""Addresses as every service locates them: the address to locate (`AddressQuery`, with the
cache key its spelling variants share), what an address geocoder answers for it (`AddressMatch`)
or for a point (`ReverseAddress`), where a location came from (`LocationSource`), and the error
an unreachable geocoder raises. The geocoding service's API models build on these
(therapy_platform.geocoding.domain)."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.geography.locations import Location, LocationPrecision

# An address match further than this from its postcode's centroid is a different place with
# the same street name (German postcode areas are at most ~20 km across): the centroid wins.
MAX_ADDRESS_OFFSET_KM: Final = 30.0

Postcode = Annotated[
    str, StringConstraints(pattern=r"^\d{5}$"), Field(description="German postcode (PLZ), 5 digits")
]
# No control characters: they are never part of an address (and PostgreSQL refuses NUL).
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Street = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=_PRINTABLE)
]
City = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=_PRINTABLE)
]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, description="WGS84 latitude")]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, description="WGS84 longitude")]


class GeocoderUnavailableError(DependencyUnavailableError):
    """The address geocoder (Nominatim) could not answer in time, or refused the request."""

    code = "geocoder_unavailable"


class Point(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    lat: Latitude
    lon: Longitude

    def as_location(self) -> Location:
        # Coordinates given by a caller are exact: at least as precise as a geocoded address.
        return Location.at(self.lat, self.lon, LocationPrecision.ADDRESS)

    def cache_key(self) -> str:
        """Points within about a metre share reverse-geocoding answers."""
        return f"{self.lat:.5f},{self.lon:.5f}"


_ABBREVIATIONS = ((re.compile(r"str\.\s*"), "straße "), (re.compile(r"strasse\b"), "straße"))


def _normalise(text: str | None) -> str:
    if not text:
        return ""
    folded = unicodedata.normalize("NFC", text).casefold()
    for pattern, replacement in _ABBREVIATIONS:
        folded = pattern.sub(replacement, folded)
    return " ".join(folded.replace(",", " ").split())


class AddressQuery(BaseModel):
    """An address to locate. Without a street only the postcode centroid can be used."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    street: Street | None = Field(default=None, description="Street and house number")
    postcode: Postcode
    city: City | None = None

    @property
    def has_street(self) -> bool:
        return bool(self.street)

    def cache_key(self) -> str:
        """Spelling variants of one address share a key: case, spacing, "Str." / "Strasse"."""
        return "|".join((self.postcode, _normalise(self.street), _normalise(self.city)))


class AddressMatch(BaseModel):
    """What an address geocoder found for an AddressQuery (street level or better)."""

    model_config = ConfigDict(frozen=True)

    point: Point
    display_name: str
    postcode: str | None = None


class ReverseAddress(BaseModel):
    """The address an address geocoder names for a point."""

    model_config = ConfigDict(frozen=True)

    display_name: str
    street: str | None = None
    house_number: str | None = None
    postcode: str | None = None
    city: str | None = None
    country_code: str | None = None


class LocationSource(StrEnum):
    CACHE = "cache"  # an earlier Nominatim answer, still fresh
    NOMINATIM = "nominatim"  # asked Nominatim just now
    POSTCODE = "postcode"  # centroid from the shipped postcode table
    POINT = "point"  # coordinates given by the caller
    NONE = "none"  # nothing could locate it
