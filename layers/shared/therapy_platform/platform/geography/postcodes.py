"""The German postcode table shipped with the layer (data/plz_geocoord.csv): offline centroids,
and the reverse direction (nearest postcode centroid to a point) through a small grid index."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from functools import cache, lru_cache
from importlib import resources

from therapy_platform.platform.geography.locations import (
    AreaDensity,
    Location,
    LocationPrecision,
    geodesic_km,
)

# The source marks postcodes it could not locate with the centre of Germany.
_NOT_LOCATABLE = ("51.165691", "10.451526")

# Area density (travel-time estimates, docs/geocoding.md "Travel time"): how many other postcode
# centroids lie within DENSITY_RADIUS_KM of a point. Postcode areas are cut to similar delivery
# volumes, so their density follows population density. Measured over the shipped table: central
# Berlin 120, Munich 74, Hamburg 62, Dresden 27, Magdeburg 15, Potsdam 11, rural Uckermark 0;
# median 9, quartiles 5 and 14.
DENSITY_RADIUS_KM = 10.0
URBAN_MIN_NEIGHBOURS = 15  # at least this many: urban
SUBURBAN_MIN_NEIGHBOURS = 5  # at least this many: suburban; fewer: rural

# Grid for nearest-centroid searches: 0.1 degree cells (about 11 km x 7 km in Germany).
_CELL_DEG = 0.1
_KM_PER_DEG = 6371.0088 * math.pi / 180  # mean earth radius; only used to rank and bound


def _cell(latitude: float, longitude: float) -> tuple[int, int]:
    return math.floor(latitude / _CELL_DEG), math.floor(longitude / _CELL_DEG)


def _approx_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: within 0.1 % of the geodesic over a few dozen km, and 50x
    cheaper, so candidates are ranked with it and only the winner is measured exactly."""
    x = (lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(x, lat2 - lat1) * _KM_PER_DEG


def _ring(row: int, column: int, radius: int) -> Iterator[tuple[int, int]]:
    """Cells at Chebyshev distance `radius` from (row, column)."""
    if radius == 0:
        yield row, column
        return
    for offset in range(-radius, radius + 1):
        yield row - radius, column + offset
        yield row + radius, column + offset
    for offset in range(-radius + 1, radius):
        yield row + offset, column - radius
        yield row + offset, column + radius


class PostcodeDirectory:
    def __init__(self, centroids: dict[str, tuple[float, float] | None]) -> None:
        self._centroids = centroids
        self._grid: dict[tuple[int, int], list[tuple[str, float, float]]] = {}
        for postcode, point in centroids.items():
            if point is not None:
                self._grid.setdefault(_cell(*point), []).append((postcode, point[0], point[1]))
        points = [point for point in centroids.values() if point is not None]
        self._bounds = (
            (
                min(p[0] for p in points),
                max(p[0] for p in points),
                min(p[1] for p in points),
                max(p[1] for p in points),
            )
            if points
            else None
        )

    @classmethod
    def load(cls) -> PostcodeDirectory:
        centroids: dict[str, tuple[float, float] | None] = {}
        with (
            resources.files("therapy_platform.platform.geography.data")
            .joinpath("plz_geocoord.csv")
            .open(encoding="utf-8") as handle
        ):
            reader = csv.reader(handle)
            next(reader)  # header: ,lat,lng
            for postcode, latitude, longitude in reader:
                if (latitude, longitude) == _NOT_LOCATABLE:
                    centroids[postcode] = None
                else:
                    centroids[postcode] = (float(latitude), float(longitude))
        return cls(centroids)

    def __contains__(self, postcode: object) -> bool:
        """Listed in the table, with or without a centroid."""
        return postcode in self._centroids

    def __len__(self) -> int:
        return len(self._centroids)

    def postcodes(self, *, locatable_only: bool = False) -> list[str]:
        return sorted(code for code, point in self._centroids.items() if point or not locatable_only)

    def centroids_with_prefix(self, prefix: str) -> list[tuple[float, float]]:
        """Centroids of the locatable postcodes starting with `prefix` (the directory scraper
        tiles a 2-digit region with them)."""
        return [point for code, point in sorted(self._centroids.items()) if point and code.startswith(prefix)]

    def is_locatable(self, postcode: str) -> bool:
        return self._centroids.get(postcode) is not None

    def centroid(self, postcode: str) -> Location:
        point = self._centroids.get(postcode)
        if point is None:
            return Location.unknown()
        return Location(latitude=point[0], longitude=point[1], precision=LocationPrecision.POSTCODE)

    def locate(self, *, postcode: str, street: str | None = None, city: str | None = None) -> Location:
        """Geocoder port: the postcode centroid (the address itself is not used offline)."""
        return self.centroid(postcode)

    def nearest(self, latitude: float, longitude: float, *, within_km: float) -> tuple[str, float] | None:
        """The postcode with the nearest centroid and its geodesic km, or None if none is within
        `within_km` (a point outside Germany)."""
        if self._bounds is None or within_km < 0:
            return None
        south, north, west, east = self._bounds
        margin = within_km / _KM_PER_DEG
        lon_margin = margin / max(math.cos(math.radians(min(abs(latitude), 89.0))), 1e-6)
        if not (
            south - margin <= latitude <= north + margin
            and west - lon_margin <= longitude <= east + lon_margin
        ):
            return None
        # The narrower side of a cell near this latitude bounds how far a ring's cells can be.
        cell_km = _CELL_DEG * _KM_PER_DEG * math.cos(math.radians(min(abs(latitude) + _CELL_DEG, 89.0)))
        max_ring = math.ceil(within_km / cell_km) + 1
        row, column = _cell(latitude, longitude)
        best: tuple[str, float, float] | None = None
        best_km = math.inf
        for radius in range(max_ring + 1):
            # Every cell of this ring is at least (radius - 1) cells away from the point.
            if best is not None and (radius - 1) * cell_km > best_km:
                break
            for cell in _ring(row, column, radius):
                for candidate in self._grid.get(cell, ()):
                    km = _approx_km(latitude, longitude, candidate[1], candidate[2])
                    if km < best_km:
                        best, best_km = candidate, km
        if best is None:
            return None
        exact = geodesic_km(latitude, longitude, best[1], best[2])
        return (best[0], exact) if exact <= within_km else None

    def neighbours_within(self, latitude: float, longitude: float, within_km: float) -> int:
        """How many postcode centroids lie within `within_km` of the point (a centroid at the
        point itself not counted)."""
        cell_km = _CELL_DEG * _KM_PER_DEG * math.cos(math.radians(min(abs(latitude) + within_km / 100, 89.0)))
        max_ring = math.ceil(within_km / cell_km) + 1
        row, column = _cell(latitude, longitude)
        count = 0
        for radius in range(max_ring + 1):
            for cell in _ring(row, column, radius):
                for _, lat, lon in self._grid.get(cell, ()):
                    if (lat, lon) != (latitude, longitude) and _approx_km(
                        latitude, longitude, lat, lon
                    ) <= within_km:
                        count += 1
        return count

    def area_density(self, location: Location) -> AreaDensity:
        """The area class of a known location (ValueError for an unknown one: it has no area)."""
        if location.latitude is None or location.longitude is None:
            raise ValueError("an unknown location has no area density")
        return self._area_density(round(location.latitude, 5), round(location.longitude, 5))

    @lru_cache(maxsize=65_536)  # noqa: B019 - one directory per process (postcode_directory())
    def _area_density(self, latitude: float, longitude: float) -> AreaDensity:
        neighbours = self.neighbours_within(latitude, longitude, DENSITY_RADIUS_KM)
        if neighbours >= URBAN_MIN_NEIGHBOURS:
            return AreaDensity.URBAN
        if neighbours >= SUBURBAN_MIN_NEIGHBOURS:
            return AreaDensity.SUBURBAN
        return AreaDensity.RURAL


@cache
def postcode_directory() -> PostcodeDirectory:
    return PostcodeDirectory.load()


def area_density_of(location: Location) -> AreaDensity:
    """The area class travel-time estimates use for a trip starting at `location` (matching's
    patient, the distance API's origin): one function, so both give the same minutes. An unknown
    location has no area; it gets the neutral SUBURBAN class and never passes a reach check."""
    if not location.is_known:
        return AreaDensity.SUBURBAN
    return postcode_directory().area_density(location)
