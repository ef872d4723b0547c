"""A whole bundle round as one pure function, and the bundle staff build for one therapist.

`plan_round` is deterministic: inputs are grouped and sorted by id before anything is decided,
so the same therapists, searches, configuration and date give the same plan in any input order.

Speed: pairs are not formed all against all. Practices are bucketed on a latitude/longitude
grid; each search looks only at the cells its own travel radius can reach, and the hard
constraints (distance last) run on those pairs only.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from therapy_platform.domain.matching.models import (
    DEFAULT_CONFIG,
    MatchingConfig,
    Reason,
    SearchCandidate,
    SoftFilter,
    TherapistCandidate,
)
from therapy_platform.domain.matching.rules import (
    LearnedPreference,
    Practice,
    decide_practice,
    group_into_practices,
    hard_constraint_failure,
    progressive_filter,
    remaining_slots,
    search_ineligibility,
    soft_filters_for,
    waiting_order,
)

_CELL_LAT_DEG = 0.2  # about 22 km
_CELL_LON_DEG = 0.3  # about 21 km at 51 degrees north
_KM_PER_DEG_LAT_MIN = 110.5  # a degree of latitude is at least this long anywhere
_KM_PER_DEG_LON_EQUATOR = 111.33
_REACH_MARGIN = 1.01  # the grid only preselects; the exact distance check follows


@dataclass(frozen=True)
class PlannedMember:
    search_id: uuid.UUID
    patient_id: uuid.UUID
    position: int  # 1..6, longest waiting first


@dataclass(frozen=True)
class PlannedBundle:
    therapist_id: uuid.UUID  # the practice owner the bundle is addressed to
    practice_key: str
    members: tuple[PlannedMember, ...]
    applied_filters: tuple[SoftFilter, ...]
    skipped_filters: tuple[SoftFilter, ...]


@dataclass(frozen=True)
class TherapistDecision:
    therapist_id: uuid.UUID
    reason: Reason


@dataclass(frozen=True)
class SearchDecision:
    search_id: uuid.UUID
    reason: Reason


@dataclass(frozen=True)
class PairDecision:
    """Why one search did not enter one practice's bundle (only in an explained plan)."""

    therapist_id: uuid.UUID
    search_id: uuid.UUID
    reason: Reason
    soft_filter: SoftFilter | None = None  # which preference, when reason is SOFT_FILTER


@dataclass(frozen=True)
class RoundPlan:
    bundles: tuple[PlannedBundle, ...]
    therapists_left_out: tuple[TherapistDecision, ...]  # sorted by therapist id
    searches_left_out: tuple[SearchDecision, ...]  # eligible or not, in no bundle; sorted by id
    pairs: tuple[PairDecision, ...]  # empty unless explain=True; pairs out of grid reach omitted


class _Grid:
    def __init__(self, practices: Sequence[Practice]) -> None:
        self._cells: dict[tuple[int, int], list[int]] = {}
        for index, practice in enumerate(practices):
            location = practice.owner.location
            assert location.latitude is not None and location.longitude is not None  # eligible: known
            self._cells.setdefault(self._cell(location.latitude, location.longitude), []).append(index)

    @staticmethod
    def _cell(latitude: float, longitude: float) -> tuple[int, int]:
        return math.floor(latitude / _CELL_LAT_DEG), math.floor(longitude / _CELL_LON_DEG)

    def near(self, latitude: float, longitude: float, radius_km: float) -> list[int]:
        """Indexes of practices in every cell a circle of `radius_km` may touch (a superset)."""
        radius_km = radius_km * _REACH_MARGIN + 0.1
        dlat = radius_km / _KM_PER_DEG_LAT_MIN
        widest = min(89.0, max(abs(latitude - dlat), abs(latitude + dlat)))
        dlon = radius_km / (_KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(widest)))
        row_low, col_low = self._cell(latitude - dlat, longitude - min(dlon, 180.0))
        row_high, col_high = self._cell(latitude + dlat, longitude + min(dlon, 180.0))
        found: list[int] = []
        cells = self._cells
        for row in range(row_low, row_high + 1):
            for col in range(col_low, col_high + 1):
                bucket = cells.get((row, col))
                if bucket:
                    found.extend(bucket)
        return found


