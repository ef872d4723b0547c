"""Learned therapist preferences against real PostgreSQL (issue 17 §2): answers written through
the matching service's own use cases are read by the SQL read path
(`adapters/preference_answers.py`), a round with `preference_aware_ordering` on uses the learned
filter they imply (and explains it in its dry run), a round with the flag off does not, and
GET /api/v2/analytics/therapist-preferences' use case shows the posterior beside the counts.

Story: therapist T (Berlin Mitte, speaks German and Turkish). 100 days ago staff sent T six
patients: three young depressed patients nearby, three older anxious Turkish-speaking patients
18 km away; T accepted the three depressed and declined the three anxious as unsuitable (the
anxious patients' searches are then paused by staff). Now six new patients of the same two kinds
wait 10 days each.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from matching_world import World, reset_matching
from therapy_platform.matching.adapters.analytics import SqlAnalytics
from therapy_platform.matching.adapters.preference_answers import SqlPreferenceAnswers
from therapy_platform.matching.domain.analytics import PreferenceQuery, period
from therapy_platform.matching.domain.bundles import (
    BundleResponseRequest,
    MemberResponse,
    RoundRequest,
    RoundResult,
    StaffBundleRequest,
)
from therapy_platform.matching.domain.models import Reason, SoftFilter
from therapy_platform.matching.domain.responses import MemberOutcome
from therapy_platform.matching.domain.searches import SearchPatch
from therapy_platform.matching.use_cases import analytics as cases
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.matching.use_cases import searches as search_cases
from therapy_platform.platform.feature_flags import FixedFlags, Flag

pytestmark = pytest.mark.integration

NEAR, FAR = "10117", "12529"  # about 1 km and 18 km from the practice (10115)
ANXIOUS: dict[str, Any] = {
    "postcode": FAR,
    "symptoms": ["anxiety"],
    "birth_date": date(1950, 1, 1),
    "languages": ["de", "tr"],
}
DEPRESSED: dict[str, Any] = {"postcode": NEAR, "symptoms": ["depression"], "birth_date": date(1990, 1, 1)}


@pytest.fixture
def world(admin_engine: Engine, service_url: Callable[[str], str]) -> Iterator[World]:
    reset_matching(admin_engine)
    engine = create_engine(service_url("matching_service"), pool_size=2)
    yield World(engine)
    engine.dispose()


def _searches(world: World, kind: dict[str, Any], waited_days: int) -> list[uuid.UUID]:
    return [world.search(waited_days=waited_days, **kind).id for _ in range(3)]


def _history(world: World) -> tuple[uuid.UUID, uuid.UUID, set[uuid.UUID]]:
    """T, the bundle of the story's first part (sent, not yet answered) and its depressed members."""
    therapist = world.therapist("10115", languages=["de", "tr"])
    depressed, anxious = _searches(world, DEPRESSED, 120), _searches(world, ANXIOUS, 120)
    request = StaffBundleRequest(size=6, search_ids=depressed + anxious, send_immediately=True)
    sent = world.now - timedelta(days=100)
    result = bundle_cases.staff_bundle(world.uow(), therapist.id, request, actor="staff", now=sent).value
    assert result.bundle is not None and result.bundle.bundle_id is not None
    assert len(result.bundle.members) == 6
    return therapist.id, result.bundle.bundle_id, set(depressed)


def _answer(world: World, bundle_id: uuid.UUID, depressed: set[uuid.UUID]) -> None:
    with world.uow() as uow:
        bundle = uow.bundles.get(bundle_id)
        assert bundle is not None
        members = [m.search_id for m in bundle.members]
    kinds = {s: s in depressed for s in members}
    outcomes = [
        MemberResponse(
            search_id=s, outcome=MemberOutcome.ACCEPTED if kinds[s] else MemberOutcome.REJECTED_UNSUITABLE
        )
        for s in members
    ]
    answered = world.now - timedelta(days=98)
    bundle_cases.record_response(
        world.uow(), bundle_id, BundleResponseRequest(members=outcomes), actor="staff", now=answered
    )
    for search_id in members:
        if not kinds[search_id]:  # out of the way of today's round (they have waited > 60 days)
            search_cases.change_search(
                world.uow(),
                search_id,
                SearchPatch(status="paused", status_reason="patient away until spring"),
                actor="staff",
                now=answered,
            )


