"""A whole bundle round as one pure function, and the bundle staff build for one therapist.

`plan_round` is deterministic: inputs are grouped and sorted by id before anything is decided,
so the same therapists, searches, configuration and date give the same plan in any input order.

Speed (a national round: 35,000 therapists, 100,000 searches, some 22 million pairs that
the grid brings together, in about 7 s; see benchmarks/matching_round.py): pairs are not
formed all against all. Practices are numbered in latitude/longitude grid order, so each
search looks only at the runs of practices in the cells its travel radius can reach. The
hard constraints but distance are bit masks over that numbering (`compact.PracticeIndex`),
distance is screened by chord length (`compact.ReachScreen`, exact geodesic only near the
limit), NumPy expands the passing runs into pairs when it is installed (`bulk`; the pure
search `_find_candidates` gives the same answers and serves `explain`), and progressive
filtering asks each soft preference only what the bundle depends on (`compact.choose_members`).
Every shortcut gives the answers of the rules in `rules.py`;
tests/unit/test_matching_round_reference.py compares whole plans with a straightforward
implementation of them.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import compress, repeat
from operator import itemgetter
from typing import Any

from therapy_platform.matching.domain.compact import (
    Candidates,
    PracticeIndex,
    ReachScreen,
    SearchTable,
    choose_members,
    soft_filters_by_position,
    unit_vector,
)
from therapy_platform.matching.domain.models import (
    DEFAULT_CONFIG,
    MatchingConfig,
    Reason,
    SearchCandidate,
    SoftFilter,
    TherapistCandidate,
)
from therapy_platform.matching.domain.rules import (
    LearnedPreference,
    Practice,
    decide_practice,
    group_into_practices,
    hard_constraint_failure,
    not_chosen_reason,
    progressive_filter,
    remaining_slots,
    search_ineligibility,
    soft_filters_for,
    waiting_order,
)

USE_NUMPY = True  # tests switch it off to compare both candidate searches


def numpy_pair_search() -> Callable[[PracticeIndex, SearchTable, Sequence[int]], Candidates] | None:
    """NumPy finds the candidate pairs of a national round in a fraction of the time. Imported
    here, on the first round planned, so that functions which never plan one (read models,
    expiry) do not load it; only those that plan rounds ship the NumPy layer. Without it the
    pure-Python search gives the same answers."""
    if not USE_NUMPY:
        return None
    try:
        from therapy_platform.matching.domain import bulk
    except ImportError:  # pragma: no cover - no NumPy layer attached
        return None
    return bulk.find_candidates


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
    # Searches and patients as small integers (what the rules key by id, keyed alike).
    first_with_id: dict[uuid.UUID, int] = {}
    search_key = [first_with_id.setdefault(search.id, position) for position, search in enumerate(eligible)]
    patient_codes: dict[uuid.UUID, int] = {}
    patient_key = [patient_codes.setdefault(search.patient_id, len(patient_codes)) for search in eligible]

    pairs: list[PairDecision] = []
    index = PracticeIndex(practices)
    table = SearchTable(eligible, today)
    find_in_bulk = None if explain else numpy_pair_search()
    if find_in_bulk is None:
        candidates = _find_candidates(index, table, search_key, pairs if explain else None)
    else:
        candidates = find_in_bulk(index, table, search_key)

    slots = [remaining_slots(search, config) for search in eligible]  # by search key
    open_slot = bytearray(slots[key] > 0 for key in search_key)  # by position
    positions_of_key: dict[int, list[int]] = {}
    for position, key in enumerate(search_key):
        positions_of_key.setdefault(key, []).append(position)
    patient_searches = Counter(patient_key)
    shares_patient = (
        bytes(patient_searches[key] > 1 for key in patient_key)
        if len(patient_searches) < len(patient_key)
        else None
    )
    in_a_bundle = bytearray(len(eligible))
    bundles: list[PlannedBundle] = []
    bundled: list[tuple[int, list[tuple[SoftFilter, Callable[[int], Any]]]]] = []  # slot, applied filters
    by_slot = index.practices
    order = sorted(
        range(index.size),
        key=lambda s: (not by_slot[s].owner.potentially_available, len(candidates[s]), by_slot[s].key),
    )
    for slot in order:
        practice = by_slot[slot]
        owner_id = practice.owner.id
        filters = soft_filters_by_position(practice.owner, table, config, learned)
        if explain:
            chosen_or_none = _explained_members(
                practice, candidates[slot], eligible, slots, search_key, patient_key, filters, config, pairs
            )
        else:
            chosen_or_none = choose_members(
                _available(candidates[slot], open_slot, patient_key, shares_patient),
                filters,
                config.min_bundle_size,
                config.max_bundle_size,
            )
        if chosen_or_none is None:
            therapists_left_out.append(TherapistDecision(owner_id, Reason.TOO_FEW_CANDIDATES))
            continue
        chosen, applied, skipped = chosen_or_none
        bundled.append((slot, [(name, predicate) for name, predicate in filters if name in applied]))
        for position in chosen:
            key = search_key[position]
            slots[key] -= 1
            in_a_bundle[key] = 1
            if slots[key] <= 0:
                for same in positions_of_key[key]:
                    open_slot[same] = 0
        bundles.append(
            PlannedBundle(
                therapist_id=owner_id,
                practice_key=practice.key,
                members=tuple(
                    PlannedMember(eligible[p].id, eligible[p].patient_id, number)
                    for number, p in enumerate(chosen, start=1)
                ),
                applied_filters=applied,
                skipped_filters=skipped,
            )
        )

    soft_rejections, other_losses = _losses(bundled, candidates, search_key, in_a_bundle)
    for position, search in enumerate(eligible):
        key = search_key[position]
        if in_a_bundle[key]:
            continue
        if candidates.matched_somewhere[key]:
            searches_left_out[search.id] = not_chosen_reason(soft_rejections.get(key, ()), other_losses[key])
        elif candidates.failed_other_than_distance[key]:
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


def _losses(
    bundled: Sequence[tuple[int, Sequence[tuple[SoftFilter, Callable[[int], Any]]]]],
    candidates: Candidates,
    search_key: Sequence[int],
    in_a_bundle: bytearray,
) -> tuple[dict[int, list[SoftFilter]], Counter[int]]:
    """For every search (by key) matched somewhere but in no bundle: per bundle it was a
    candidate of, the first applied soft preference rejecting it there, or a loss of another
    kind (`rules.not_chosen_reason`). Only the few unplaced searches are looked at."""
    soft: dict[int, list[SoftFilter]] = {}
    other: Counter[int] = Counter()
    unplaced = {
        position
        for position, key in enumerate(search_key)
        if not in_a_bundle[key] and candidates.matched_somewhere[key]
    }
    if not unplaced:
        return soft, other
    for slot, applied in bundled:
        if not unplaced:
            break
        crowded_out = []
        for position in unplaced.intersection(candidates[slot]):
            key = search_key[position]
            rejecting = next((name for name, predicate in applied if not predicate(position)), None)
            if rejecting is None:
                other[key] += 1
                crowded_out.append(position)
            else:
                soft.setdefault(key, []).append(rejecting)
        # One loss of another kind settles `not_chosen`: such a search is not looked at again
        # (a national round leaves tens of thousands of searches out).
        unplaced.difference_update(crowded_out)
    return soft, other


def _on_search(
    predicate: Callable[[int], Any], position_of: dict[int, int]
) -> Callable[[SearchCandidate], bool]:
    return lambda search: bool(predicate(position_of[id(search)]))


def _available(
    candidates: list[int], open_slot: bytearray, patient_key: Sequence[int], shares_patient: bytes | None
) -> Iterator[int]:
    """The candidates that may still enter a bundle (slots left, one search per patient), as
    the rule walks them: a search without slots is passed over before its patient counts."""
    with_slots = compress(candidates, map(open_slot.__getitem__, candidates))
    if shares_patient is None:  # no patient has two searches in this round
        return with_slots
    return _one_per_patient(with_slots, patient_key, shares_patient)


def _one_per_patient(
    positions: Iterator[int], patient_key: Sequence[int], shares_patient: bytes
) -> Iterator[int]:
    patients: set[int] = set()
    for position in positions:
        if shares_patient[position]:
            patient = patient_key[position]
            if patient in patients:
                continue
            patients.add(patient)
        yield position


def _explained_members(
    practice: Practice,
    candidates: list[int],
    eligible: Sequence[SearchCandidate],
    slots: Sequence[int],
    search_key: Sequence[int],
    patient_key: Sequence[int],
    filters: Sequence[tuple[SoftFilter, Callable[[int], Any]]],
    config: MatchingConfig,
    pairs: list[PairDecision],
) -> tuple[list[int], tuple[SoftFilter, ...], tuple[SoftFilter, ...]] | None:
    """The members of one practice's bundle as the rules decide them, every search left out
    added to `pairs` with its reason (None: too few candidates)."""
    owner_id = practice.owner.id
    available: list[int] = []
    patients: set[int] = set()
    for position in candidates:
        reason: Reason | None
        if slots[search_key[position]] <= 0:
            reason = Reason.SEARCH_LIMIT_REACHED
        elif patient_key[position] in patients:
            reason = Reason.PATIENT_ALREADY_IN_BUNDLE
        else:
            reason = None
            available.append(position)
            patients.add(patient_key[position])
        if reason is not None:
            pairs.append(PairDecision(owner_id, eligible[position].id, reason))
    if len(available) < config.min_bundle_size:
        return None
    # The rule itself, over the same (fast) predicates, for the full account of drops.
    position_of = {id(eligible[p]): p for p in available}
    outcome = progressive_filter(
        [eligible[p] for p in available],
        [(name, _on_search(predicate, position_of)) for name, predicate in filters],
        config.min_bundle_size,
    )
    chosen = [position_of[id(search)] for search in outcome.kept[: config.max_bundle_size]]
    for sid, name in outcome.dropped:
        pairs.append(PairDecision(owner_id, sid, Reason.SOFT_FILTER, name))
    for search in outcome.kept[len(chosen) :]:
        pairs.append(PairDecision(owner_id, search.id, Reason.BUNDLE_FULL))
    return chosen, outcome.applied, outcome.skipped


_BITS_TO_BYTES = bytes.maketrans(b"01", b"\x00\x01")


def _find_candidates(
    index: PracticeIndex, table: SearchTable, search_key: Sequence[int], pairs: list[PairDecision] | None
) -> Candidates:
    """Every (practice, search) pair the grid brings together, decided as
    `hard_constraint_failure` decides it: the masks of `index` for every rule but distance,
    then the chord screen (and `in_reach` near the limit) for what passes. With `pairs`, every
    pair that fails is added with its reason, in the order the grid visits them.

    The inner loops run in C (map, compress, math.dist): a national round has some ten
    million pairs that pass every rule but distance."""
    searches = table.searches
    candidates = Candidates(index.size, len(searches))
    matched, failed_other = candidates.matched_somewhere, candidates.failed_other_than_distance
    points = index.points
    by_slot = index.practices
    append_to = candidates.__getitem__
    for position, search in enumerate(searches):  # waiting order: every candidate list is too
        latitude, longitude = search.location.latitude, search.location.longitude
        assert latitude is not None and longitude is not None  # eligible: known location
        runs = index.runs(latitude, longitude, search.max_travel_km)
        if not runs:
            continue
        age = table.ages[position]
        here = unit_vector(latitude, longitude)
        if pairs is not None:
            passed, broke = _explain(index, search, age, runs, here, pairs, candidates, position)
            matched[search_key[position]] |= passed
            failed_other[search_key[position]] |= broke
            continue
        passing = index.passing(search, age)
        screen = ReachScreen(search)
        surely_in, surely_out = screen.surely_in.__gt__, screen.surely_out.__ge__
        found = 0
        for start, end in runs:
            everyone = (1 << (end - start)) - 1
            bits = (passing >> start) & everyone
            if bits != everyone:
                failed_other[search_key[position]] = 1
            if not bits:
                continue
            slots = list(compress(range(start, end), bin(bits)[:1:-1].encode().translate(_BITS_TO_BYTES)))
            chords = list(
                map(
                    math.dist,
                    repeat(here),
                    itemgetter(*slots)(points) if len(slots) > 1 else [points[slots[0]]],
                )
            )
            inside = list(compress(slots, map(surely_in, chords)))
            deque(map(list.append, map(append_to, inside), repeat(position)), maxlen=0)
            found += len(inside)
            if sum(map(surely_out, chords)) > len(inside):  # some pairs near the limit
                for slot, chord in zip(slots, chords, strict=True):
                    if (
                        not surely_in(chord)
                        and surely_out(chord)
                        and screen.decide(chord, by_slot[slot].owner, search)
                    ):
                        candidates[slot].append(position)
                        found += 1
        if found:
            matched[search_key[position]] = 1
    return candidates


def _explain(
    index: PracticeIndex,
    search: SearchCandidate,
    age: int | None,
    runs: list[tuple[int, int]],
    here: tuple[float, float, float],
    pairs: list[PairDecision],
    candidates: Candidates,
    position: int,
) -> tuple[bool, bool]:
    """`_find_candidates` for one search, visiting every pair in grid order to name the first
    rule each failing pair breaks. Returns (passed somewhere, broke a rule other than distance)."""
    checks = index.checks(search, age)
    screen = ReachScreen(search)
    by_slot = index.practices
    matched = failed_other = False
    for start, end in runs:
        everyone = (1 << (end - start)) - 1
        run_checks = [(reason, (mask >> start) & everyone) for reason, mask in checks]
        for offset in range(end - start):
            slot = start + offset
            owner = by_slot[slot].owner
            failure = next((reason for reason, mask in run_checks if not (mask >> offset) & 1), None)
            if failure is None:
                chord = math.dist(here, index.points[slot])
                if chord > screen.surely_out or (
                    chord >= screen.surely_in and not screen.decide(chord, owner, search)
                ):
                    failure = Reason.OUT_OF_REACH
            if failure is None:
                candidates[slot].append(position)
                matched = True
            else:
                pairs.append(PairDecision(owner.id, search.id, failure))
                failed_other = failed_other or failure is not Reason.OUT_OF_REACH
    return matched, failed_other


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
