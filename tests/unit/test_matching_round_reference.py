"""The fast round (bit masks, chord screen, lazy progressive filtering, NumPy pair search)
plans exactly what the straightforward rules plan: `reference_plan_round` below applies
`hard_constraint_failure`, `soft_filters_for` and `progressive_filter` pair by pair, as the
first version of `plan_round` did."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching_strategies import BASE, TODAY, worlds
from therapy_platform.contracts.schedule import Weekday
from therapy_platform.contracts.therapy import TherapyProcedure
from therapy_platform.matching.domain import (
    DEFAULT_CONFIG,
    MatchingConfig,
    PairDecision,
    PlannedBundle,
    PlannedMember,
    Practice,
    Reason,
    RoundPlan,
    SearchCandidate,
    SearchDecision,
    TherapistCandidate,
    TherapistDecision,
    decide_practice,
    group_into_practices,
    hard_constraint_failure,
    plan_round,
    progressive_filter,
    remaining_slots,
    search_ineligibility,
    soft_filters_for,
    waiting_order,
)
from therapy_platform.matching.domain import round as round_module
from therapy_platform.matching.domain.compact import grid_cell, grid_window
from therapy_platform.matching.domain.models import SoftFilter
from therapy_platform.matching.domain.rules import LearnedPreference, not_chosen_reason
from therapy_platform.platform.geography.locations import Location, LocationPrecision

World = tuple[list[TherapistCandidate], list[SearchCandidate]]
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _near(
    cells: dict[tuple[int, int], list[int]], latitude: float, longitude: float, radius_km: float
) -> Iterator[int]:
    """Practice indexes in every grid cell the search's radius may touch, cell by cell."""
    row_low, row_high, col_low, col_high = grid_window(latitude, longitude, radius_km)
    for row in range(row_low, row_high + 1):
        for col in range(col_low, col_high + 1):
            yield from cells.get((row, col), ())


def reference_plan_round(
    therapists: Iterable[TherapistCandidate],
    searches: Iterable[SearchCandidate],
    today: date,
    config: MatchingConfig = DEFAULT_CONFIG,
    *,
    learned: LearnedPreference | None = None,
    explain: bool = False,
) -> RoundPlan:
    therapists_left_out: list[TherapistDecision] = []
    practices: list[Practice] = []
    for members in group_into_practices(therapists).values():
        decision = decide_practice(members, today)
        therapists_left_out.extend(TherapistDecision(tid, reason) for tid, reason in decision.left_out)
        if decision.practice is not None:
            practices.append(decision.practice)
    searches_left_out: dict[uuid.UUID, Reason] = {}
    eligible: list[SearchCandidate] = []
    for search in sorted(searches, key=waiting_order):
        ineligible = search_ineligibility(search, config)
        if ineligible is None:
            eligible.append(search)
        else:
            searches_left_out[search.id] = ineligible

    cells: dict[tuple[int, int], list[int]] = {}
    for index, practice in enumerate(practices):
        location = practice.owner.location
        assert location.latitude is not None and location.longitude is not None
        cells.setdefault(grid_cell(location.latitude, location.longitude), []).append(index)
    pairs: list[PairDecision] = []
    candidates: list[list[SearchCandidate]] = [[] for _ in practices]
    matched_somewhere: set[uuid.UUID] = set()
    failed_other_than_distance: set[uuid.UUID] = set()
    for search in eligible:
        assert search.location.latitude is not None and search.location.longitude is not None
        for index in _near(cells, search.location.latitude, search.location.longitude, search.max_travel_km):
            failure = hard_constraint_failure(practices[index], search, today)
            if failure is None:
                candidates[index].append(search)
                matched_somewhere.add(search.id)
            else:
                if failure is not Reason.OUT_OF_REACH:
                    failed_other_than_distance.add(search.id)
                if explain:
                    pairs.append(PairDecision(practices[index].owner.id, search.id, failure))

    slots = {search.id: remaining_slots(search, config) for search in eligible}
    order = sorted(
        range(len(practices)),
        key=lambda i: (not practices[i].owner.potentially_available, len(candidates[i]), practices[i].key),
    )
    bundles: list[PlannedBundle] = []
    bundled: list[tuple[int, list[tuple[SoftFilter, Callable[[SearchCandidate], bool]]]]] = []
    in_a_bundle: set[uuid.UUID] = set()
    for index in order:
        practice = practices[index]
        owner_id = practice.owner.id
        available: list[SearchCandidate] = []
        patients: set[uuid.UUID] = set()
        for search in candidates[index]:
            reason: Reason | None
            if slots[search.id] <= 0:
                reason = Reason.SEARCH_LIMIT_REACHED
            elif search.patient_id in patients:
                reason = Reason.PATIENT_ALREADY_IN_BUNDLE
            else:
                reason = None
                available.append(search)
                patients.add(search.patient_id)
            if reason is not None and explain:
                pairs.append(PairDecision(owner_id, search.id, reason))
        if len(available) < config.min_bundle_size:
            therapists_left_out.append(TherapistDecision(owner_id, Reason.TOO_FEW_CANDIDATES))
            continue
        filtered = progressive_filter(
            available, soft_filters_for(practice.owner, config, today, learned), config.min_bundle_size
        )
        chosen = filtered.kept[: config.max_bundle_size]
        filters = soft_filters_for(practice.owner, config, today, learned)
        bundled.append((index, [(name, test) for name, test in filters if name in filtered.applied]))
        for search in chosen:
            slots[search.id] -= 1
            in_a_bundle.add(search.id)
        bundles.append(
            PlannedBundle(
                therapist_id=owner_id,
                practice_key=practice.key,
                members=tuple(
                    PlannedMember(search.id, search.patient_id, position)
                    for position, search in enumerate(chosen, start=1)
                ),
                applied_filters=filtered.applied,
                skipped_filters=filtered.skipped,
            )
        )
        if explain:
            for sid, name in filtered.dropped:
                pairs.append(PairDecision(owner_id, sid, Reason.SOFT_FILTER, name))
            for search in filtered.kept[len(chosen) :]:
                pairs.append(PairDecision(owner_id, search.id, Reason.BUNDLE_FULL))

    for search in eligible:
        if search.id in in_a_bundle:
            continue
        if search.id in matched_somewhere:
            # At every bundle it was a candidate of: the first applied soft preference that
            # rejects it, or a loss of another kind.
            rejections: list[SoftFilter] = []
            other = 0
            for index, applied in bundled:
                if any(candidate is search for candidate in candidates[index]):
                    rejecting = [name for name, test in applied if not test(search)]
                    if rejecting:
                        rejections.append(rejecting[0])
                    else:
                        other += 1
            searches_left_out[search.id] = not_chosen_reason(rejections, other)
        elif search.id in failed_other_than_distance:
            searches_left_out[search.id] = Reason.NO_MATCHING_THERAPIST
        else:
            searches_left_out[search.id] = Reason.NO_THERAPIST_IN_REACH
    return RoundPlan(
        bundles=tuple(bundles),
        therapists_left_out=tuple(sorted(therapists_left_out, key=lambda d: (str(d.therapist_id), d.reason))),
        searches_left_out=tuple(
            SearchDecision(sid, searches_left_out[sid]) for sid in sorted(searches_left_out, key=str)
        ),
        pairs=tuple(pairs),
    )


