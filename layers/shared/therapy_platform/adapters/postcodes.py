"""The German postcode table shipped with the layer (data/plz_geocoord.csv): offline centroids."""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

from therapy_platform.domain.geo import Location, LocationPrecision

# The source marks postcodes it could not locate with the centre of Germany.
_NOT_LOCATABLE = ("51.165691", "10.451526")


class PostcodeDirectory:
    def __init__(self, centroids: dict[str, tuple[float, float] | None]) -> None:
        self._centroids = centroids

    @classmethod
    def load(cls) -> PostcodeDirectory:
        centroids: dict[str, tuple[float, float] | None] = {}
        with (
            resources.files("therapy_platform.data")
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

    def __contains__(self, postcode: str) -> bool:
        return postcode in self._centroids

    def __len__(self) -> int:
        return len(self._centroids)

    def centroid(self, postcode: str) -> Location:
        point = self._centroids.get(postcode)
        if point is None:
            return Location.unknown()
        return Location(latitude=point[0], longitude=point[1], precision=LocationPrecision.POSTCODE)

    def locate(self, *, postcode: str, street: str | None = None, city: str | None = None) -> Location:
        """Geocoder port: the postcode centroid (the address itself is not used offline)."""
        return self.centroid(postcode)


@cache
def postcode_directory() -> PostcodeDirectory:
    return PostcodeDirectory.load()