def _round(world: World, flags: FixedFlags, **request: Any) -> RoundResult:
    return bundle_cases.run_round(
        world.uow(),
        RoundRequest.model_validate(request),
        actor="test",
        trigger="schedule" if not request.get("dry_run") else "api",
        now=world.now,
        flags=flags,
        preferences=SqlPreferenceAnswers(lambda: world.engine),
    ).value


def _members(result: RoundResult) -> set[uuid.UUID]:
    return {m.search_id for b in result.bundles for m in b.members}


def test_a_round_with_the_flag_on_uses_what_the_answers_taught(world: World) -> None:
    therapist_id, bundle_id, history = _history(world)
    source = SqlPreferenceAnswers(lambda: world.engine)
    assert source.answers() == []  # sent but unanswered: nothing learned yet
    _answer(world, bundle_id, history)
    # The read path sees the six answers at once (recomputed from the current data).
    answers = source.answers()
    assert sum(a.answered for a in answers) == 6 and sum(a.accepted for a in answers) == 3
    assert {a.therapist.id for a in answers} == {therapist_id}
    anxious_features = set().union(*(a.features for a in answers if a.accepted == 0))
    assert {"symptom:anxiety", "age:60+", "language:shared"} <= anxious_features
    assert "km:<5" not in anxious_features and any(f.startswith("km:") for f in anxious_features)

    depressed, anxious = _searches(world, DEPRESSED, 10), _searches(world, ANXIOUS, 10)

    off = _round(
        world, FixedFlags(off={(Flag.PREFERENCE_AWARE_ORDERING, None)}), dry_run=True, postcode_prefix="1"
    )
    assert off.learned_preferences_therapists == 0
    assert _members(off) == set(depressed) | set(anxious)

    on = _round(world, FixedFlags(), dry_run=True, postcode_prefix="1")
    assert on.learned_preferences_therapists == 1
    assert _members(on) == set(depressed)
    explained = {p.search_id for p in on.pairs if p.soft_filter is SoftFilter.LEARNED_PREFERENCES}
    assert explained == set(anxious)
    left_out = {
        s.search_id for s in on.searches_left_out if s.reason is Reason.NOT_CHOSEN_LEARNED_PREFERENCES
    }
    assert left_out == set(anxious)

    written = _round(world, FixedFlags())
    assert written.round_id is not None and written.learned_preferences_therapists == 1
    assert _members(written) == set(depressed)


def test_the_analytics_route_shows_the_posterior_beside_the_counts(world: World) -> None:
    therapist_id, bundle_id, history = _history(world)
    reader = SqlAnalytics(lambda: world.engine)
    query = PreferenceQuery(
        period((world.now - timedelta(days=120)).date(), world.now.date()),
        therapist_id=therapist_id,
        learned=True,
    )
    [before] = cases.therapist_preferences(reader, query).value.items
    assert before.learned == []  # no answer yet
    _answer(world, bundle_id, history)
    [group] = cases.therapist_preferences(reader, query).value.items
    learned = {e.feature: e for e in group.learned}
    assert group.learned[0].feature == "overall" and (
        learned["overall"].accepted,
        learned["overall"].answered,
    ) == (3, 6)
    anxiety, depression = learned["symptom:anxiety"], learned["symptom:depression"]
    assert (anxiety.accepted, anxiety.answered, depression.accepted, depression.answered) == (0, 3, 3, 3)
    # Worked out by hand: population anxiety (1 + 0) / (2 + 3) = 0.2; the region (only T) shrinks
    # to it with 20 pseudo-answers: 20 * 0.2 / 23; T with 8: 8 * prior / 11.
    prior = 20 * 0.2 / 23
    assert anxiety.prior == round(prior, 4) and anxiety.posterior == round(8 * prior / 11, 4)
    assert depression.posterior > learned["overall"].posterior > anxiety.posterior
