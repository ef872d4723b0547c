"""Listings: what the therapist service remembers of each directory entry it imported (its
therapist, the content hash of what was imported, where it is, a review mark while the entry
is missing from the directory), and when a complete run's silence about a listing means the
entry left the directory. Pure rules.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from therapy_platform.contracts.directory_files import Region, RegionKind, SearchPoint

REASON_VANISHED: Final = "vanished_from_directory"
REASON_BACK: Final = "back_in_directory"
_KM_PER_DEG_LAT: Final = 111.32


@dataclass(frozen=True)
class Listing:
    """What the therapist service remembers of a directory entry it imported."""

    directory_id: str
    therapist_id: uuid.UUID
    content_hash: str
    postcode: str | None
    latitude: float | None
    longitude: float | None
    review_reason: str | None = None  # set while the entry is missing from the directory
    review_since: datetime | None = None


def approx_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance in km; within a fraction of a percent over tens of km."""
    x = (b[1] - a[1]) * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(x, b[0] - a[0]) * _KM_PER_DEG_LAT


def in_scope(
    region: Region,
    points: Sequence[SearchPoint],
    radius_km: float,
    *,
    postcode: str | None,
    latitude: float | None,
    longitude: float | None,
) -> bool:
    """Whether a complete run of `region` must have seen a listing stored with this postcode and
    position: only then may its absence mean it left the directory. Listings near the edge of
    every search circle (last 10 %, at least 1 km) are out of scope: positions are imprecise."""
    if region.kind is RegionKind.PREFIX and not (postcode or "").startswith(region.prefix or "-"):
        return False
    if latitude is None or longitude is None:
        return False
    inner = radius_km - max(1.0, radius_km * 0.1)
    return any(approx_km((p.latitude, p.longitude), (latitude, longitude)) <= inner for p in points)
