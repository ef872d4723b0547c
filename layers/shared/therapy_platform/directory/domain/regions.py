"""Where a scraping run searches: the request that names a region (the schedule's input, or an
operator's), and the tiling of a prefix region into search points whose circles cover every
postcode of the region. Pure rules: no HTTP, S3 or SQL. The region and search-point models
themselves belong to the raw-file contract (contracts/directory_files.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from therapy_platform.contracts.directory_files import Region, RegionKind, SearchPoint

_KM_PER_DEG_LAT: Final = 111.32


class ScrapeRequest(BaseModel):
    """The schedule's input, `{"scheduled_time": "2026-12-07T00:00:00Z", "trigger": "schedule"}`
    (the week plan, domain/week_plan.py, says which region that slot reads), or an operator's
    naming the region: `{"region": "52"}`, `{"region": "52062-r25"}` or
    `{"region": {"prefix": "52", "radius_km": 5}}`."""

    model_config = ConfigDict(extra="forbid")

    region: str | dict[str, Any] | None = None
    scheduled_time: AwareDatetime | None = Field(
        default=None, description="When EventBridge Scheduler fired (<aws.scheduler.scheduled-time>)"
    )
    trigger: str = Field(default="schedule", pattern=r"^[a-z_-]{1,20}$")
    max_requests: int | None = Field(default=None, ge=1, description="Lower than the configured cap only")

    @model_validator(mode="after")
    def _names_region_or_time(self) -> ScrapeRequest:
        if (self.region is None) == (self.scheduled_time is None):
            raise ValueError("give either region or scheduled_time")
        return self

    def resolved_region(self, tile_radius_km: float) -> Region:
        """The region to search; a prefix given as a bare string is tiled with the configured
        radius. Raises ValueError naming the problem."""
        if self.region is None:
            raise ValueError("no region named: the week plan resolves a scheduled time")
        region = Region.parse(self.region)
        if region.kind is RegionKind.PREFIX and not (
            isinstance(self.region, dict) and "radius_km" in self.region
        ):
            region = region.model_copy(update={"radius_km": tile_radius_km})
        return region


def tile_points(points: Iterable[tuple[float, float]], radius_km: float) -> list[SearchPoint]:
    """Search points whose circles of `radius_km` cover every given point with slack.

    A square grid of side `radius_km`: the centre of a cell lies within radius/sqrt(2) (~0.71 r)
    of everything in the cell, so a practice up to ~0.29 r beyond its postcode's centroid is
    still inside the search circle. Only cells holding a point get a search point; the result
    is sorted (north to south, west to east) so runs are reproducible."""
    if radius_km <= 0:
        raise ValueError("the tile radius must be positive")
    lat_step = radius_km / _KM_PER_DEG_LAT
    cells: dict[tuple[int, int], float] = {}
    for latitude, longitude in points:
        row = math.floor(latitude / lat_step)
        # Longitude degrees shrink with latitude: size the column by the cell's own latitude.
        centre_lat = (row + 0.5) * lat_step
        lon_step = radius_km / (_KM_PER_DEG_LAT * math.cos(math.radians(centre_lat)))
        column = math.floor(longitude / lon_step)
        cells[(row, column)] = lon_step
    tiles = []
    for (row, column), lon_step in cells.items():
        tiles.append(
            SearchPoint(
                latitude=round((row + 0.5) * lat_step, 6), longitude=round((column + 0.5) * lon_step, 6)
            )
        )
    return sorted(tiles, key=lambda p: (-p.latitude, p.longitude))
