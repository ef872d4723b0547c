"""Properties of whole bundle rounds over generated therapists and searches."""

from __future__ import annotations

import random
import uuid
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching_strategies import TODAY, worlds
from therapy_platform.matching.domain import (
    DEFAULT_CONFIG,
    Reason,
    RoundPlan,
    SearchCandidate,
    TherapistCandidate,
    decide_practice,
    group_into_practices,
    hard_constraint_failure,
    in_reach,
    plan_round,
    remaining_slots,
    search_ineligibility,
    therapist_ineligibility,
    waiting_order,
)

World = tuple[list[TherapistCandidate], list[SearchCandidate]]
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_round(world: World, plan: RoundPlan) -> None:
    therapists, searches = world
    config = DEFAULT_CONFIG
    by_id = {s.id: s for s in searches}
    practices = group_into_practices(therapists)
    practice_of = {t.id: t.practice for t in therapists}
    seen_practices: set[str] = set()
    entries: Counter[uuid.UUID] = Counter()
    for bundle in plan.bundles:
        members = practices[bundle.practice_key]
        decision = decide_practice(members, TODAY)
        practice = decision.practice
        # addressed to the practice's owner, who is eligible, never in cooling or blocked
        assert practice is not None and practice.owner.id == bundle.therapist_id
        assert practice_of[bundle.therapist_id] == bundle.practice_key
        owner = practice.owner
        assert therapist_ineligibility(owner, TODAY) is None
        assert owner.status == "active" and owner.location.is_known
        assert owner.next_contact_allowed_on is None or owner.next_contact_allowed_on <= TODAY
        assert not any(t.has_open_bundle for t in members)
        # one bundle per practice, size within bounds, positions 1..n
        assert bundle.practice_key not in seen_practices
        seen_practices.add(bundle.practice_key)
        assert config.min_bundle_size <= len(bundle.members) <= config.max_bundle_size
        assert [m.position for m in bundle.members] == list(range(1, len(bundle.members) + 1))
        chosen = [by_id[m.search_id] for m in bundle.members]
        # every hard constraint holds; unknown locations never pass
        for search in chosen:
            assert search_ineligibility(search, config) is None
            assert hard_constraint_failure(practice, search, TODAY) is None
            assert search.location.is_known and in_reach(owner, search)
            assert bundle.practice_key not in search.contacted_practices
            assert owner.id not in search.patient_excluded_therapist_ids
            entries[search.id] += 1
        # longest waiting first, and no patient twice to one practice
        assert chosen == sorted(chosen, key=waiting_order)
        assert len({s.patient_id for s in chosen}) == len(chosen)
        # nobody who passed every kept filter but waited longer was left out for lack of room
        last = waiting_order(chosen[-1])
        for pair in plan.pairs:
            if pair.therapist_id == owner.id and pair.reason is Reason.BUNDLE_FULL:
                assert waiting_order(by_id[pair.search_id]) > last
    # budgets and open-bundle limits hold
    for search_id, count in entries.items():
        search = by_id[search_id]
        assert search.open_bundle_count + count <= config.max_open_bundles_per_search
        assert search.contacts_used + count <= search.contact_budget
        assert count <= remaining_slots(search, config)
    # every left-out search has a reason; searches in bundles have none
    left_out = {d.search_id for d in plan.searches_left_out}
    assert left_out.isdisjoint(entries)
    assert left_out | set(entries) == set(by_id)


@PROPERTY
@given(st.one_of(worlds(dense=True), worlds()))
def test_every_planned_bundle_keeps_every_rule(world: World) -> None:
    therapists, searches = world
    check_round(world, plan_round(therapists, searches, TODAY, explain=True))


@PROPERTY
@given(worlds(dense=True), st.randoms(use_true_random=False))
def test_same_input_same_plan_in_any_order(world: World, shuffler: random.Random) -> None:
    therapists, searches = world
    plan = plan_round(therapists, searches, TODAY, explain=True)
    shuffled_therapists, shuffled_searches = list(therapists), list(searches)
    shuffler.shuffle(shuffled_therapists)
    shuffler.shuffle(shuffled_searches)
    assert plan_round(shuffled_therapists, shuffled_searches, TODAY, explain=True) == plan
    assert plan_round(therapists, searches, TODAY, explain=False).bundles == plan.bundles


@PROPERTY
@given(worlds())
def test_every_therapist_not_addressed_has_a_reason(world: World) -> None:
    therapists, searches = world
    plan = plan_round(therapists, searches, TODAY)
    addressed = {b.therapist_id for b in plan.bundles}
    reasons = {d.therapist_id for d in plan.therapists_left_out}
    assert addressed.isdisjoint(reasons)
    assert addressed | reasons == {t.id for t in therapists}


@PROPERTY
@given(worlds())
def test_unknown_locations_never_match(world: World) -> None:
    therapists, searches = world
    plan = plan_round(therapists, searches, TODAY, explain=True)
    unknown_searches = {s.id for s in searches if not s.location.is_known}
    unknown_therapists = {t.id for t in therapists if not t.location.is_known}
    for bundle in plan.bundles:
        assert bundle.therapist_id not in unknown_therapists
        assert unknown_searches.isdisjoint(m.search_id for m in bundle.members)
    reasons = {d.search_id: d.reason for d in plan.searches_left_out}
    for search in searches:
        if search.id in unknown_searches and search_ineligibility(search, DEFAULT_CONFIG) is None:
            raise AssertionError("an unlocated search must not be eligible")
        if search.id in unknown_searches:
            assert reasons[search.id] in {
                Reason.PATIENT_LOCATION_UNKNOWN,
                Reason.SEARCH_NOT_ACTIVE,
                Reason.CONTACT_BUDGET_USED,
                Reason.OPEN_BUNDLE_LIMIT,
            }
