"""Locations, distances and travel-time estimates. Pure: no I/O, no configuration.

An unknown location never passes a distance check: `within_reach` is False whenever either
side is unknown, and `distance_km` refuses to produce a number for it.

Distance is geodesic (WGS84 ellipsoid, Karney's algorithm through geographiclib): the length
of the shortest path over the earth's surface, i.e. "as the crow flies". Travel minutes are an
*estimate* from that distance per travel mode; see `estimate_minutes` and docs/geocoding.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from geographiclib.geodesic import Geodesic  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, model_validator


class LocationPrecision(StrEnum):
    ADDRESS = "address"  # geocoded from the full address (or exact coordinates given by a caller)
    POSTCODE = "postcode"  # centroid of the postcode area
    UNKNOWN = "unknown"  # could not be located: flagged for staff


class TravelMode(StrEnum):
    CAR = "car"
    TRANSIT = "transit"  # public transport


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)

    latitude: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    longitude: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
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

    @property
    def needs_review(self) -> bool:
        """Staff must look at records whose location could not be determined."""
        return not self.is_known

    @classmethod
    def unknown(cls) -> Location:
        return cls(precision=LocationPrecision.UNKNOWN)

    @classmethod
    def at(cls, latitude: float, longitude: float, precision: LocationPrecision) -> Location:
        return cls(latitude=latitude, longitude=longitude, precision=precision)


class UnknownLocationError(ValueError):
    """A distance was asked for a location that has no coordinates."""


_WGS84 = Geodesic.WGS84


def geodesic_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance in km between two WGS84 points."""
    if (lat1, lon1) == (lat2, lon2):
        return 0.0
    metres: float = _WGS84.Inverse(lat1, lon1, lat2, lon2, Geodesic.DISTANCE)["s12"]
    return metres / 1000.0


MEAN_EARTH_RADIUS_KM: Final = 6371.0088
# A sphere of the mean radius is within 0.56 % of the ellipsoid for any pair of points; with
# this margin a spherical distance decides clear cases exactly as the geodesic would.
_SPHERE_MARGIN = 0.0075


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi, half_dlambda = (phi2 - phi1) / 2, math.radians(lon2 - lon1) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * MEAN_EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def distance_km(a: Location, b: Location) -> float:
    """Geodesic km between two known locations; UnknownLocationError if either is unknown."""
    if a.latitude is None or a.longitude is None or b.latitude is None or b.longitude is None:
        raise UnknownLocationError("an unknown location has no distance to anything")
    return geodesic_km(a.latitude, a.longitude, b.latitude, b.longitude)


# ---------------------------------------------------------------- travel-time estimation


@dataclass(frozen=True)
class SpeedBand:
    """Average door-to-door speed over one stretch of the route, in km of route per hour."""

    up_to_route_km: float  # this band covers route km up to here (math.inf for the last band)
    km_per_hour: float


@dataclass(frozen=True)
class TravelProfile:
    """How a mode turns geodesic km into minutes.

    route km = geodesic km x `detour_factor` (roads and lines are not straight);
    minutes  = `fixed_minutes` (getting going and arriving) + the route driven through the
               speed bands in order (slow first km in town, faster further out).
    Cumulative bands make the estimate continuous and non-decreasing in distance.
    """

    detour_factor: float
    fixed_minutes: float
    bands: tuple[SpeedBand, ...]


class AreaDensity(StrEnum):
    """How built-up the area around the trip's origin is (postcodes.py `area_density` derives it
    from the density of postcode centroids, a proxy for population density: German postcode
    areas are cut to similar delivery volumes, so a city has many small ones)."""

    URBAN = "urban"  # a large city: slow streets, frequent public transport
    SUBURBAN = "suburban"  # towns and their surroundings (the profile used before areas existed)
    RURAL = "rural"  # countryside: faster roads, rare buses


