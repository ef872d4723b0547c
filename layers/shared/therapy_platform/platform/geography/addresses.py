"""Geocoding service models: what its API accepts and answers, and its rules.

The service locates German addresses (Nominatim when enabled, else the postcode centroid),
reverse-geocodes points, answers postcode lookups from the shipped postcode table and
computes distances with travel-time estimates (domain/geo.py).
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from therapy_platform.platform.errors import DependencyUnavailableError, InvalidInputError
from therapy_platform.platform.geography.locations import Location, LocationPrecision, TravelMode

# An address match further than this from its postcode's centroid is a different place with
# the same street name (German postcode areas are at most ~20 km across): the centroid wins.
MAX_ADDRESS_OFFSET_KM: Final = 30.0
# A point further than this from every postcode centroid is not in Germany as far as the
# postcode table can tell: reverse lookups name no postcode for it.
REVERSE_POSTCODE_RADIUS_KM: Final = 25.0

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


class UnknownLocationSideError(InvalidInputError):
    """A distance was requested for a side that cannot be located (HTTP 422 naming the side)."""

    code = "unknown_location"


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


class GeocodeResult(BaseModel):
    """Answer of POST /api/v2/geocoding/geocode."""

    query: AddressQuery
    location: Location
    source: LocationSource
    display_name: str | None = None
    needs_review: bool = Field(description="True when the location is unknown: staff must check it")


class PostcodeInfo(BaseModel):
    """Answer of GET /api/v2/geocoding/postcodes/{postcode}."""

    postcode: Postcode
    locatable: bool = Field(description="False for the postcodes the table lists without a centroid")
    location: Location
    note: str | None = None


class NearestPostcode(BaseModel):
    postcode: Postcode
    km: float = Field(ge=0, description="Geodesic km from the point to the postcode's centroid")
    location: Location


class AddressLookup(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    DISABLED = "disabled"  # NOMINATIM_ENABLED is not true: only the postcode table answers
    UNAVAILABLE = "unavailable"  # Nominatim did not answer in time; try again later


class ReverseResult(BaseModel):
    """Answer of GET /api/v2/geocoding/reverse."""

    point: Point
    postcode: NearestPostcode | None = Field(description="Nearest postcode centroid; null outside Germany")
    address: ReverseAddress | None
    address_lookup: AddressLookup
    address_source: LocationSource | None = None


class PlaceRef(BaseModel):
    """One side of a distance request: exactly one of address, postcode or point."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: AddressQuery | None = None
    postcode: Postcode | None = None
    point: Point | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PlaceRef:
        given = [name for name in ("address", "postcode", "point") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of address, postcode or point (got {len(given)})")
        return self

    @property
    def kind(self) -> Literal["address", "postcode", "point"]:
        if self.address is not None:
            return "address"
        return "postcode" if self.postcode is not None else "point"


class DistanceRequest(BaseModel):
    """Body of POST /api/v2/geocoding/distance: {"from": PlaceRef, "to": PlaceRef, "mode"}."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    origin: PlaceRef = Field(alias="from")
    destination: PlaceRef = Field(alias="to")
    mode: TravelMode = TravelMode.CAR


class ResolvedPlace(BaseModel):
    kind: Literal["address", "postcode", "point"]
    location: Location
    source: LocationSource
    display_name: str | None = None


class DistanceResult(BaseModel):
    """Answer of POST /api/v2/geocoding/distance. Only ever produced for two known locations."""

    model_config = ConfigDict(populate_by_name=True)

    origin: ResolvedPlace = Field(alias="from")
    destination: ResolvedPlace = Field(alias="to")
    mode: TravelMode
    km: float = Field(ge=0, description="Geodesic km, rounded to 10 m")
    minutes: int = Field(ge=0, description="Estimated door-to-door travel minutes for the mode")
