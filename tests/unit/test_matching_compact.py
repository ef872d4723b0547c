"""The compact forms a fast round decides with give the answers of the rules they stand for."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_platform.contracts.schedule import Weekday, overlap_minutes, total_minutes
from therapy_platform.matching.domain import (
    SearchCandidate,
    SoftFilter,
    TherapistCandidate,
    in_reach,
    progressive_filter,
)
from therapy_platform.matching.domain.compact import (
    ReachScreen,
    ScheduleBits,
    approx_geodesic_km,
    choose_members,
    shared_minutes,
    unit_vector,
)
from therapy_platform.platform.geography.locations import Location, LocationPrecision, TravelMode, geodesic_km

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_the_geodesic_estimate_is_far_better_than_its_safety_band() -> None:
    """The estimate only settles pairs more than 1e-4 of the limit away; it must be orders of
    magnitude closer than that wherever it answers."""
    rng = random.Random(7)
    worst = 0.0
    for _ in range(20_000):
        lat1, lon1 = rng.uniform(-75, 75), rng.uniform(-180, 180)
        km, bearing = rng.uniform(0.05, 420), rng.uniform(0, 2 * math.pi)
        lat2 = max(-75.0, min(75.0, lat1 + km / 111 * math.cos(bearing)))
        lon2 = lon1 + km / (111 * math.cos(math.radians(lat1))) * math.sin(bearing)
        estimate = approx_geodesic_km(lat1, lon1, lat2, lon2)
        if estimate is not None and abs(lon2) <= 180:
            exact = geodesic_km(lat1, lon1, lat2, lon2)
            worst = max(worst, abs(estimate - exact) / exact)
    assert worst < 1e-5
    assert approx_geodesic_km(80.0, 0.0, 80.1, 0.0) is None  # outside the measured range
    assert approx_geodesic_km(50.0, 179.9, 50.0, -179.9) is None


def _therapist_at(latitude: float, longitude: float) -> TherapistCandidate:
    return TherapistCandidate(
        id=uuid.UUID(int=1),
        created_at=T0,
        status="active",
        location=Location.at(latitude, longitude, LocationPrecision.ADDRESS),
    )


@settings(max_examples=600, deadline=None)
@given(
    latitude=st.floats(-70, 70),
    longitude=st.floats(-175, 175),  # the other point lies up to ~3.3° east or west at 70° N
    max_km=st.sampled_from([0.0, 0.3, 1.0, 5.0, 10.0, 25.0, 50.0, 120.0]),
    ratio=st.floats(0.97, 1.03),
    bearing=st.floats(0, 2 * math.pi),
    minutes=st.sampled_from([None, None, 20, 60]),
    mode=st.sampled_from(list(TravelMode)),
)
def test_the_reach_screen_decides_as_in_reach_near_the_limit(
    latitude: float,
    longitude: float,
    max_km: float,
    ratio: float,
    bearing: float,
    minutes: int | None,
    mode: TravelMode,
) -> None:
    km = max(max_km, 0.2) * ratio
    other_latitude = latitude + km / 111.2 * math.cos(bearing)
    other_longitude = longitude + km / (111.2 * math.cos(math.radians(latitude))) * math.sin(bearing)
    search = SearchCandidate(
        id=uuid.UUID(int=2),
        patient_id=uuid.UUID(int=3),
        created_at=T0,
        location=Location.at(latitude, longitude, LocationPrecision.ADDRESS),
        max_travel_km=max_km,
        travel_mode=mode,
        max_travel_minutes=minutes,
    )
    owner = _therapist_at(other_latitude, other_longitude)
    screen = ReachScreen(search)
    chord = math.dist(unit_vector(latitude, longitude), unit_vector(other_latitude, other_longitude))
    if chord < screen.surely_in:
        decided = True
    elif chord > screen.surely_out:
        decided = False
    else:
        decided = screen.decide(chord, owner, search)
    assert decided is in_reach(owner, search)


windows = st.tuples(st.integers(-30, 1470), st.integers(-30, 1470))
schedules = st.dictionaries(
    st.sampled_from([*Weekday, "mon", "holiday"]),
    st.lists(st.one_of(windows, st.sampled_from([(480, 720), (720, 1080), (600, 615)])), max_size=3).map(
        tuple
    ),
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(first=schedules, second=schedules)
def test_schedule_bits_count_the_minutes_overlap_minutes_counts(
    first: dict[object, tuple[tuple[int, int], ...]], second: dict[object, tuple[tuple[int, int], ...]]
) -> None:
    expected = total_minutes(overlap_minutes(first, second))  # type: ignore[arg-type]
    assert shared_minutes(ScheduleBits(first), ScheduleBits(second)) == expected  # type: ignore[arg-type]


def _search(n: int) -> SearchCandidate:
    return SearchCandidate(
        id=uuid.UUID(int=1000 + n),
        patient_id=uuid.UUID(int=2000 + n),
        created_at=T0,
        location=Location.unknown(),
    )


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    count=st.integers(0, 60),
    names=st.lists(st.sampled_from(list(SoftFilter)), max_size=5),
    minimum=st.integers(1, 4),
    take=st.integers(1, 7),
)
def test_choose_members_keeps_what_progressive_filtering_keeps(
    data: st.DataObject, count: int, names: list[SoftFilter], minimum: int, take: int
) -> None:
    positions = list(range(count))
    answers = [data.draw(st.lists(st.booleans(), min_size=count, max_size=count)) for _ in names]
    filters = [(name, answer.__getitem__) for name, answer in zip(names, answers, strict=True)]
    searches = [_search(p) for p in positions]

    def on_search(answer: list[bool]) -> Callable[[SearchCandidate], bool]:
        return lambda search: answer[search.id.int - 1000]

    expected = progressive_filter(
        searches, [(name, on_search(answer)) for name, answer in zip(names, answers, strict=True)], minimum
    )
    chosen = choose_members(iter(positions), filters, minimum, take)
    if count < minimum:
        assert chosen is None
        return
    assert chosen is not None
    kept, applied, skipped = chosen
    assert [searches[p] for p in kept] == list(expected.kept[:take])
    assert (applied, skipped) == (expected.applied, expected.skipped)
