"""The simulator's store answers the matching ports as the unit tests' in-memory fakes do (and
they as PostgreSQL does): the same round inputs and the same search views, after weeks of
simulated rounds, answers, expiries and withdrawals."""

from __future__ import annotations

import uuid
from datetime import timedelta

from matching_fakes import Cooling, InMemoryQueries, MatchingDatabase, StoredProfile

from simulation.engine import Simulation
from simulation.policies import policy
from simulation.world import WorldSpec, build_world
from therapy_platform.matching.domain.models import SearchCandidate, TherapistCandidate
from therapy_platform.matching.domain.read_models import ProfileKind

SPEC = WorldSpec(region="10", therapists=60, weeks=5, warmup_weeks=1, seed=99, load=0.6)


def _fake_database(simulation: Simulation) -> MatchingDatabase:
    store, before = simulation.store, simulation.world.start - timedelta(days=1)
    database = MatchingDatabase()
    database.searches = dict(store.searches)
    database.bundles = dict(store.bundles)
    for therapist_id, cooling in store.cooling.items():
        database.cooling[therapist_id] = Cooling(cooling.until, cooling.set_at, uuid.uuid4())
    for therapist_id, payload in store.therapist_payloads.items():
        database.profiles[ProfileKind.THERAPIST][therapist_id] = StoredProfile(payload, "e", before)
    for patient_id, payload in store.patient_payloads.items():
        database.profiles[ProfileKind.PATIENT][patient_id] = StoredProfile(payload, "e", before)
    return database


def by_id[T: (TherapistCandidate, SearchCandidate)](items: list[T]) -> list[T]:
    return sorted(items, key=lambda item: str(item.id))


def test_round_inputs_and_search_views_agree_with_the_in_memory_fakes() -> None:
    simulation = Simulation(build_world(SPEC), policy("platform")).run()
    assert simulation.log.answered and simulation.log.expired and simulation.log.withdrawn_at
    fake = InMemoryQueries(_fake_database(simulation))
    ours = simulation.uow.queries
    fake_therapists, fake_searches = fake.round_inputs()
    our_therapists, our_searches = ours.round_inputs()
    assert by_id(our_therapists) == by_id(fake_therapists)
    assert by_id(our_searches) == by_id(fake_searches)
    assert any(s.contacts_used for s in our_searches) and any(t.has_open_bundle for t in our_therapists)
    chosen = [t.id for t in our_therapists[:3]]
    fake_therapists, fake_searches = fake.round_inputs(therapist_ids=chosen)
    our_therapists, our_searches = ours.round_inputs(therapist_ids=chosen)
    assert by_id(our_therapists) == by_id(fake_therapists)
    assert {s.id for s in fake_searches} <= {s.id for s in our_searches}  # ours: no bounding box
    now = simulation.world.end
    for search_id in simulation.store.searches:
        assert ours.search(search_id, now) == fake.search(search_id, now)