# The profiles per area. SUBURBAN keeps the single profile the estimate had before areas
# (docs/geocoding.md, "Travel time"); URBAN is slower by car and has shorter waits for
# public transport, RURAL is faster by car and waits longer (hourly buses).
TRAVEL_PROFILES_BY_AREA: Final[dict[AreaDensity, dict[TravelMode, TravelProfile]]] = {
    AreaDensity.SUBURBAN: {
        # Walk to the car, park and walk to the practice: 5 min. First 5 route km in town at
        # 25 km/h (lights, junctions), the next 15 km on arterials and country roads at
        # 50 km/h, anything further mostly on motorways at 90 km/h average.
        TravelMode.CAR: TravelProfile(
            detour_factor=1.3,
            fixed_minutes=5.0,
            bands=(SpeedBand(5.0, 25.0), SpeedBand(20.0, 50.0), SpeedBand(math.inf, 90.0)),
        ),
        # Walk to the stop and wait (half a 20-minute headway): 10 min. Bus or tram with
        # frequent stops at 15 km/h for the first 5 route km, S-Bahn / regional bus at 30 km/h
        # up to 20 km, regional and long-distance rail at 60 km/h including changes beyond.
        TravelMode.TRANSIT: TravelProfile(
            detour_factor=1.4,
            fixed_minutes=10.0,
            bands=(SpeedBand(5.0, 15.0), SpeedBand(20.0, 30.0), SpeedBand(math.inf, 60.0)),
        ),
    },
    AreaDensity.URBAN: {
        # Finding a parking space takes longer (8 min); city streets 20 km/h, urban arterials
        # 40 km/h, then motorway 80 km/h (congested city rings).
        TravelMode.CAR: TravelProfile(
            detour_factor=1.3,
            fixed_minutes=8.0,
            bands=(SpeedBand(5.0, 20.0), SpeedBand(20.0, 40.0), SpeedBand(math.inf, 80.0)),
        ),
        # A dense network: a short walk and half a 10-minute headway (8 min); U-Bahn, tram and
        # bus 18 km/h, S-Bahn 30 km/h, regional rail 60 km/h; lines run straighter (1.3).
        TravelMode.TRANSIT: TravelProfile(
            detour_factor=1.3,
            fixed_minutes=8.0,
            bands=(SpeedBand(5.0, 18.0), SpeedBand(20.0, 30.0), SpeedBand(math.inf, 60.0)),
        ),
    },
    AreaDensity.RURAL: {
        # Parking at the door (3 min); village roads 35 km/h, country roads 60 km/h, then
        # 90 km/h; roads wind more between villages (1.35).
        TravelMode.CAR: TravelProfile(
            detour_factor=1.35,
            fixed_minutes=3.0,
            bands=(SpeedBand(5.0, 35.0), SpeedBand(20.0, 60.0), SpeedBand(math.inf, 90.0)),
        ),
        # A longer walk to the stop and half an hourly headway (20 min); regional buses wind
        # through villages (1.5) at 15 km/h for the first km, 30 km/h, then rail at 50 km/h.
        TravelMode.TRANSIT: TravelProfile(
            detour_factor=1.5,
            fixed_minutes=20.0,
            bands=(SpeedBand(5.0, 15.0), SpeedBand(20.0, 30.0), SpeedBand(math.inf, 50.0)),
        ),
    },
}
# The area-independent profile (suburban): what callers that know no area get.
TRAVEL_PROFILES: Final[dict[TravelMode, TravelProfile]] = TRAVEL_PROFILES_BY_AREA[AreaDensity.SUBURBAN]


def _fastest_geodesic_km_per_minute() -> float:
    """The most geodesic km any profile covers per minute (its fastest band over its detour)."""
    return max(
        band.km_per_hour / 60.0 / profile.detour_factor
        for profiles in TRAVEL_PROFILES_BY_AREA.values()
        for profile in profiles.values()
        for band in profile.bands
    )


# No estimate of `m` minutes, in any area and mode, is longer than m x this many geodesic km:
# the bound by which a minutes limit becomes a search radius (matching's grid and its SQL).
MAX_GEODESIC_KM_PER_MINUTE: Final = _fastest_geodesic_km_per_minute()


def reach_bound_km(max_minutes: int) -> float:
    """A geodesic radius no trip of at most `max_minutes` estimated minutes leaves (any area,
    any mode): the minutes limit's search radius."""
    if max_minutes < 0:
        raise ValueError("max_minutes must not be negative")
    return max_minutes * MAX_GEODESIC_KM_PER_MINUTE


