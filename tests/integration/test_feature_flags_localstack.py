"""Feature flags through a real store: the flags document in an SSM parameter of LocalStack (the
local stand-in for AppConfig, docs/feature-flags.md), evaluated by Powertools through
`SsmParameterStore`, and a scheduled round against PostgreSQL that skips the region the
document pauses. Each test writes its own uniquely named parameter and deletes it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from localcloud.aws import client
from matching_world import World, reset_matching
from therapy_platform.matching.domain.bundles import RoundRequest
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.platform.feature_flag_store import PowertoolsFlags, SsmParameterStore
from therapy_platform.platform.feature_flags import CATALOG, Flag, FlagSubject, subject_bucket
from tools.function_environment import template

FLAG = Flag.PREFERENCE_AWARE_ORDERING


def document(*, paused: list[str], overrides: list[str]) -> dict[str, Any]:
    return {
        Flag.AUTOMATIC_ROUNDS.value: {
            "default": True,
            "rules": {
                "regions paused": {
                    "when_match": False,
                    "conditions": [{"action": "IN", "key": "region", "value": paused}],
                }
            },
        },
        FLAG.value: {
            "default": False,
            "rules": {
                "override users": {
                    "when_match": True,
                    "conditions": [{"action": "IN", "key": "subject", "value": overrides}],
                },
                "half of all subjects": {
                    "when_match": True,
                    "conditions": [
                        {
                            "action": "MODULO_RANGE",
                            "key": "subject_bucket",
                            "value": {"BASE": 100, "START": 0, "END": 49},
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture
def parameter(localstack_server: None) -> Iterator[Callable[[dict[str, Any]], str]]:
    """Writes a document to this test's own SSM parameter; returns its name."""
    ssm = client("ssm")
    name = f"/therapy-platform/test/flags-helper-{uuid.uuid4().hex[:12]}/feature-flags"

    def put(value: dict[str, Any]) -> str:
        ssm.put_parameter(Name=name, Value=json.dumps(value), Type="String", Overwrite=True)
        return name

    yield put
    ssm.delete_parameter(Name=name)


def flags_at(name: str) -> PowertoolsFlags:
    # max_age 0: every evaluation reads the parameter (a change is seen at once).
    return PowertoolsFlags(SsmParameterStore(name, max_age=0, client=client("ssm")), source=f"ssm:{name}")


def test_a_50_percent_rollout_read_from_ssm_splits_subjects_deterministically(
    parameter: Callable[[dict[str, Any]], str],
) -> None:
    override = next(s for s in (f"pilot-{n}" for n in range(1000)) if subject_bucket(FLAG, s) >= 50)
    name = parameter(document(paused=[], overrides=[override]))
    subjects = [f"therapist-{n}" for n in range(1000)]
    first = flags_at(name)
    answers = {s: first.enabled(FLAG, FlagSubject(subject=s)) for s in subjects[:200]}
    # A second evaluator (another execution environment) answers the same.
    second = flags_at(name)
    assert answers == {s: second.enabled(FLAG, FlagSubject(subject=s)) for s in subjects[:200]}
    cached = PowertoolsFlags(SsmParameterStore(name, max_age=300, client=client("ssm")))
    share = sum(cached.enabled(FLAG, FlagSubject(subject=s)) for s in subjects)
    assert 450 <= share <= 550, share
    assert first.enabled(FLAG, FlagSubject(subject=override))


def test_the_templates_document_stored_in_ssm_evaluates_as_catalogued(
    parameter: Callable[[dict[str, Any]], str],
) -> None:
    value = template()["Resources"]["FeatureFlagsParameter"]["Properties"]["Value"]
    flags = flags_at(parameter(json.loads(value)))
    assert flags.document().keys() == {flag.value for flag in Flag}
    # The deployed document's defaults are the catalogue's fallbacks: built features that must be
    # switched on deliberately (travel time, self-registration) start off like unbuilt ones.
    for flag, info in CATALOG.items():
        assert flags.enabled(flag, FlagSubject(subject="staff@team.example", region="10")) is info.fallback


def test_a_missing_parameter_answers_each_flags_fallback(localstack_server: None) -> None:
    flags = flags_at(f"/therapy-platform/test/flags-helper-missing-{uuid.uuid4().hex[:12]}")
    assert {flag: flags.enabled(flag) for flag in Flag} == {
        flag: info.fallback for flag, info in CATALOG.items()
    }


@pytest.fixture
def world(admin_engine: Engine, service_url: Callable[[str], str]) -> Iterator[World]:
    reset_matching(admin_engine)
    engine = create_engine(service_url("matching_service"), pool_size=2)
    yield World(engine)
    engine.dispose()


def test_turning_automatic_rounds_off_for_a_region_stops_its_scheduled_round(
    world: World, parameter: Callable[[dict[str, Any]], str], admin_engine: Engine
) -> None:
    mitte, neukoelln = world.therapist("10115"), world.therapist("12043")
    for n in range(6):
        world.search(waited_days=100 - n, postcode="10117")
    name = parameter(document(paused=["12"], overrides=[]))
    flags = flags_at(name)

    def scheduled() -> Any:
        return bundle_cases.run_round(
            world.uow(),
            RoundRequest(),
            actor="system:schedule",
            trigger=bundle_cases.SCHEDULED,
            now=world.now,
            flags=flags,
        ).value

    paused = scheduled()
    assert [b.therapist_id for b in paused.bundles] == [mitte.id]
    assert paused.regions_paused == ["12"]
    with admin_engine.connect() as connection:
        summary = connection.execute(
            text("SELECT summary FROM matching_service.rounds WHERE id = :id"), {"id": paused.round_id}
        ).scalar_one()
    assert summary["regions_paused"] == ["12"]
    # The region back on (a new document, as a deploy would write): its therapist gets a bundle.
    parameter(document(paused=[], overrides=[]))
    resumed = scheduled()
    assert [b.therapist_id for b in resumed.bundles] == [neukoelln.id] and resumed.regions_paused == []
