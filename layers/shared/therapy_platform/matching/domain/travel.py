"""Reach by travel time (docs/matching.md "Reach by travel time"). Pure.

A patient may limit their reach in estimated minutes by car or public transport
(`max_travel_minutes` with `travel_mode`) as well as in km. The estimate is the platform's
(`platform/geography/locations.py: estimate_minutes`): geodesic km x a detour factor, driven
through average speeds by area density, the patient's area class derived from the density of
postcode centroids around their home (`postcodes.py: area_density`). The distance API answers
with the same function for the same two points, so matching, the dry run's explanation and
`POST /api/v2/geocoding/distance` agree.

Feature flag `travel_time_reach` (docs/feature-flags.md): on for a search, its minutes limit
decides reach and `max_travel_km` becomes the minutes' search radius (`reach_bound_km`, which
no trip within the limit leaves); off (the fallback), the minutes limit is ignored and the km
limit applies as before. An unknown location never passes either limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Final

from therapy_platform.matching.domain.models import SearchCandidate, TherapistCandidate
from therapy_platform.platform.geography.locations import (
    AreaDensity,
    Location,
    TravelMode,
    distance_km,
    estimate_minutes,
    reach_bound_km,
)

MODE_WORDS: Final = {TravelMode.CAR: "by car", TravelMode.TRANSIT: "by public transport"}


def trip_minutes(patient: Location, therapist: Location, mode: TravelMode, area: AreaDensity) -> int | None:
    """Estimated minutes from the patient's home to the practice; None when either location is
    unknown (never a number for an unknown place)."""
    if not (patient.is_known and therapist.is_known):
        return None
    return estimate_minutes(distance_km(patient, therapist), mode, area)


def with_travel_time_reach(search: SearchCandidate, enabled: bool) -> SearchCandidate:
    """The search as a round applies it: with the flag on and a minutes limit, the minutes decide
    and the km radius is the limit's search radius; otherwise the km limit alone."""
    if search.max_travel_minutes is None:
        return search
    if not enabled:
        return dataclasses.replace(search, max_travel_minutes=None)
    return dataclasses.replace(search, max_travel_km=reach_bound_km(search.max_travel_minutes))


def apply_travel_time_reach(
    searches: Iterable[SearchCandidate], enabled: Callable[[SearchCandidate], bool]
) -> list[SearchCandidate]:
    """Every search as the round applies it; `enabled` (the feature flag) is asked only for
    searches that carry a minutes limit."""
    return [
        with_travel_time_reach(search, enabled(search)) if search.max_travel_minutes is not None else search
        for search in searches
    ]


def describe_reach(minutes: int, limit: int, mode: TravelMode) -> str:
    """The dry run's words for one pair: "≈ 24 min by public transport (limit 30)"."""
    return f"≈ {minutes} min {MODE_WORDS[mode]} (limit {limit})"


def reach_detail(therapist: TherapistCandidate, search: SearchCandidate) -> str | None:
    """The explanation of a pair's reach when the search has a minutes limit in force (the
    search as `with_travel_time_reach` left it); None otherwise or for an unknown location."""
    if search.max_travel_minutes is None:
        return None
    minutes = trip_minutes(search.location, therapist.location, search.travel_mode, search.travel_area)
    if minutes is None:
        return None
    return describe_reach(minutes, search.max_travel_minutes, search.travel_mode)
