"""Learned therapist preferences (matching/domain/preferences.py): shrinkage towards the region
and the population, the bound on passing a patient over, and never a way past a hard constraint."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from therapy_platform.contracts.therapy import TherapyProcedure
from therapy_platform.matching.domain.models import (
    MatchingConfig,
    SearchCandidate,
    SoftFilter,
    TherapistCandidate,
)
from therapy_platform.matching.domain.preferences import (
    OVERALL,
    PreferenceModel,
    informative,
    member_features,
    region_of,
)
from therapy_platform.matching.domain.responses import MemberOutcome
from therapy_platform.matching.domain.round import plan_round
from therapy_platform.platform.geography.locations import Location
from therapy_platform.platform.geography.postcodes import postcode_directory

NOW = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)
BERLIN = postcode_directory().centroid("10115")
MUNICH = postcode_directory().centroid("80331")


def therapist(n: int = 1, *, location: Location = BERLIN) -> TherapistCandidate:
    return TherapistCandidate(
        id=uuid.UUID(int=n),
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        status="active",
        location=location,
        procedures=frozenset({TherapyProcedure("VT")}),
    )


def search(
    n: int,
    *,
    waited_days: int = 10,
    symptoms: frozenset[str] = frozenset({"depression"}),
    location: Location = BERLIN,
) -> SearchCandidate:
    return SearchCandidate(
        id=uuid.UUID(int=10_000 + n),
        patient_id=uuid.UUID(int=20_000 + n),
        created_at=NOW - timedelta(days=waited_days, minutes=n),
        location=location,
        birth_date=date(1990, 1, 1),
        symptoms=symptoms,
        contact_budget=10,
        max_travel_km=25.0,
    )


def test_only_answers_about_the_patient_are_learned() -> None:
    assert informative(MemberOutcome.ACCEPTED) is True
    assert informative(MemberOutcome.REJECTED_UNSUITABLE) is False
    assert informative(MemberOutcome.REJECTED_OTHER) is False
    assert informative(MemberOutcome.REJECTED_CAPACITY) is None
    assert informative(MemberOutcome.NO_RESPONSE) is None
    model = PreferenceModel()
    assert not model.observe(therapist(), {"symptom:depression"}, MemberOutcome.REJECTED_CAPACITY)
    assert model.answers(therapist()) == 0


def test_a_therapist_with_three_answers_stays_close_to_the_prior() -> None:
    model = PreferenceModel()
    colleague, newcomer = therapist(1), therapist(2)
    for n in range(60):  # the region accepts half of its depression patients
        outcome = MemberOutcome.ACCEPTED if n % 2 else MemberOutcome.REJECTED_OTHER
        model.observe(colleague, {"symptom:depression"}, outcome)
    prior = model.therapist_rate(newcomer, "symptom:depression")
    assert prior == pytest.approx(0.5, abs=0.03)
    for _ in range(3):
        model.observe(newcomer, {"symptom:depression"}, MemberOutcome.REJECTED_UNSUITABLE)
    after_three = model.therapist_rate(newcomer, "symptom:depression")
    # Three failures against eight pseudo-answers at the region's rate (which they moved a little).
    region_now = model.region_rate(region_of(newcomer.location), "symptom:depression")
    assert after_three == pytest.approx(8 * region_now / 11)
    assert after_three > 0.3  # not the raw 0 of three refusals
    for _ in range(60):
        model.observe(newcomer, {"symptom:depression"}, MemberOutcome.REJECTED_UNSUITABLE)
    assert model.therapist_rate(newcomer, "symptom:depression") < 0.1  # many answers speak for themselves


@given(st.lists(st.booleans(), max_size=40), st.lists(st.booleans(), max_size=5))
def test_shrunk_rates_lie_between_the_prior_and_the_therapists_own_rate(
    region_answers: list[bool], own_answers: list[bool]
) -> None:
    model = PreferenceModel()
    for accepted in region_answers:
        model.observe(
            therapist(1), {"f"}, MemberOutcome.ACCEPTED if accepted else MemberOutcome.REJECTED_OTHER
        )
    for accepted in own_answers:
        model.observe(
            therapist(2), {"f"}, MemberOutcome.ACCEPTED if accepted else MemberOutcome.REJECTED_OTHER
        )
    prior = model.region_rate(region_of(therapist(2).location), "f")  # their answers count there too
    rate = model.therapist_rate(therapist(2), "f")
    assert 0 < rate < 1
    if own_answers:
        own = sum(own_answers) / len(own_answers)
        assert min(prior, own) - 1e-9 <= rate <= max(prior, own) + 1e-9
        assert abs(rate - prior) <= len(own_answers) / (8 + len(own_answers)) + 1e-9
    else:
        assert rate == pytest.approx(prior)


def _refuses_anxiety(model: PreferenceModel, owner: TherapistCandidate) -> None:
    for _ in range(40):
        model.observe(owner, {"symptom:anxiety"}, MemberOutcome.REJECTED_UNSUITABLE)
        model.observe(owner, {"symptom:depression"}, MemberOutcome.ACCEPTED)


def test_the_filter_passes_a_patient_over_only_until_the_protection_bound() -> None:
    model = PreferenceModel(threshold=0.85, protect_after_days=60)
    owner = therapist()
    _refuses_anxiety(model, owner)
    anxious = search(1, symptoms=frozenset({"anxiety"}), waited_days=10)
    assert not model.keeps(owner, anxious, NOW)
    assert model.keeps(owner, search(2, symptoms=frozenset({"depression"})), NOW)
    waited_long = search(3, symptoms=frozenset({"anxiety"}), waited_days=60)
    assert model.keeps(owner, waited_long, NOW)


def test_the_learned_filter_in_a_round_never_breaks_a_hard_constraint() -> None:
    """A model that loves far-away patients does not bring them into reach; the filter only
    reorders within what the hard constraints allow, and keeps the minimum bundle size."""
    model = PreferenceModel(threshold=0.85)
    owner = therapist()
    _refuses_anxiety(model, owner)
    far = [search(n, location=MUNICH, symptoms=frozenset({"depression"})) for n in range(1, 4)]
    near_anxious = [search(n, symptoms=frozenset({"anxiety"}), waited_days=30) for n in range(4, 8)]
    near_liked = [search(n, symptoms=frozenset({"depression"}), waited_days=5) for n in range(8, 11)]
    config = MatchingConfig()
    plan = plan_round(
        [owner], far + near_anxious + near_liked, NOW.date(), config, learned=model.preference(NOW)
    )
    [bundle] = plan.bundles
    members = {m.search_id for m in bundle.members}
    assert members.isdisjoint(s.id for s in far)  # out of reach stays out of reach
    assert members == {s.id for s in near_liked}  # the learned filter kept the ones they accept
    assert SoftFilter.LEARNED_PREFERENCES in bundle.applied_filters
    # With too few liked patients the filter is skipped: the minimum bundle size wins.
    plan = plan_round(
        [owner], far + near_anxious + near_liked[:2], NOW.date(), config, learned=model.preference(NOW)
    )
    [bundle] = plan.bundles
    assert SoftFilter.LEARNED_PREFERENCES in bundle.skipped_filters
    longest_waiting = sorted(near_anxious, key=lambda s: s.created_at)
    assert [m.search_id for m in bundle.members][:4] == [s.id for s in longest_waiting]


def test_member_features_name_symptoms_age_distance_and_procedures() -> None:
    features = member_features(therapist(), search(1, symptoms=frozenset({"trauma"})), date(2027, 3, 1))
    assert {"symptom:trauma", "age:30-44", "km:<5", "procedure:VT"} <= features
    assert OVERALL not in features
