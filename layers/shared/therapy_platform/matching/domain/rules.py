"""The rules one decision at a time: who may receive a bundle, which searches may enter one,
which (therapist, search) pairs are allowed (hard constraints) and which are preferred (soft
preferences, applied by progressive filtering). Every "no" comes with a `Reason`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from therapy_platform.contracts.schedule import overlap_minutes, total_minutes
from therapy_platform.matching.domain.models import (
    MatchingConfig,
    Reason,
    SearchCandidate,
    SearchStatus,
    SoftFilter,
    TherapistCandidate,
    TherapistGenderWish,
)
from therapy_platform.matching.domain.practice import choose_practice_owner
from therapy_platform.platform.geography.locations import within_reach

ACTIVE = "active"

LearnedPreference = Callable[[TherapistCandidate, SearchCandidate], bool]


def age_on(birth_date: date, day: date) -> int:
    """Completed years on `day` (same rule as the patient record)."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def in_cooling_period(therapist: TherapistCandidate, today: date) -> bool:
    return therapist.next_contact_allowed_on is not None and therapist.next_contact_allowed_on > today


def therapist_ineligibility(therapist: TherapistCandidate, today: date) -> Reason | None:
    """Why this therapist may not receive a bundle today on their own account (None: may)."""
    if therapist.status != ACTIVE:
        return Reason.THERAPIST_NOT_ACTIVE
    if therapist.contact_opt_out:
        return Reason.CONTACT_OPT_OUT
    if in_cooling_period(therapist, today):
        return Reason.IN_COOLING_PERIOD
    if therapist.has_open_bundle:
        return Reason.OPEN_BUNDLE
    if not therapist.location.is_known:
        return Reason.THERAPIST_LOCATION_UNKNOWN
    return None


@dataclass(frozen=True)
class Practice:
    """One practice as a round sees it: the owner who receives its bundle and every member id
    (an exclusion of any member keeps the patient away from the whole practice)."""

    key: str
    owner: TherapistCandidate
    member_ids: frozenset[uuid.UUID]


@dataclass(frozen=True)
class PracticeDecision:
    practice: Practice | None  # None: the practice gets no bundle today
    left_out: tuple[tuple[uuid.UUID, Reason], ...]  # every member not addressed, with the reason


def decide_practice(members: Sequence[TherapistCandidate], today: date) -> PracticeDecision:
    """Whether a practice (therapists sharing one practice key) may receive a bundle, and who.

    The owner is chosen among the practice's active therapists. A draft or sent bundle to any
    member, a cooling period of any active member, or an objection to inquiries (GDPR Art. 21)
    of any member keeps the whole practice out: they all read the same mailbox, so a bundle to
    a colleague would reach the person who objected. Otherwise the owner must be eligible
    (known location)."""
    ordered = sorted(members, key=lambda t: str(t.id))
    if not ordered:
        raise ValueError("a practice has at least one therapist")
    key = ordered[0].practice
    member_ids = frozenset(t.id for t in ordered)
    active = [t for t in ordered if t.status == ACTIVE]
    practice_reason: Reason | None = None
    if any(t.contact_opt_out for t in ordered):
        practice_reason = Reason.PRACTICE_CONTACT_OPT_OUT
    elif any(t.has_open_bundle for t in ordered):
        practice_reason = Reason.PRACTICE_OPEN_BUNDLE
    elif any(in_cooling_period(t, today) for t in active):
        practice_reason = Reason.PRACTICE_IN_COOLING_PERIOD
    owner = choose_practice_owner(active) if active else None
    left_out: list[tuple[uuid.UUID, Reason]] = []
    for therapist in ordered:
        own = therapist_ineligibility(therapist, today)
        if therapist is owner and own is None and practice_reason is None:
            continue
        if own is not None:
            left_out.append((therapist.id, own))
        elif practice_reason is not None:
            left_out.append((therapist.id, practice_reason))
        else:
            left_out.append((therapist.id, Reason.NOT_PRACTICE_OWNER))
    if owner is None or practice_reason is not None or therapist_ineligibility(owner, today) is not None:
        return PracticeDecision(None, tuple(left_out))
    return PracticeDecision(Practice(key, owner, member_ids), tuple(left_out))


