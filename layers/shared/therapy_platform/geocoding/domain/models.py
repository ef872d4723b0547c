"""The geocoding service's API models and rules: what it accepts and answers (geocode, reverse,
postcode lookup, distance between two places), built on the shared address models of
therapy_platform.platform.geography."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from therapy_platform.platform.errors import InvalidInputError
from therapy_platform.platform.geography.addresses import (
    AddressQuery,
    LocationSource,
    Point,
    Postcode,
    ReverseAddress,
)
from therapy_platform.platform.geography.locations import AreaDensity, Location, TravelMode
from therapy_platform.platform.validation import FieldRuleError

# A point further than this from every postcode centroid is not in Germany as far as the
# postcode table can tell: reverse lookups name no postcode for it.
REVERSE_POSTCODE_RADIUS_KM: Final = 25.0
UNLOCATABLE_NOTE: Final = (
    "listed in the postcode table without coordinates (its source could not locate it): records "
    "with this postcode get an unknown location unless their full address can be geocoded"
)


class UnknownLocationSideError(InvalidInputError):
    """A distance was requested for a side that cannot be located (HTTP 422 naming the side)."""

    code = "unknown_location"


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
            raise FieldRuleError(
                "exactly_one", f"genau eine Angabe: address, postcode oder point (nicht {len(given)})"
            )
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
    area: AreaDensity = Field(
        default=AreaDensity.SUBURBAN,
        description="The origin's area class the minutes were estimated for (postcode density)",
    )
    km: float = Field(ge=0, description="Geodesic km, rounded to 10 m")
    minutes: int = Field(ge=0, description="Estimated door-to-door travel minutes for the mode")
