"""The outcome simulator (simulation/, docs/simulation.md) on a small region over a few weeks:
its invariants hold on every simulated day under every policy, and a seed gives the same
numbers twice."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from simulation.__main__ import main, run_one
from simulation.engine import Simulation
from simulation.metrics import measure
from simulation.policies import POLICIES, policy
from simulation.world import WorldSpec, build_world
from therapy_platform.matching.domain.bundles import BundleKind, BundleStatus
from therapy_platform.matching.domain.models import SearchStatus

SMALL = WorldSpec(region="10", therapists=70, weeks=7, warmup_weeks=1, seed=4711, load=0.6)


def _check_day(simulation: Simulation, day: int) -> None:
    """What the test itself checks each day, beside the simulator's own invariants."""
    store, config = simulation.store, simulation.config
    assert simulation.invariants.total == 0, simulation.invariants.examples
    assert simulation.invariants.checked_days == day + 1
    placed = Counter(s.patient_id for s in store.searches.values() if s.status is SearchStatus.PLACED)
    assert all(count == 1 for count in placed.values())
    for search in store.searches.values():
        used, open_bundles = store.contacts(search.id)
        assert used <= search.total_requested_contacts
        assert open_bundles <= config.max_open_bundles_per_search
    open_practices = Counter(b.practice_key for b in store.bundles.values() if b.is_open)
    assert all(count == 1 for count in open_practices.values())
    for bundle in store.bundles.values():
        if bundle.kind is BundleKind.ROUND:
            assert config.min_bundle_size <= len(bundle.members) <= config.max_bundle_size
        else:
            assert 1 <= len(bundle.members) <= config.max_bundle_size


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_keeps_the_invariants_on_every_simulated_day(name: str) -> None:
    world = build_world(SMALL)
    days: list[int] = []

    def on_day(simulation: Simulation, day: int) -> None:
        _check_day(simulation, day)
        days.append(day)

    simulation = Simulation(world, policy(name), full_checks=True, on_day=on_day).run()
    assert days == list(range(SMALL.days))
    figures = measure(simulation)
    assert figures["cooling_violations"] == 0
    assert figures["invariant_violations"] == 0
    assert simulation.log.sent, "the run sent no bundle at all"
    assert simulation.log.answered and simulation.log.placed_at


def test_the_upstream_policy_makes_no_rounds_and_staff_bundles_of_the_longest_waiting() -> None:
    simulation = Simulation(build_world(SMALL), policy("upstream"), full_checks=True).run()
    kinds = Counter(b.kind for b in simulation.store.bundles.values())
    assert kinds[BundleKind.ROUND] == 0
    assert kinds[BundleKind.STAFF] == simulation.log.staff_picks > 0
    assert simulation.log.rounds == 0


def test_bundle_size_and_cooling_policies_change_what_is_sent() -> None:
    world = build_world(SMALL)
    three = Simulation(world, policy("bundle-3")).run()
    sizes = {len(b.members) for b in three.store.bundles.values() if b.kind is BundleKind.ROUND}
    assert sizes == {3}
    short = measure(Simulation(world, policy("cooling-14")).run())
    long = measure(Simulation(world, policy("cooling-42")).run())
    assert short["inquiries_per_therapist_month"] > long["inquiries_per_therapist_month"]


def test_one_seed_gives_identical_numbers_and_another_seed_different_ones() -> None:
    first = run_one(SMALL, "platform")
    second = run_one(SMALL, "platform")
    for figures in (first, second):
        figures.pop("seconds")
    assert first == second
    other = run_one(replace(SMALL, seed=SMALL.seed + 1), "platform")
    other.pop("seconds")
    assert other != first


def test_the_cooling_check_catches_a_bundle_sent_in_a_cooling_period() -> None:
    """The invariant can fail: a ledger that says the practice is cooling flags the next bundle."""
    simulation = Simulation(build_world(SMALL), policy("platform"))
    ledger = simulation.ledger
    simulation.run()
    sent = [b for b in simulation.store.bundles.values() if b.kind is BundleKind.ROUND and b.sent_at]
    bundle = sent[-1]
    assert bundle.sent_at is not None
    ledger.until[bundle.therapist_id] = bundle.sent_at.date().replace(year=bundle.sent_at.year + 1)
    simulation.invariants.sent(simulation.store, bundle)
    assert simulation.invariants.violations["cooling"] == 1


def test_responses_run_through_the_platform_use_cases() -> None:
    simulation = Simulation(build_world(SMALL), policy("platform")).run()
    store = simulation.store
    statuses = Counter(b.status for b in store.bundles.values())
    assert statuses[BundleStatus.ANSWERED] == simulation.log.answered
    assert statuses[BundleStatus.EXPIRED] == simulation.log.expired
    assert store.events["bundle.sent"] == len(simulation.log.sent)
    assert store.events["cooling.period_started"] == simulation.log.answered + simulation.log.expired
    placed = {s.id for s in store.searches.values() if s.status is SearchStatus.PLACED}
    assert placed == set(simulation.log.placed_at)
    for search_id in placed:
        therapist = store.searches[search_id].placed_therapist_id
        assert isinstance(therapist, uuid.UUID)


def test_the_command_prints_the_table_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--region",
            "10",
            "--therapists",
            "40",
            "--weeks",
            "5",
            "--warmup-weeks",
            "1",
            "--policies",
            "platform,upstream",
            "--replications",
            "1",
            "--workers",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "platform" in printed and "upstream" in printed and "median d" in printed
    assert (tmp_path / "simulation.json").exists()
    page = (tmp_path / "simulation.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 7
