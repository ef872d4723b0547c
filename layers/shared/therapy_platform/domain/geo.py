"""Locations and how precise they are. An unknown location never passes a distance check."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LocationPrecision(StrEnum):
    ADDRESS = "address"  # geocoded from the full address
    POSTCODE = "postcode"  # centroid of the postcode area
    UNKNOWN = "unknown"  # could not be located: flagged for staff


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)

    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    precision: LocationPrecision

    @model_validator(mode="after")
    def _coordinates_match_precision(self) -> Location:
        has_point = self.latitude is not None and self.longitude is not None
        if self.precision is LocationPrecision.UNKNOWN and has_point:
            raise ValueError("an unknown location has no coordinates")
        if self.precision is not LocationPrecision.UNKNOWN and not has_point:
            raise ValueError(f"a {self.precision} location needs latitude and longitude")
        return self

    @property
    def is_known(self) -> bool:
        return self.precision is not LocationPrecision.UNKNOWN

    @classmethod
    def unknown(cls) -> Location:
        return cls(precision=LocationPrecision.UNKNOWN)
