"""Retention rules (platform/retention.py) with an injected clock: periods, cut-offs, which rules
each service's job applies, and the run's report (counts only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from therapy_platform.platform.retention import (
    RULES,
    RetentionPeriods,
    RetentionRule,
    RuleResult,
    cutoff,
    plan,
    report,
    rules_for,
)
from therapy_platform.platform.retention_sql import STATEMENTS
from therapy_platform.platform.settings import SettingsError

NOW = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
EVENTS = Path(__file__).resolve().parents[2] / "events" / "retention"


def test_defaults_are_the_documented_periods() -> None:
    periods = RetentionPeriods()
    assert periods.ended_searches_days == 730  # 24 months
    assert periods.email_bodies_days == 365  # 12 months
    assert periods.published_outbox_days == 30
    assert periods.processed_events_days == 90
    assert periods.reply_reviews_days == 90


def test_periods_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETENTION_EMAIL_BODIES_DAYS", "400")
    monkeypatch.setenv("RETENTION_ENDED_SEARCHES_DAYS", "")  # empty: the default
    periods = RetentionPeriods.from_env()
    assert periods.email_bodies_days == 400
    assert periods.ended_searches_days == 730


@pytest.mark.parametrize(
    ("variable", "value"),
    [("RETENTION_ENDED_SEARCHES_DAYS", "7"), ("RETENTION_PROCESSED_EVENTS_DAYS", "x")],
)
def test_a_period_too_short_or_not_a_number_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        RetentionPeriods.from_env()


def test_the_cutoff_is_now_minus_the_period_in_utc() -> None:
    berlin_noon = datetime.fromisoformat("2026-07-01T12:00:00+02:00")
    assert cutoff(berlin_noon, 30) == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert cutoff(NOW, 0) == NOW


def test_the_cutoff_needs_an_aware_instant_and_a_non_negative_period() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cutoff(datetime(2026, 1, 1), 30)
    with pytest.raises(ValueError, match="negative"):
        cutoff(NOW, -1)


def test_a_row_one_second_inside_the_period_is_kept_one_second_outside_is_not() -> None:
    limit = cutoff(NOW, RetentionPeriods().ended_searches_days)
    ended_inside = NOW - timedelta(days=730) + timedelta(seconds=1)
    ended_outside = NOW - timedelta(days=730) - timedelta(seconds=1)
    assert not ended_inside < limit
    assert ended_outside < limit


def test_the_clock_moves_the_cutoff_and_nothing_else() -> None:
    periods = RetentionPeriods(RETENTION_EMAIL_BODIES_DAYS=100)
    today = {p.rule.name: p.cutoff for p in plan("communication_service", periods, NOW)}
    later = {p.rule.name: p.cutoff for p in plan("communication_service", periods, NOW + timedelta(days=3))}
    assert today["email_bodies"] == NOW - timedelta(days=100)
    assert set(today) == set(later)
    assert all(later[name] - today[name] == timedelta(days=3) for name in today)


def test_each_service_applies_its_own_rules() -> None:
    names = {schema: {rule.name for rule in rules} for schema, rules in RULES.items()}
    assert {"ended_searches", "closed_bundles", "processed_events", "published_outbox"} <= names[
        "matching_service"
    ]
    assert {"email_bodies", "reply_bodies", "call_notes", "reply_reviews"} <= names["communication_service"]
    assert "processed_events" in names["patient_service"]
    assert "import_reports" in names["therapist_service"]
    assert names["scraping_service"] == {"scraper_runs"}
    assert names["geocoding_service"] == {"geocode_cache"}
    # The audit logs are not expired by these jobs (docs/privacy.md#retention says why).
    assert not any("audit" in name for rule_names in names.values() for name in rule_names)


def test_every_rule_has_its_statement_and_a_known_period() -> None:
    for rules in RULES.values():
        for rule in rules:
            assert rule.name in STATEMENTS
            assert rule.period in RetentionPeriods.model_fields
    with pytest.raises(ValueError, match="unknown retention period"):
        RetentionRule("x", "forever_days", "delete", "x")


def test_a_schema_without_rules_is_refused() -> None:
    with pytest.raises(ValueError, match="no retention rules"):
        rules_for("public")


def test_the_report_holds_counts_and_cutoffs_only() -> None:
    results = (
        RuleResult("email_bodies", NOW - timedelta(days=365), 3, True),
        RuleResult("reply_reviews", NOW - timedelta(days=90), 500, False),
    )
    summary = report("communication_service", NOW, results)
    assert summary["affected"] == 503
    assert summary["complete"] is False
    assert summary["rules"] == [
        {"rule": "email_bodies", "cutoff": "2025-11-22T01:30:00+00:00", "affected": 3, "complete": True},
        {"rule": "reply_reviews", "cutoff": "2026-08-24T01:30:00+00:00", "affected": 500, "complete": False},
    ]


# ---------------------------------------------------------------- the template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text())  # type: ignore[no-any-return]


def test_one_nightly_job_per_service_with_rules_each_with_its_own_role(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    jobs = {
        name: body["Properties"]
        for name, body in resources.items()
        if body["Type"] == "AWS::Serverless::Function"
        and body["Properties"]["CodeUri"] == "functions/retention/"
    }
    schemas = {props["Environment"]["Variables"]["DB_SCHEMA"]: name for name, props in jobs.items()}
    assert set(schemas) == set(RULES)
    for name, props in jobs.items():
        variables = props["Environment"]["Variables"]
        secret = variables["DB_SECRET_ARN"]["Ref"]
        assert props["Policies"] == [
            {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": secret}}}
        ]
        # Every period the rules know is set from a parameter.
        for field in RetentionPeriods.model_fields.values():
            if field.alias and field.alias in variables:
                assert "Ref" in variables[field.alias], (name, field.alias)
        (event,) = props["Events"].values()
        assert event["Type"] == "ScheduleV2"
        assert event["Properties"]["ScheduleExpression"] == {"Ref": "RetentionSchedule"}
    # The same role as the service's other functions.
    assert resources[schemas["matching_service"]]["Properties"]["Environment"]["Variables"][
        "DB_SECRET_ARN"
    ] == {"Ref": "MatchingDbSecret"}


def test_the_template_defaults_are_the_codes_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    variables = next(
        body["Properties"]["Environment"]["Variables"]
        for body in template["Resources"].values()
        if body["Type"] == "AWS::Serverless::Function"
        and body["Properties"]["CodeUri"] == "functions/retention/"
    )
    defaults = RetentionPeriods()
    for name, field in RetentionPeriods.model_fields.items():
        if field.alias in variables:
            parameter = parameters[variables[field.alias]["Ref"]]
            assert parameter["Default"] == getattr(defaults, name), field.alias


def test_raw_directory_files_and_reply_mails_expire(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    raw_rules = resources["RawDirectoryBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {"Prefix": "raw/", "ExpirationInDays": {"Ref": "RawDirectoryExpirationDays"}}.items() <= raw_rules[
        0
    ].items()
    reply_rules = resources["ReplyInboxBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = {
        rule["Prefix"]: rule["ExpirationInDays"] for rule in reply_rules if "ExpirationInDays" in rule
    }
    assert expiring == {
        "processed/": {"Ref": "ReplyMailExpirationDays"},
        "inbound/": {"Ref": "ReplyMailExpirationDays"},
    }


# ---------------------------------------------------------------- the function


class FakeJob:
    """Stands in for the SQL job: records the instant and limits it was run with."""

    schema = "matching_service"

    def __init__(self) -> None:
        self.runs: list[tuple[datetime, int, int]] = []

    def clock(self) -> datetime:
        return NOW

    def run(
        self, *, now: datetime, batch_size: int, max_batches: int, keep_going: Callable[[], bool]
    ) -> tuple[datetime, tuple[RuleResult, ...]]:
        assert keep_going()  # the context has time left
        self.runs.append((now, batch_size, max_batches))
        return now, (RuleResult("ended_searches", cutoff(now, 730), 2, True),)


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    from support import load_function
    from therapy_platform.platform import retention_sql

    monkeypatch.setenv("DB_SCHEMA", "matching_service")
    retention_sql.retention_job.cache_clear()
    module = load_function("retention")
    monkeypatch.setattr(module, "job", FakeJob())
    yield module
    retention_sql.retention_job.cache_clear()


def test_the_function_runs_on_the_clock_and_answers_counts_only(handler: Any) -> None:
    from support import FakeLambdaContext

    sample = json.loads((EVENTS / "scheduled.json").read_text())
    answer = handler.lambda_handler(sample, FakeLambdaContext())
    assert handler.job.runs == [(NOW, 500, 200)]
    assert answer == {
        "schema": "matching_service",
        "now": NOW.isoformat(),
        "affected": 2,
        "complete": True,
        "rules": [
            {
                "rule": "ended_searches",
                "cutoff": cutoff(NOW, 730).isoformat(),
                "affected": 2,
                "complete": True,
            }
        ],
    }


def test_operators_may_run_as_of_an_earlier_instant_never_a_later_one(handler: Any) -> None:
    from support import FakeLambdaContext

    earlier = NOW - timedelta(days=1)
    operator = json.loads((EVENTS / "operator_small_batches.json").read_text())
    handler.lambda_handler({**operator, "now": earlier.isoformat()}, FakeLambdaContext())
    assert handler.job.runs == [(earlier, operator["batch_size"], operator["max_batches"])]
    with pytest.raises(ValueError, match="future"):
        handler.lambda_handler({"now": (NOW + timedelta(seconds=1)).isoformat()}, FakeLambdaContext())
    assert len(handler.job.runs) == 1


def test_the_record_of_processing_documents_every_period(template: dict[str, Any]) -> None:
    """docs/privacy.md#retention names every parameter a retention period or expiry comes from."""
    docs = (TEMPLATE.parent / "docs" / "privacy.md").read_text()
    section = docs.split("## Retention", 1)[1].split("\n## ", 1)[0]
    retention_parameters = [
        name
        for name in template["Parameters"]
        if name.startswith("Retention") or name.endswith("ExpirationDays") or name == "LogRetentionDays"
    ]
    assert len(retention_parameters) >= 12
    for name in retention_parameters:
        assert f"`{name}`" in section, f"docs/privacy.md#retention does not name {name}"
