"""Feature flags (docs/feature-flags.md): Powertools' evaluation of the platform's documents
(percentage rollout by a stable hash of the subject, override users, regions), the fallback
when the store fails, the template's document, and the two features they switch: the
scheduled round per region and reminder emails (tests/unit/test_bundle_reminders.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError
from aws_lambda_powertools.utilities.feature_flags.schema import SchemaValidator
from matching_fakes import MatchingWorld

from support import ROOT, FakeLambdaContext, load_function
from therapy_platform.matching.domain.bundles import RoundRequest
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.platform.feature_flag_api import evaluate_for, roles_up_to
from therapy_platform.platform.feature_flag_store import PowertoolsFlags, StaticStore
from therapy_platform.platform.feature_flags import (
    CATALOG,
    FixedFlags,
    Flag,
    FlagSubject,
    region_of,
    subject_bucket,
)
from therapy_platform.platform.metrics import RecordingMetrics
from tools.function_environment import template

FLAG = Flag.PREFERENCE_AWARE_ORDERING
SUBJECTS = [f"staff-{n}@team.example" for n in range(1000)]
# A subject outside the rollout's half, made an override user below.
OVERRIDE = next(s for s in (f"pilot-{n}@team.example" for n in range(1000)) if subject_bucket(FLAG, s) >= 50)


def rollout_document(percent: int, overrides: list[str]) -> dict[str, Any]:
    return {
        FLAG.value: {
            "default": False,
            "rules": {
                "override users": {
                    "when_match": True,
                    "conditions": [{"action": "IN", "key": "subject", "value": overrides}],
                },
                f"{percent} % of subjects": {
                    "when_match": True,
                    "conditions": [
                        {
                            "action": "MODULO_RANGE",
                            "key": "subject_bucket",
                            "value": {"BASE": 100, "START": 0, "END": percent - 1},
                        }
                    ],
                },
            },
        },
        Flag.AUTOMATIC_ROUNDS.value: {
            "default": True,
            "rules": {
                "regions paused": {
                    "when_match": False,
                    "conditions": [{"action": "IN", "key": "region", "value": ["12", "99"]}],
                }
            },
        },
    }


def evaluator(document: dict[str, Any]) -> PowertoolsFlags:
    return PowertoolsFlags(StaticStore(document))


def test_a_50_percent_rollout_splits_subjects_deterministically() -> None:
    flags = evaluator(rollout_document(50, []))
    first = {s: flags.enabled(FLAG, FlagSubject(subject=s)) for s in SUBJECTS}
    again = {s: evaluator(rollout_document(50, [])).enabled(FLAG, FlagSubject(subject=s)) for s in SUBJECTS}
    assert first == again  # same subject, same answer (a fresh evaluator, as in another Lambda)
    share = sum(first.values())
    assert 450 <= share <= 550, share
    # The answer is the bucket's: exactly the subjects in buckets 0-49.
    assert all(enabled == (subject_bucket(FLAG, s) < 50) for s, enabled in first.items())
    assert not flags.enabled(FLAG)  # no subject: no bucket, only the default


def test_a_rollout_grows_by_keeping_who_had_it() -> None:
    ten = evaluator(rollout_document(10, []))
    thirty = evaluator(rollout_document(30, []))
    had = {s for s in SUBJECTS if ten.enabled(FLAG, FlagSubject(subject=s))}
    has = {s for s in SUBJECTS if thirty.enabled(FLAG, FlagSubject(subject=s))}
    assert had < has and 50 <= len(had) <= 150


def test_each_flag_hashes_its_own_half() -> None:
    halves = [{s for s in SUBJECTS if subject_bucket(flag, s) < 50} for flag in (Flag.REMINDER_EMAILS, FLAG)]
    assert halves[0] != halves[1]


def test_an_override_user_always_gets_it() -> None:
    assert subject_bucket(FLAG, OVERRIDE) >= 50
    assert not evaluator(rollout_document(50, [])).enabled(FLAG, FlagSubject(subject=OVERRIDE))
    for percent in (1, 50):
        flags = evaluator(rollout_document(percent, [OVERRIDE]))
        assert flags.enabled(FLAG, FlagSubject(subject=OVERRIDE, roles=("staff",), region="10"))


def test_automatic_rounds_per_region() -> None:
    flags = evaluator(rollout_document(50, []))
    assert not flags.enabled(Flag.AUTOMATIC_ROUNDS, FlagSubject(region="12"))
    assert flags.enabled(Flag.AUTOMATIC_ROUNDS, FlagSubject(region="10"))
    assert flags.enabled(Flag.AUTOMATIC_ROUNDS, FlagSubject())  # no region: the default


def test_regions_are_the_two_leading_digits() -> None:
    assert [region_of(p) for p in ("10115", "01067", "1", None, "ab123")] == ["10", "01", None, None, None]


class BrokenStore(StoreProvider):
    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        raise ConfigurationStoreError("endpoint down")

    def get_configuration(self) -> dict[str, Any]:
        return self.get_raw_configuration


def test_an_unreadable_store_answers_each_flags_fallback() -> None:
    flags = PowertoolsFlags(BrokenStore())
    assert {flag: flags.enabled(flag) for flag in Flag} == {
        flag: info.fallback for flag, info in CATALOG.items()
    }
    assert flags.enabled(Flag.AUTOMATIC_ROUNDS, FlagSubject(region="10"))  # placements go on


def test_an_invalid_document_answers_the_fallback_too() -> None:
    flags = evaluator({Flag.AUTOMATIC_ROUNDS.value: {"default": "yes"}})
    assert flags.enabled(Flag.AUTOMATIC_ROUNDS) is True
    assert flags.enabled(Flag.TRAVEL_TIME_REACH) is False


def deployed_document() -> dict[str, Any]:
    value = template()["Resources"]["FeatureFlagsParameter"]["Properties"]["Value"]
    document: dict[str, Any] = json.loads(value)
    return document


def test_the_templates_document_is_valid_and_defines_every_catalogued_flag() -> None:
    document = deployed_document()
    SchemaValidator(document).validate()
    assert set(document) == {flag.value for flag in Flag}
    flags = evaluator(document)
    # As deployed: rounds and reminders on everywhere, the features that fall back to off are off
    # (learned preferences too: the simulator measured no gain, docs/simulation.md).
    for region in ("01", "10", "99"):
        assert flags.enabled(Flag.AUTOMATIC_ROUNDS, FlagSubject(region=region))
    assert flags.enabled(Flag.REMINDER_EMAILS)
    off_by_default = [flag for flag, info in CATALOG.items() if not info.fallback]
    assert Flag.PREFERENCE_AWARE_ORDERING in off_by_default
    assert not any(flags.enabled(flag, FlagSubject(subject="staff@team.example")) for flag in off_by_default)
    assert not flags.enabled(
        Flag.PREFERENCE_AWARE_ORDERING, FlagSubject(subject=str(uuid.uuid4()), region="10")
    )


def test_the_admin_view_evaluates_every_flag_for_a_subject() -> None:
    view = evaluate_for(
        evaluator(rollout_document(50, [OVERRIDE])), FlagSubject(OVERRIDE, roles_up_to("staff"), "12")
    )
    by_name = {f.name: f for f in view.flags}
    assert set(by_name) == {flag.value for flag in Flag}
    assert by_name[FLAG.value].enabled and not by_name[Flag.AUTOMATIC_ROUNDS.value].enabled
    assert view.roles == ["auditor", "staff"] and view.region == "12"
    assert by_name[Flag.TRAVEL_TIME_REACH.value].wired is True
    assert by_name[Flag.PREFERENCE_AWARE_ORDERING.value].wired is True


def test_the_admin_route_needs_the_admin_role_and_answers_503_without_a_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = load_function("feature_flags_api")
    event = json.loads((ROOT / "events/feature_flags_api/get_feature_flags.json").read_text())
    monkeypatch.setattr(app, "flags", evaluator(rollout_document(50, ["staff@team.example"])))
    answer = app.lambda_handler(event, FakeLambdaContext())
    assert answer["statusCode"] == 200, answer["body"]
    body = json.loads(answer["body"])
    assert {f["name"]: f["enabled"] for f in body["flags"]}[FLAG.value] is True
    staff = json.loads(json.dumps(event))
    staff["requestContext"]["authorizer"]["roles"] = "staff"
    assert app.lambda_handler(staff, FakeLambdaContext())["statusCode"] == 403
    wrong = json.loads(json.dumps(event))
    wrong["queryStringParameters"]["region"] = "101"
    wrong["multiValueQueryStringParameters"]["region"] = ["101"]
    assert app.lambda_handler(wrong, FakeLambdaContext())["statusCode"] == 422
    monkeypatch.setattr(app, "flags", PowertoolsFlags(BrokenStore()))
    assert app.lambda_handler(event, FakeLambdaContext())["statusCode"] == 503


# ------------------------------------------------------------------ the scheduled round per region


def regional_world() -> tuple[MatchingWorld, Any, Any]:
    world = MatchingWorld()
    mitte, neukoelln = world.therapist("10115"), world.therapist("12043")
    for n in range(6):
        world.search(waited_days=100 - n, postcode="10117")
    return world, mitte, neukoelln


def scheduled_round(world: MatchingWorld, flags: FixedFlags, *, trigger: str = bundle_cases.SCHEDULED) -> Any:
    metrics = RecordingMetrics()
    result = bundle_cases.run_round(
        world.uow(),
        RoundRequest(),
        actor="system:schedule",
        trigger=trigger,
        now=world.now,
        flags=flags,
        metrics=metrics,
    ).value
    return result, metrics


def test_turning_automatic_rounds_off_for_a_region_stops_its_scheduled_round() -> None:
    world, mitte, _ = regional_world()
    result, metrics = scheduled_round(world, FixedFlags(off={(Flag.AUTOMATIC_ROUNDS, "12")}))
    assert [b.therapist_id for b in result.bundles] == [mitte]
    assert result.regions_paused == ["12"] and metrics.total("RoundRegionsPaused") == 1
    [record] = world.database.rounds.values()
    assert record.summary is not None and record.summary["regions_paused"] == ["12"]


def test_with_every_region_on_both_regions_get_their_bundles() -> None:
    world, mitte, neukoelln = regional_world()
    flags = FixedFlags()
    result, metrics = scheduled_round(world, flags)
    assert {b.therapist_id for b in result.bundles} == {mitte, neukoelln}
    assert result.regions_paused == [] and metrics.total("RoundRegionsPaused") == 0
    # Each region is asked once, not each therapist.
    assert sorted(subject.region or "" for flag, subject in flags.asked) == ["10", "12"]


def test_rounds_staff_start_are_not_gated_by_the_regions_flag() -> None:
    world, mitte, neukoelln = regional_world()
    flags = FixedFlags(off={(Flag.AUTOMATIC_ROUNDS, "12")})
    result, _ = scheduled_round(world, flags, trigger="api")
    assert {b.therapist_id for b in result.bundles} == {mitte, neukoelln} and flags.asked == []


def test_the_scheduled_function_names_the_paused_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    world, _, _ = regional_world()
    app = load_function("bundle_round")
    monkeypatch.setattr(app, "service", world.service())
    monkeypatch.setattr(app, "flags", FixedFlags(off={(Flag.AUTOMATIC_ROUNDS, "12")}))
    answer = app.lambda_handler(
        {"source": "aws.events", "detail-type": "Scheduled Event"}, FakeLambdaContext()
    )
    assert answer["regions_paused"] == ["12"] and answer["bundles"] == 1
