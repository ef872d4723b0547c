"""Learned therapist preferences in deployed rounds (matching/use_cases/preferences.py): the model
built from the answers the read path gathers, the feature flag `preference_aware_ordering` deciding
per therapist, dry runs naming the searches the filter left out, never past a hard constraint or
the 60-day bound. In-memory ports; the SQL read path is tests/integration/test_learned_preferences.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from matching_fakes import MatchingWorld

from support import FakeLambdaContext, load_function
from therapy_platform.matching.domain.bundles import RoundRequest, RoundResult
from therapy_platform.matching.domain.models import Reason, SearchCandidate, SoftFilter, TherapistCandidate
from therapy_platform.matching.domain.preferences import (
    DISTANCE_BANDS,
    OVERALL,
    PreferenceModel,
    PresentedAnswers,
    distance_band,
    member_features,
    model_from_answers,
)
from therapy_platform.matching.domain.responses import MemberOutcome
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.matching.use_cases.preferences import NOT_USED, flagged_therapists, learned_for_round
from therapy_platform.platform.clock import platform_today
from therapy_platform.platform.feature_flags import CATALOG, FixedFlags, Flag
from therapy_platform.platform.geography.locations import Location, LocationPrecision, distance_km

LEARNED = Reason.NOT_CHOSEN_LEARNED_PREFERENCES
FLAG_OFF = {(Flag.PREFERENCE_AWARE_ORDERING, None)}


@dataclass
class FakeAnswers:
    """The `PreferenceAnswers` port: fixed answers, counting how often it was read."""

    given: list[PresentedAnswers] = field(default_factory=list)
    reads: int = 0

    def answers(self) -> list[PresentedAnswers]:
        self.reads += 1
        return list(self.given)


def inputs(world: MatchingWorld) -> tuple[list[TherapistCandidate], list[SearchCandidate]]:
    with world.uow() as uow:
        return uow.queries.round_inputs()


def anxious(search: SearchCandidate) -> bool:
    return "anxiety" in search.symptoms


def a_therapist_who_declines_anxious_older_patients(
    world: MatchingWorld, *, waited_days: int = 10
) -> tuple[uuid.UUID, FakeAnswers]:
    """One therapist in Berlin, three young depressed and three older anxious Turkish-speaking
    patients; their answers so far: every depressed patient accepted, every anxious one declined."""
    therapist_id = world.therapist(languages=["de", "tr"])
    for _ in range(3):
        world.search(waited_days=waited_days)
    for _ in range(3):
        world.search(
            waited_days=waited_days, symptoms=["anxiety"], birth_date="1950-01-01", languages=["de", "tr"]
        )
    therapists, searches = inputs(world)
    [therapist] = therapists
    today = platform_today(world.now)
    answers = [
        PresentedAnswers(
            therapist,
            member_features(therapist, s, today),
            0 if anxious(s) else 20,
            20,
        )
        for s in searches
    ]
    return therapist_id, FakeAnswers(answers)


def dry_run(world: MatchingWorld, source: FakeAnswers, flags: FixedFlags) -> RoundResult:
    return bundle_cases.run_round(
        world.uow(),
        RoundRequest(dry_run=True, postcode_prefix="1"),
        actor="test",
        trigger="api",
        now=world.now,
        flags=flags,
        preferences=source,
    ).value


def members(result: RoundResult) -> set[uuid.UUID]:
    return {m.search_id for b in result.bundles for m in b.members}


# ------------------------------------------------------------------ the model from counts


def test_counts_read_in_bulk_learn_the_same_as_single_answers() -> None:
    world = MatchingWorld()
    _, source = a_therapist_who_declines_anxious_older_patients(world)
    bulk = model_from_answers(source.given)
    single = PreferenceModel()
    for answer in source.given:
        for n in range(answer.answered):
            outcome = MemberOutcome.ACCEPTED if n < answer.accepted else MemberOutcome.REJECTED_UNSUITABLE
            single.observe(answer.therapist, answer.features, outcome)
    therapist = source.given[0].therapist
    for feature in (OVERALL, "symptom:anxiety", "symptom:depression", "age:60+", "language:shared"):
        assert bulk.therapist_rate(therapist, feature) == single.therapist_rate(therapist, feature)
    estimates = {e.feature: e for e in bulk.estimates(therapist.id)}
    assert estimates[OVERALL].answered == 120 and estimates[OVERALL].accepted == 60
    anxiety = estimates["symptom:anxiety"]
    assert (anxiety.accepted, anxiety.answered) == (0, 60)
    # Shrunk towards the prior, never past it: 0 of 60 lies below a small prior.
    assert 0 < anxiety.posterior < anxiety.prior < 0.05
    assert bulk.estimates(uuid.uuid4()) == []


def test_few_answers_stay_close_to_the_prior() -> None:
    world = MatchingWorld()
    _, source = a_therapist_who_declines_anxious_older_patients(world)
    few = [PresentedAnswers(a.therapist, a.features, min(a.accepted, 1), 1) for a in source.given[:3]]
    [estimate] = [e for e in model_from_answers(few).estimates(few[0].therapist.id) if e.feature == OVERALL]
    assert estimate.answered == 3 and abs(estimate.posterior - estimate.prior) < 0.15


# ------------------------------------------------------------------ the flag decides


def test_flag_off_no_learned_filter_and_no_read() -> None:
    world = MatchingWorld()
    _, source = a_therapist_who_declines_anxious_older_patients(world)
    result = dry_run(world, source, FixedFlags(off=set(FLAG_OFF)))
    assert source.reads == 0 and result.learned_preferences_therapists == 0
    assert len(members(result)) == 6  # every search in the bundle, as before
    assert not [p for p in result.pairs if p.soft_filter is SoftFilter.LEARNED_PREFERENCES]
    assert not [s for s in result.searches_left_out if s.reason is LEARNED]


def test_flag_on_the_round_uses_the_learned_filter_and_the_dry_run_explains_it() -> None:
    world = MatchingWorld()
    therapist_id, source = a_therapist_who_declines_anxious_older_patients(world)
    flags = FixedFlags()
    result = dry_run(world, source, flags)
    assert source.reads == 1 and result.learned_preferences_therapists == 1
    _, searches = inputs(world)
    depressed = {s.id for s in searches if not anxious(s)}
    assert members(result) == depressed
    # Each pair names the soft filter; each search left out names the learned preferences.
    explained = {p.search_id for p in result.pairs if p.soft_filter is SoftFilter.LEARNED_PREFERENCES}
    assert explained == {s.id for s in searches if anxious(s)}
    assert {s.search_id for s in result.searches_left_out if s.reason is LEARNED} == explained
    assert (Flag.PREFERENCE_AWARE_ORDERING, str(therapist_id)) in {
        (flag, subject.subject) for flag, subject in flags.asked
    }


def test_without_an_answer_source_or_an_evaluator_nothing_is_learned() -> None:
    world = MatchingWorld()
    therapists: list[TherapistCandidate] = []
    assert learned_for_round(None, therapists, FixedFlags(), world.now) is NOT_USED
    assert flagged_therapists(therapists, None) == frozenset()


def test_the_flag_is_asked_per_therapist() -> None:
    world = MatchingWorld()
    first = world.therapist("10115")
    world.therapist("80331")
    therapists, _ = inputs(world)
    munich_off = FixedFlags(off={(Flag.PREFERENCE_AWARE_ORDERING, "80")})
    assert flagged_therapists(therapists, munich_off) == {first}
    chosen = learned_for_round(FakeAnswers(), therapists, munich_off, world.now)
    assert chosen.therapist_ids == {first} and chosen.preference is not None
    # A therapist whose flag is off keeps every search whatever the model says.
    other = next(t for t in therapists if t.id != first)
    assert all(chosen.preference(other, s) for s in inputs(world)[1])


def test_the_flag_is_built_and_off_by_default() -> None:
    info = CATALOG[Flag.PREFERENCE_AWARE_ORDERING]
    assert info.wired and not info.fallback


# ------------------------------------------------------------------ bounds


def test_searches_waiting_60_days_are_never_held_back() -> None:
    world = MatchingWorld()
    _, source = a_therapist_who_declines_anxious_older_patients(world, waited_days=61)
    result = dry_run(world, source, FixedFlags())
    assert result.learned_preferences_therapists == 1 and len(members(result)) == 6


def test_the_learned_filter_never_overrides_a_hard_constraint() -> None:
    world = MatchingWorld()
    therapist_id, source = a_therapist_who_declines_anxious_older_patients(world)
    # A patient the therapist always accepted, but out of reach (Munich): still not in the bundle.
    far = world.search(postcode="80331", birth_date="1985-06-01")
    therapists, searches = inputs(world)
    [therapist] = therapists
    loved = next(s for s in searches if s.id == far.id)
    source.given.append(
        PresentedAnswers(therapist, member_features(therapist, loved, date(2026, 11, 1)), 50, 50)
    )
    result = dry_run(world, source, FixedFlags())
    assert far.id not in members(result)
    assert therapist_id and result.learned_preferences_therapists == 1


def test_a_written_round_records_how_many_therapists_used_it() -> None:
    world = MatchingWorld()
    _, source = a_therapist_who_declines_anxious_older_patients(world)
    result = bundle_cases.run_round(
        world.uow(),
        RoundRequest(),
        actor="test",
        trigger="schedule",
        now=world.now,
        flags=FixedFlags(),
        preferences=source,
    ).value
    assert result.round_id is not None and result.learned_preferences_therapists == 1
    assert len(members(result)) == 3
    [record] = world.database.rounds.values()
    assert record.summary is not None and record.summary["learned_preferences_therapists"] == 1


def test_the_scheduled_function_passes_the_answers_and_says_how_many_used_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = MatchingWorld()
    _, source = a_therapist_who_declines_anxious_older_patients(world)
    app = load_function("bundle_round")
    monkeypatch.setattr(app, "service", world.service(preferences=source))
    monkeypatch.setattr(app, "flags", FixedFlags())
    answer = app.lambda_handler(
        {"source": "aws.events", "detail-type": "Scheduled Event"}, FakeLambdaContext()
    )
    assert answer["learned_preferences_therapists"] == 1 and answer["members"] == 3
    assert source.reads == 1
    monkeypatch.setattr(app, "flags", FixedFlags(off=set(FLAG_OFF)))
    answer = app.lambda_handler(
        {"source": "aws.events", "detail-type": "Scheduled Event"}, FakeLambdaContext()
    )
    assert answer["learned_preferences_therapists"] == 0 and source.reads == 1


# ------------------------------------------------------------------ the distance band


@given(
    st.floats(47.3, 55.0),
    st.floats(6.0, 15.0),
    st.floats(-0.3, 0.3),
    st.floats(-0.4, 0.4),
)
def test_the_fast_distance_band_is_the_geodesics(lat: float, lon: float, dlat: float, dlon: float) -> None:
    a = Location.at(lat, lon, LocationPrecision.POSTCODE)
    b = Location.at(lat + dlat, lon + dlon, LocationPrecision.POSTCODE)
    km = distance_km(a, b)
    assert distance_band(a, b) == next(label for limit, label in DISTANCE_BANDS if km < limit)


def test_an_unknown_location_has_no_distance_band() -> None:
    known = Location.at(52.5, 13.4, LocationPrecision.POSTCODE)
    assert distance_band(known, Location.unknown()) is None
    assert distance_band(Location.unknown(), known) is None