def plan_round(
    therapists: Iterable[TherapistCandidate],
    searches: Iterable[SearchCandidate],
    today: date,
    config: MatchingConfig = DEFAULT_CONFIG,
    *,
    learned: LearnedPreference | None = None,
    explain: bool = False,
) -> RoundPlan:
    """Plan one automatic round: which practice gets which searches.

    Each eligible practice gets at most one bundle, addressed to its owner, of
    `min_bundle_size`..`max_bundle_size` searches that satisfy every hard constraint, after
    progressive filtering, longest waiting first. A search may enter several bundles, as many
    as its contact budget and open-bundle limit still allow. Practices are served scarcest
    first (potentially available ones before the others, then fewest candidates), so that a
    therapist with few matching patients is not emptied by one with many.
    `explain` adds a decision for every pair the grid brought together (dry runs)."""
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

    pairs: list[PairDecision] = []
    candidates: list[list[SearchCandidate]] = [[] for _ in practices]
    matched_somewhere: set[uuid.UUID] = set()
    failed_other_than_distance: set[uuid.UUID] = set()
    grid = _Grid(practices)
    for search in eligible:  # in waiting order, so every candidate list is in waiting order too
        latitude, longitude = search.location.latitude, search.location.longitude
        assert latitude is not None and longitude is not None  # eligible: known location
        for index in grid.near(latitude, longitude, search.max_travel_km):
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
            searches_left_out[search.id] = Reason.NOT_CHOSEN
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


@dataclass(frozen=True)
class StaffBundlePlan:
    bundle: PlannedBundle | None
    therapist_reason: Reason | None  # why the chosen therapist may not get a bundle
    pairs: tuple[PairDecision, ...]  # every search left out, with the reason


def plan_staff_bundle(
    therapist_id: uuid.UUID,
    practice_members: Iterable[TherapistCandidate],
    searches: Iterable[SearchCandidate],
    today: date,
    config: MatchingConfig = DEFAULT_CONFIG,
    *,
    size: int | None = None,
    search_ids: Sequence[uuid.UUID] | None = None,
    learned: LearnedPreference | None = None,
) -> StaffBundlePlan:
    """A bundle staff build for one chosen therapist: `staff_min_bundle_size`..`size` members
    (default and ceiling: `max_bundle_size`), the same eligibility and hard constraints as a
    round. With `search_ids` staff pick the searches themselves and no soft filter applies;
    otherwise progressive filtering as in a round. `practice_members` are every therapist of
    the chosen one's practice (their open bundles and cooling count)."""
    limit = config.max_bundle_size if size is None else size
    if not config.staff_min_bundle_size <= limit <= config.max_bundle_size:
        raise ValueError(
            f"a bundle holds {config.staff_min_bundle_size} to {config.max_bundle_size} patients, not {limit}"
        )
    members = list(practice_members)
    if therapist_id not in {t.id for t in members}:
        raise ValueError("practice_members must include the chosen therapist")
    decision = decide_practice(members, today)
    if decision.practice is None or decision.practice.owner.id != therapist_id:
        refusal = dict(decision.left_out).get(therapist_id, Reason.NOT_PRACTICE_OWNER)
        return StaffBundlePlan(None, refusal, ())
    practice = decision.practice
    chosen_ids = None if search_ids is None else set(search_ids)
    pairs: list[PairDecision] = []
    available: list[SearchCandidate] = []
    patients: set[uuid.UUID] = set()
    for search in sorted(searches, key=waiting_order):
        reason: Reason | None
        if chosen_ids is not None and search.id not in chosen_ids:
            reason = Reason.NOT_IN_SELECTION
        else:
            reason = search_ineligibility(search, config) or hard_constraint_failure(practice, search, today)
        if reason is None and search.patient_id in patients:
            reason = Reason.PATIENT_ALREADY_IN_BUNDLE
        if reason is None:
            available.append(search)
            patients.add(search.patient_id)
        else:
            pairs.append(PairDecision(therapist_id, search.id, reason))
    filters = [] if chosen_ids is not None else soft_filters_for(practice.owner, config, today, learned)
    filtered = progressive_filter(available, filters, config.min_bundle_size)
    chosen = filtered.kept[:limit]
    pairs.extend(PairDecision(therapist_id, sid, Reason.SOFT_FILTER, name) for sid, name in filtered.dropped)
    pairs.extend(PairDecision(therapist_id, s.id, Reason.BUNDLE_FULL) for s in filtered.kept[limit:])
    if len(chosen) < config.staff_min_bundle_size:
        return StaffBundlePlan(None, Reason.TOO_FEW_CANDIDATES, tuple(pairs))
    bundle = PlannedBundle(
        therapist_id=therapist_id,
        practice_key=practice.key,
        members=tuple(PlannedMember(s.id, s.patient_id, i) for i, s in enumerate(chosen, start=1)),
        applied_filters=filtered.applied,
        skipped_filters=filtered.skipped,
    )
    return StaffBundlePlan(bundle, None, tuple(pairs))