def group_into_practices(therapists: Iterable[TherapistCandidate]) -> dict[str, list[TherapistCandidate]]:
    """Therapists by practice key, keys sorted, members sorted by id (order-independent)."""
    groups: dict[str, list[TherapistCandidate]] = {}
    for therapist in therapists:
        groups.setdefault(therapist.practice, []).append(therapist)
    return {key: sorted(groups[key], key=lambda t: str(t.id)) for key in sorted(groups)}


def remaining_slots(search: SearchCandidate, config: MatchingConfig) -> int:
    """How many more bundles this search may enter now: bounded by its contact budget and by
    the open-bundle limit."""
    return max(
        0,
        min(
            search.contact_budget - search.contacts_used,
            config.max_open_bundles_per_search - search.open_bundle_count,
        ),
    )


def search_ineligibility(search: SearchCandidate, config: MatchingConfig) -> Reason | None:
    if search.status != SearchStatus.ACTIVE:
        return Reason.SEARCH_NOT_ACTIVE
    if search.contacts_used >= search.contact_budget:
        return Reason.CONTACT_BUDGET_USED
    if search.open_bundle_count >= config.max_open_bundles_per_search:
        return Reason.OPEN_BUNDLE_LIMIT
    if not search.location.is_known:
        return Reason.PATIENT_LOCATION_UNKNOWN
    return None


def hard_constraint_failure(
    practice: Practice, search: SearchCandidate, today: date, *, check_distance: bool = True
) -> Reason | None:
    """The first hard constraint the pair breaks, or None when the search may go to the
    practice's owner. Cheap checks first; distance last (`check_distance=False` only for a
    caller that has already checked it)."""
    owner = practice.owner
    if practice.key in search.contacted_practices:
        return Reason.ALREADY_SENT_TO_PRACTICE
    if not practice.member_ids.isdisjoint(search.patient_excluded_therapist_ids):
        return Reason.EXCLUDED_BY_PATIENT
    if not practice.member_ids.isdisjoint(search.search_excluded_therapist_ids):
        return Reason.EXCLUDED_BY_SEARCH
    wish = search.preferred_therapist_gender
    if wish != TherapistGenderWish.ANY and owner.gender != wish:
        return Reason.THERAPIST_GENDER_NOT_WANTED
    if owner.preferred_patient_gender is not None and search.gender != owner.preferred_patient_gender:
        return Reason.PATIENT_GENDER_NOT_WANTED
    if owner.preferred_age_min is not None or owner.preferred_age_max is not None:
        if search.birth_date is None:
            return Reason.BIRTH_DATE_UNKNOWN
        age = age_on(search.birth_date, today)
        if (owner.preferred_age_min is not None and age < owner.preferred_age_min) or (
            owner.preferred_age_max is not None and age > owner.preferred_age_max
        ):
            return Reason.AGE_OUT_OF_RANGE
    if owner.procedures.isdisjoint(search.therapy_procedures):
        return Reason.NO_SHARED_PROCEDURE
    if search.group_only and not owner.offers_group_therapy:
        return Reason.GROUP_ONLY_PATIENT
    if owner.group_only and not search.open_to_group_therapy:
        return Reason.GROUP_ONLY_THERAPIST
    if search.needs_shared_language and owner.languages.isdisjoint(search.languages):
        return Reason.NO_SHARED_LANGUAGE
    if check_distance and not in_reach(owner, search):
        return Reason.OUT_OF_REACH
    return None


def in_reach(therapist: TherapistCandidate, search: SearchCandidate) -> bool:
    """Within the patient's km (and minutes, when set); never for an unknown location."""
    return within_reach(
        search.location,
        therapist.location,
        search.max_travel_km,
        search.travel_mode,
        max_minutes=search.max_travel_minutes,
        area=search.travel_area,
    )


# ------------------------------------------------------------------ soft preferences

SearchPredicate = Callable[[SearchCandidate], bool]