# ------------------------------------------------------------------ worlds that stress the fast path

# Windows off the quarter hour, touching, overlapping (not representable as bits: the fast
# path must fall back), empty and reversed.
_odd_schedules = st.dictionaries(
    st.sampled_from([Weekday.MON, Weekday.TUE, Weekday.SAT]),
    st.sampled_from(
        [
            ((480, 725),),
            ((601, 662), (662, 700)),
            ((500, 700), (600, 800)),
            (),
            ((700, 650),),
            ((0, 1440),),
        ]
    ),
    max_size=2,
)


@st.composite
def stressed_worlds(draw: st.DrawFn) -> World:
    """Dense worlds with odd schedules, radii around the distances at hand (pairs near the
    limit, some with a minutes limit) and a few more practices."""
    therapists, searches = draw(worlds(dense=True))
    therapists = [
        replace(t, working_hours=draw(_odd_schedules)) if draw(st.integers(0, 2)) == 0 else t
        for t in therapists
    ]
    changed: list[SearchCandidate] = []
    for search in searches:
        if draw(st.booleans()):
            search = replace(
                search,
                availability=draw(_odd_schedules),
                max_travel_km=draw(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 60.0])),
                max_travel_minutes=draw(st.sampled_from([None, None, None, 12, 20])),
            )
        changed.append(search)
    return therapists, changed


def _learned(owner: TherapistCandidate, search: SearchCandidate) -> bool:
    return (owner.id.int + search.id.int) % 3 != 0


@pytest.fixture(params=[True, False], ids=["numpy", "pure"])
def pair_search(request: pytest.FixtureRequest) -> Iterator[None]:
    previous = round_module.USE_NUMPY
    round_module.USE_NUMPY = request.param
    yield
    round_module.USE_NUMPY = previous


@PROPERTY
@given(world=st.one_of(worlds(dense=True), worlds(), stressed_worlds()))
def test_the_fast_round_plans_exactly_what_the_rules_plan(pair_search: None, world: World) -> None:
    therapists, searches = world
    for explain in (False, True):
        assert plan_round(therapists, searches, TODAY, explain=explain) == reference_plan_round(
            therapists, searches, TODAY, explain=explain
        )


