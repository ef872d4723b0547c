"""The deployed retention jobs (one per service, each with its service's database role), invoked
the way an operator does with the sample events: each answers its schema and counts per rule,
and a row past its period is gone while a fresh one stays. The rows are made old by their
timestamps, not by the clock, so the deployed functions run on the real time."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from localcloud import postgres, stack
from localcloud.aws import client
from therapy_platform.platform.retention import RULES

pytestmark = pytest.mark.e2e

EVENTS = Path(__file__).resolve().parents[2] / "events" / "retention"
JOBS = {
    "PatientsRetentionFunction": "patient_service",
    "TherapistsRetentionFunction": "therapist_service",
    "MatchingRetentionFunction": "matching_service",
    "CommunicationRetentionFunction": "communication_service",
    "DirectoryRetentionFunction": "scraping_service",
    "GeocodingRetentionFunction": "geocoding_service",
}


@pytest.mark.parametrize("function", sorted(JOBS))
def test_each_job_runs_with_the_scheduled_sample_event(deployed: stack.StackInfo, function: str) -> None:
    event = json.loads((EVENTS / "scheduled.json").read_text())
    result = stack.invoke(function, event, info=deployed)
    assert result.error is None, result.payload
    summary = result.payload
    assert summary["schema"] == JOBS[function]
    assert {rule["rule"] for rule in summary["rules"]} == {rule.name for rule in RULES[JOBS[function]]}
    assert all(isinstance(rule["affected"], int) and rule["affected"] >= 0 for rule in summary["rules"])


def test_a_processed_event_past_its_period_is_erased_and_a_fresh_one_kept(deployed: stack.StackInfo) -> None:
    now = datetime.now(UTC)
    old, fresh = uuid.uuid4(), uuid.uuid4()
    engine = create_engine(postgres.admin_url())
    try:
        with engine.begin() as connection:
            for event_id, at in ((old, now - timedelta(days=400)), (fresh, now - timedelta(hours=1))):
                connection.execute(
                    text(
                        "INSERT INTO matching_service.processed_events (event_id, consumer, processed_at)"
                        " VALUES (:id, 'e2e-retention', :at)"
                    ),
                    {"id": event_id, "at": at},
                )
        operator_event = json.loads((EVENTS / "operator_small_batches.json").read_text())
        result = stack.invoke("MatchingRetentionFunction", operator_event, info=deployed)
        assert result.error is None, result.payload
        processed = next(rule for rule in result.payload["rules"] if rule["rule"] == "processed_events")
        assert processed["affected"] >= 1
        with engine.connect() as connection:
            left = set(
                connection.execute(
                    text(
                        "SELECT event_id FROM matching_service.processed_events"
                        " WHERE event_id IN (:old, :fresh)"
                    ),
                    {"old": old, "fresh": fresh},
                ).scalars()
            )
        assert left == {fresh}
    finally:
        with engine.begin() as connection:
            connection.execute(
                text("DELETE FROM matching_service.processed_events WHERE consumer = 'e2e-retention'")
            )
        engine.dispose()


def test_a_run_as_of_a_future_instant_is_refused(deployed: stack.StackInfo) -> None:
    future = (datetime.now(UTC) + timedelta(days=3650)).isoformat()
    result = stack.invoke("MatchingRetentionFunction", {"now": future}, info=deployed)
    assert result.error is not None
    assert "future" in json.dumps(result.payload)


def _physical_id(info: stack.StackInfo, logical_id: str) -> str:
    detail = client("cloudformation").describe_stack_resource(
        StackName=info.stack_name, LogicalResourceId=logical_id
    )["StackResourceDetail"]
    return str(detail["PhysicalResourceId"])


def test_every_function_has_its_log_group(deployed: stack.StackInfo) -> None:
    """The stack created each function's group. LocalStack's CloudFormation provider creates the
    group without applying RetentionInDays, and applies no S3 lifecycle rules: both are checked
    in the template (tests/unit/test_log_groups_wiring.py, test_retention_rules.py)."""
    logs = client("logs")
    groups: set[str] = set()
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix="/therapy-platform/"):
        groups.update(group["logGroupName"] for group in page["logGroups"])
    functions = set(deployed.functions)
    assert functions
    for function in functions:
        name = _physical_id(deployed, f"{function}LogGroup")
        assert name == f"/therapy-platform/local/{function}" and name in groups, function