def soft_filters_for(
    owner: TherapistCandidate,
    config: MatchingConfig,
    today: date,
    learned: LearnedPreference | None = None,
) -> list[tuple[SoftFilter, SearchPredicate]]:
    """The soft preferences that say something about this therapist, most specific first.
    A preference the therapist has not expressed (no working hours, no symptom preferences,
    no age band, no group offer, no learned model) is not a filter at all."""
    filters: list[tuple[SoftFilter, SearchPredicate]] = []
    if owner.working_hours:
        hours = owner.working_hours
        needed = config.min_availability_overlap_minutes

        def available(search: SearchCandidate) -> bool:
            # A patient who gave no availability can come any time.
            if not search.availability:
                return True
            return total_minutes(overlap_minutes(search.availability, hours)) >= needed

        filters.append((SoftFilter.AVAILABILITY, available))
    if owner.symptom_preferences:
        wanted = owner.symptom_preferences
        filters.append((SoftFilter.SYMPTOM_PREFERENCES, lambda s: not wanted.isdisjoint(s.symptoms)))
    if owner.preferred_age_band is not None:
        low, high = owner.preferred_age_band

        def in_band(search: SearchCandidate) -> bool:
            return search.birth_date is not None and low <= age_on(search.birth_date, today) <= high

        filters.append((SoftFilter.AGE_BAND, in_band))
    if owner.offers_group_therapy:
        filters.append((SoftFilter.GROUP_PREFERENCE, lambda search: search.open_to_group_therapy))
    if learned is not None:
        filters.append((SoftFilter.LEARNED_PREFERENCES, lambda search: learned(owner, search)))
    return filters


@dataclass(frozen=True)
class FilterOutcome:
    kept: tuple[SearchCandidate, ...]
    applied: tuple[SoftFilter, ...]
    skipped: tuple[SoftFilter, ...]  # would have left fewer than the minimum
    dropped: tuple[tuple[uuid.UUID, SoftFilter], ...]  # search id, the filter that dropped it


def progressive_filter(
    candidates: Sequence[SearchCandidate],
    filters: Sequence[tuple[SoftFilter, SearchPredicate]],
    minimum: int,
) -> FilterOutcome:
    """Apply the filters one at a time in order; keep a filter only when at least `minimum`
    candidates remain after it, otherwise skip it and go on with the next."""
    kept = list(candidates)
    applied: list[SoftFilter] = []
    skipped: list[SoftFilter] = []
    dropped: list[tuple[uuid.UUID, SoftFilter]] = []
    for name, predicate in filters:
        passing = [search for search in kept if predicate(search)]
        if len(passing) >= minimum:
            if len(passing) < len(kept):
                passing_ids = {search.id for search in passing}
                dropped.extend((search.id, name) for search in kept if search.id not in passing_ids)
            kept = passing
            applied.append(name)
        else:
            skipped.append(name)
    return FilterOutcome(tuple(kept), tuple(applied), tuple(skipped), tuple(dropped))


# A search matched somewhere but in no bundle, left out by a soft preference: its own reason.
SOFT_FILTER_REASONS: Final[dict[SoftFilter, Reason]] = {
    SoftFilter.AVAILABILITY: Reason.NOT_CHOSEN_AVAILABILITY,
    SoftFilter.SYMPTOM_PREFERENCES: Reason.NOT_CHOSEN_SYMPTOM_PREFERENCES,
    SoftFilter.AGE_BAND: Reason.NOT_CHOSEN_AGE_BAND,
    SoftFilter.GROUP_PREFERENCE: Reason.NOT_CHOSEN_GROUP_PREFERENCE,
    SoftFilter.LEARNED_PREFERENCES: Reason.NOT_CHOSEN_LEARNED_PREFERENCES,
}
_FILTER_ORDER: Final = {name: number for number, name in enumerate(SoftFilter)}


def not_chosen_reason(soft_rejections: Sequence[SoftFilter], other_losses: int) -> Reason:
    """Why a search that passed every hard constraint somewhere is in no bundle.

    `soft_rejections`: for each bundle it was a candidate of, rejected there by one of the
    bundle's applied soft preferences, the first such preference (progressive filtering's
    order); `other_losses`: the bundles it was a candidate of that no applied preference
    rejected it from (longer waiters took the places). When soft preferences decided at every
    such bundle, the search gets the soft preference's own reason (the most frequent, ties in
    filtering order); otherwise, and when no practice it matched got a bundle, `not_chosen`."""
    if other_losses or not soft_rejections:
        return Reason.NOT_CHOSEN
    counts: dict[SoftFilter, int] = {}
    for name in soft_rejections:
        counts[name] = counts.get(name, 0) + 1
    deciding = min(counts, key=lambda name: (-counts[name], _FILTER_ORDER[name]))
    return SOFT_FILTER_REASONS[deciding]


def waiting_order(search: SearchCandidate) -> tuple[datetime, str]:
    """Longest waiting first: created_at ascending, ties by id."""
    return (search.created_at, str(search.id))
