"""template.yaml is the single source of wiring: these checks keep it equal to what the code
expects (the communication rule's event types, the directory schedules' generator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from therapy_platform.communication.use_cases.events import HANDLED_EVENT_TYPES
from therapy_platform.contracts.catalog import EVENT_PAYLOADS
from tools.directory_schedules import prefixes, render

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    template: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return template["Resources"]  # type: ignore[no-any-return]


def test_the_communication_rule_delivers_exactly_the_handled_event_types(resources: dict[str, Any]) -> None:
    pattern = resources["EventsToCommunicationRule"]["Properties"]["EventPattern"]
    assert set(pattern["detail-type"]) == set(HANDLED_EVENT_TYPES)
    assert set(EVENT_PAYLOADS) >= HANDLED_EVENT_TYPES


def test_every_directory_schedule_is_the_generators(resources: dict[str, Any]) -> None:
    expected: dict[str, Any] = yaml_parse("Resources:\n" + render(prefixes()))["Resources"]
    actual = {
        name: body
        for name, body in resources.items()
        if body["Type"] == "AWS::Scheduler::Schedule" and name.startswith("DirectorySchedule")
    }
    assert actual == expected
    assert len(actual) >= 90  # every 2-digit prefix with a locatable postcode


def test_the_raw_bucket_feeds_the_import_queue(resources: dict[str, Any]) -> None:
    bucket = resources["RawDirectoryBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    rule = resources["RawDirectoryObjectCreatedRule"]["Properties"]
    assert rule["EventPattern"]["detail"]["object"]["key"] == [{"prefix": "raw/"}]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["DirectoryImportQueue", "Arn"]}