def route_km(geodesic: float, mode: TravelMode, area: AreaDensity = AreaDensity.SUBURBAN) -> float:
    """Estimated length of the route actually travelled."""
    return geodesic * TRAVEL_PROFILES_BY_AREA[area][mode].detour_factor


def estimate_minutes(geodesic: float, mode: TravelMode, area: AreaDensity = AreaDensity.SUBURBAN) -> int:
    """Estimated door-to-door travel minutes for a geodesic distance, rounded up.

    0 km is 0 minutes (the same place). The model is tuned for the distances matching cares
    about (up to about 60 km); it overestimates long trips, where real routes are straighter
    and faster than the motorway average used here.
    """
    if not math.isfinite(geodesic) or geodesic < 0:
        raise ValueError(f"distance must be a finite, non-negative number of km, not {geodesic!r}")
    if geodesic == 0:
        return 0
    profile = TRAVEL_PROFILES_BY_AREA[area][mode]
    remaining = route_km(geodesic, mode, area)
    minutes = profile.fixed_minutes
    band_start = 0.0
    for band in profile.bands:
        stretch = min(remaining, band.up_to_route_km - band_start)
        minutes += stretch / band.km_per_hour * 60.0
        remaining -= stretch
        band_start = band.up_to_route_km
        if remaining <= 0:
            break
    # Round away float noise first so 12.0000000001 does not become 13.
    return math.ceil(round(minutes, 6))


class TravelEstimate(BaseModel):
    model_config = ConfigDict(frozen=True)

    mode: TravelMode
    area: AreaDensity = Field(
        default=AreaDensity.SUBURBAN, description="The origin's area class the minutes were estimated for"
    )
    km: float = Field(ge=0, description="Geodesic distance in km, rounded to 10 m")
    minutes: int = Field(ge=0, description="Estimated door-to-door travel time, rounded up")


def estimate_travel(
    a: Location, b: Location, mode: TravelMode, area: AreaDensity = AreaDensity.SUBURBAN
) -> TravelEstimate:
    """Distance and travel time between two known locations (UnknownLocationError otherwise);
    `area` is the origin's area class (postcodes.py `area_density`)."""
    km = distance_km(a, b)
    return TravelEstimate(mode=mode, area=area, km=round(km, 2), minutes=estimate_minutes(km, mode, area))


def spherical_reach_limits(max_km: float, *, has_minutes: bool) -> tuple[float, float]:
    """The spherical (mean-radius sphere) distances by which `within_reach` decides without the
    geodesic: beyond the first a pair is out of reach, below the second (-inf with a minutes
    limit, which always needs the geodesic) in reach. Bulk matching screens pairs with these."""
    out_above = max_km * (1 + _SPHERE_MARGIN) + 1e-9
    in_below = -math.inf if has_minutes else max_km * (1 - _SPHERE_MARGIN) - 1e-9
    return out_above, in_below


def within_reach(
    patient_location: Location,
    therapist_location: Location,
    max_km: float,
    mode: TravelMode,
    *,
    max_minutes: int | None = None,
    area: AreaDensity = AreaDensity.SUBURBAN,
) -> bool:
    """Whether a therapist is close enough for a patient.

    `max_km` bounds the geodesic distance (the "radius" patients know from directory searches
    and the km the API shows). `max_minutes`, when given, additionally bounds the estimated
    travel time for the patient's `mode` in the patient's `area`. False whenever either
    location is unknown: an unlocated record must never be matched on distance.
    """
    if math.isnan(max_km):
        raise ValueError("max_km must be a number")
    if max_km < 0:
        raise ValueError("max_km must not be negative")
    a, b = patient_location, therapist_location
    if a.latitude is None or a.longitude is None or b.latitude is None or b.longitude is None:
        return False
    # Matching runs this for many pairs: a spherical distance (50x cheaper) settles every pair
    # that is not within 0.75 % of the radius; only those borderline pairs need the geodesic.
    rough = _haversine_km(a.latitude, a.longitude, b.latitude, b.longitude)
    out_above, in_below = spherical_reach_limits(max_km, has_minutes=max_minutes is not None)
    if rough > out_above:
        return False
    if rough < in_below:
        return True
    km = geodesic_km(a.latitude, a.longitude, b.latitude, b.longitude)
    if km > max_km:
        return False
    return max_minutes is None or estimate_minutes(km, mode, area) <= max_minutes