@PROPERTY
@given(
    world=st.one_of(worlds(dense=True), stressed_worlds()),
    sizes=st.sampled_from([(1, 1, 2), (2, 4, 1), (3, 6, 3), (1, 3, 5)]),
    overlap=st.sampled_from([0, 60, 150]),
    use_learned=st.booleans(),
)
def test_the_fast_round_follows_the_configuration_and_learned_preferences(
    pair_search: None, world: World, sizes: tuple[int, int, int], overlap: int, use_learned: bool
) -> None:
    therapists, searches = world
    minimum, maximum, open_limit = sizes
    config = MatchingConfig(
        min_bundle_size=minimum,
        max_bundle_size=maximum,
        max_open_bundles_per_search=open_limit,
        min_availability_overlap_minutes=overlap,
    )
    learned = _learned if use_learned else None
    for explain in (False, True):
        assert plan_round(
            therapists, searches, TODAY, config, learned=learned, explain=explain
        ) == reference_plan_round(therapists, searches, TODAY, config, learned=learned, explain=explain)


def _spread_world(seed: int, therapist_count: int, search_count: int) -> World:
    """A larger world over a few hundred km (many grid cells, runs and chord limits)."""
    rng = random.Random(seed)
    therapists = []
    for n in range(therapist_count):
        email = f"team{rng.randrange(therapist_count // 2 + 1)}@example.de" if rng.random() < 0.5 else None
        therapists.append(
            TherapistCandidate(
                id=uuid.UUID(int=n + 1),
                created_at=BASE,
                status="active" if rng.random() < 0.95 else "blocked",
                location=Location.at(
                    rng.uniform(50.0, 53.0), rng.uniform(8.0, 13.0), LocationPrecision.POSTCODE
                ),
                practice_key=email,
                procedures=frozenset(rng.sample(sorted(_procedures()), rng.randint(1, 2))),
                working_hours={Weekday.MON: ((rng.choice([480, 540, 600]), 900),)}
                if rng.random() < 0.7
                else {},
                symptom_preferences=frozenset(rng.sample(["grief", "anxiety", "trauma"], rng.randint(0, 2))),
                preferred_age_band=rng.choice([None, (25, 45)]),
                offers_group_therapy=rng.random() < 0.3,
                potentially_available=rng.random() < 0.3,
            )
        )
    searches = []
    for n in range(search_count):
        searches.append(
            SearchCandidate(
                id=uuid.UUID(int=10**6 + n),
                patient_id=uuid.UUID(int=2 * 10**6 + rng.randrange(search_count)),
                created_at=BASE.replace(minute=rng.randrange(60), hour=rng.randrange(24)),
                location=Location.at(
                    rng.uniform(50.0, 53.0), rng.uniform(8.0, 13.0), LocationPrecision.POSTCODE
                ),
                birth_date=date(rng.randint(1950, 2004), 1, 1) if rng.random() < 0.95 else None,
                therapy_procedures=frozenset(rng.sample(sorted(_procedures()), rng.randint(1, 3))),
                max_travel_km=float(rng.choice([10, 25, 40, 50, 80])),
                availability={Weekday.MON: ((rng.choice([480, 600, 780]), 1020),)}
                if rng.random() < 0.8
                else {},
                symptoms=frozenset(rng.sample(["grief", "anxiety", "trauma"], rng.randint(1, 2))),
                open_to_group_therapy=rng.random() < 0.3,
                contact_budget=rng.choice([1, 3, 6]),
                open_bundle_count=rng.choice([0, 0, 1, 2]),
                contacted_practices=frozenset({f"team{rng.randrange(therapist_count // 2 + 1)}@example.de"})
                if rng.random() < 0.3
                else frozenset(),
            )
        )
    return therapists, searches


def _somewhere(rng: random.Random) -> Location:
    return Location.at(rng.uniform(50.0, 53.0), rng.uniform(8.0, 13.0), LocationPrecision.POSTCODE)


def _monday(rng: random.Random, starts: list[int], end: int) -> dict[Weekday, tuple[tuple[int, int], ...]]:
    return {Weekday.MON: ((rng.choice(starts), end),)}


def _procedures() -> set[TherapyProcedure]:
    return set(TherapyProcedure)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_larger_spread_world_plans_the_same(pair_search: None, seed: int) -> None:
    therapists, searches = _spread_world(seed, 300, 1500)
    plan = plan_round(therapists, searches, TODAY)
    assert plan == reference_plan_round(therapists, searches, TODAY)
    assert plan.bundles  # the world is dense enough for bundles to form


def test_numpy_pair_search_is_available() -> None:
    # NumPy is a dependency of the layer (without it rounds plan the same, only slower).
    from therapy_platform.matching.domain import bulk

    assert callable(bulk.find_candidates)
