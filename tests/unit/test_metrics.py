"""Metrics (docs/metrics.md): the EMF adapter's output, the matching service's measurements of a
round, a send and an answer (with the in-memory sink), the cooling-period check, outbox lag and
the directory import's counts."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from aws_lambda_powertools import Metrics
from hypothesis import given, settings
from hypothesis import strategies as st
from matching_fakes import InMemoryMatchingUnitOfWork, MatchingWorld

from matching_strategies import worlds
from therapy_platform.matching.domain.bundles import BundleResponseRequest, MemberResponse, RoundRequest
from therapy_platform.matching.domain.monitoring import (
    committed_event_measurements,
    cooling_period_violations,
)
from therapy_platform.matching.domain.responses import MemberOutcome
from therapy_platform.matching.domain.round import PlannedBundle, PlannedMember, plan_round
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.platform.metrics import RecordingMetrics, Unit, measured_after_commit
from therapy_platform.platform.metrics_emf import EmfMetrics, flushed
from therapy_platform.platform.outbox_relay import outbox_lag_seconds
from therapy_platform.therapists.imports.domain.reports import ImportCounts, import_measurements

TODAY = date(2026, 11, 23)

# ---------------------------------------------------------------- the EMF adapter


@pytest.fixture(autouse=True)
def powertools_dimensions() -> Iterator[None]:
    """Powertools keeps dimensions per process: each test starts without any (no warning about
    an overwritten value) and hands back what handlers loaded by other tests had set."""
    shared = Metrics._default_dimensions, Metrics._dimensions
    saved = [dict(dimensions) for dimensions in shared]
    for dimensions in shared:
        dimensions.clear()
    yield
    for dimensions, before in zip(shared, saved, strict=True):
        dimensions.clear()
        dimensions.update(before)


def test_the_emf_adapter_prints_one_valid_emf_blob_with_namespace_and_dimensions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = EmfMetrics("matching_service", namespace="TherapyPlatformTest", environment="dev")
    metrics.add("BundlesCreated", Unit.COUNT, 4)
    metrics.add("RoundDuration", Unit.MILLISECONDS, 812.5)
    metrics.flush()
    [line] = capsys.readouterr().out.splitlines()
    blob = json.loads(line)
    [directive] = blob["_aws"]["CloudWatchMetrics"]
    assert isinstance(blob["_aws"]["Timestamp"], int)
    assert directive["Namespace"] == "TherapyPlatformTest"
    assert [sorted(dimensions) for dimensions in directive["Dimensions"]] == [["environment", "service"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "BundlesCreated": "Count",
        "RoundDuration": "Milliseconds",
    }
    assert blob["service"] == "matching_service" and blob["environment"] == "dev"
    assert blob["BundlesCreated"] == [4.0] and blob["RoundDuration"] == [812.5]


def test_an_empty_flush_prints_nothing_and_does_not_warn(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = EmfMetrics("communication_service", namespace="TherapyPlatformTest", environment="dev")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics.flush()
    assert capsys.readouterr().out == ""


def test_a_flushed_handler_flushes_when_it_returns_and_when_it_raises() -> None:
    sink = RecordingMetrics()

    @flushed(sink)
    def handler(fail: bool) -> str:
        sink.add("EmailsSent", Unit.COUNT, 1)
        if fail:
            raise RuntimeError("boom")
        return "ok"

    assert handler(False) == "ok"
    with pytest.raises(RuntimeError):
        handler(True)
    assert sink.flushes == 2 and sink.total("EmailsSent") == 2


# ---------------------------------------------------------------- the cooling-period check


@settings(max_examples=150, deadline=None)
@given(worlds(dense=True))
def test_no_round_the_planner_builds_violates_a_cooling_period(world: tuple[list, list]) -> None:  # type: ignore[type-arg]
    therapists, searches = world
    plan = plan_round(therapists, searches, TODAY)
    assert cooling_period_violations(plan.bundles, therapists, TODAY) == 0


@settings(max_examples=100, deadline=None)
@given(worlds(dense=True), st.integers(min_value=1, max_value=60), st.data())
def test_a_bundle_to_a_practice_in_its_cooling_period_is_counted(
    world: tuple[list, list],  # type: ignore[type-arg]
    days_left: int,
    data: st.DataObject,
) -> None:
    therapists, searches = world
    target = data.draw(st.sampled_from(therapists))
    cooling = replace(target, status="active", next_contact_allowed_on=TODAY + timedelta(days=days_left))
    others = [t for t in therapists if t.id != target.id]
    addressee = data.draw(st.sampled_from([cooling, *[t for t in others if t.practice == cooling.practice]]))
    member = PlannedMember(searches[0].id, searches[0].patient_id, 1)
    violating = PlannedBundle(addressee.id, addressee.practice, (member,), (), ())
    plan = plan_round(others, searches, TODAY)  # a round without the cooling therapist
    bundles = (*plan.bundles, violating)
    assert cooling_period_violations(bundles, [cooling, *others], TODAY) >= 1
    # The day the cooling period ends, the same bundle is allowed.
    ended = cooling.next_contact_allowed_on
    assert ended is not None
    assert cooling_period_violations([violating], [cooling, *others], ended) == 0


# ---------------------------------------------------------------- the matching service's measurements


def test_a_round_measures_duration_bundles_searches_left_out_and_cooling() -> None:
    world, sink = MatchingWorld(), RecordingMetrics()
    world.therapist()
    for waited in range(8):
        world.search(waited_days=10 + waited)
    world.therapist(postcode="80331")  # Munich: nobody in reach, no bundle
    result = bundle_cases.run_round(
        world.uow(), RoundRequest(), actor="test", trigger="api", now=world.now, metrics=sink
    ).value
    assert len(result.bundles) == 1
    assert sink.values("BundlesCreated") == [1]
    assert sink.values("SearchesWithoutBundle") == [2]  # 8 considered, 6 in the bundle
    assert sink.values("CoolingPeriodViolations") == [0]
    [duration] = sink.values("RoundDuration")
    assert duration >= 0 and {m.unit for m in sink.measurements if m.name == "RoundDuration"} == {
        Unit.MILLISECONDS
    }


def test_a_dry_run_measures_nothing() -> None:
    world, sink = MatchingWorld(), RecordingMetrics()
    world.therapist()
    for waited in range(3):
        world.search(waited_days=waited)
    bundle_cases.run_round(
        world.uow(), RoundRequest(dry_run=True), actor="test", trigger="api", now=world.now, metrics=sink
    )
    assert sink.measurements == []


def test_sent_answered_placed_and_expired_bundles_are_counted_from_what_committed() -> None:
    world, sink = MatchingWorld(), RecordingMetrics()

    def measured_uow() -> InMemoryMatchingUnitOfWork:
        hook = measured_after_commit(world.published.extend, sink, committed_event_measurements)
        return InMemoryMatchingUnitOfWork(world.database, publish=hook)

    accepting, declining, silent = (world.therapist(postcode=p) for p in ("10115", "20095", "50667"))
    near = {
        t: [world.search(postcode=p, waited_days=30 - i).id for i in range(3)]
        for t, p in ((accepting, "10117"), (declining, "20097"), (silent, "50668"))
    }
    round_result = bundle_cases.run_round(
        measured_uow(), RoundRequest(send_immediately=True), actor="t", trigger="api", now=world.now
    ).value
    assert sink.total("BundlesSent") == 3
    bundle_of = {b.therapist_id: b.bundle_id for b in round_result.bundles}

    def respond(therapist: uuid.UUID, outcome: MemberOutcome) -> None:
        request = BundleResponseRequest(
            members=[MemberResponse(search_id=s, outcome=outcome) for s in near[therapist]]
        )
        bundle_id = bundle_of[therapist]
        assert bundle_id is not None
        bundle_cases.record_response(measured_uow(), bundle_id, request, actor="staff", now=world.now)

    respond(accepting, MemberOutcome.ACCEPTED)
    respond(declining, MemberOutcome.REJECTED_CAPACITY)
    respond(declining, MemberOutcome.REJECTED_CAPACITY)  # an identical repeat changes nothing
    assert sink.total("BundlesAnswered") == 2
    assert sink.total("BundlesAccepted") == 1 and sink.total("BundlesDeclined") == 1
    assert sink.total("Placements") == 3
    bundle_cases.expire_all_due(measured_uow(), now=world.now + timedelta(days=15))
    assert sink.total("BundlesExpired") == 1
    assert sink.names() <= {
        "BundlesSent",
        "BundlesAnswered",
        "BundlesAccepted",
        "BundlesDeclined",
        "BundlesExpired",
        "Placements",
    }


# ---------------------------------------------------------------- outbox lag, directory import


def test_outbox_lag_is_the_age_of_the_oldest_unpublished_row() -> None:
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert outbox_lag_seconds(None, now) == 0.0
    assert outbox_lag_seconds(now - timedelta(minutes=3, seconds=2), now) == 182.0
    assert outbox_lag_seconds(now + timedelta(seconds=1), now) == 0.0  # clock skew is no lag


def test_an_import_reports_created_updated_unchanged_and_rejected_entries() -> None:
    counts = ImportCounts(entries=10, new=3, updated=2, unchanged=4, skipped=1, repeats=0)
    assert {(m.name, m.unit, m.value) for m in import_measurements(counts)} == {
        ("DirectoryEntriesCreated", Unit.COUNT, 3),
        ("DirectoryEntriesUpdated", Unit.COUNT, 2),
        ("DirectoryEntriesUnchanged", Unit.COUNT, 4),
        ("DirectoryEntriesRejected", Unit.COUNT, 1),
    }
