"""Every function writes to a log group of its own with a retention (docs/privacy.md#retention),
and the tool that wires a new function's group does so idempotently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tools import log_groups

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def parsed() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def resources(parsed: dict[str, Any]) -> dict[str, Any]:
    return parsed["Resources"]  # type: ignore[no-any-return]


def test_every_function_logs_to_its_own_group_with_a_retention(resources: dict[str, Any]) -> None:
    functions = {
        name: body for name, body in resources.items() if body["Type"] == "AWS::Serverless::Function"
    }
    assert len(functions) >= 30
    groups_used: set[str] = set()
    for name, body in functions.items():
        config = body["Properties"].get("LoggingConfig")
        assert config is not None, f"{name} has no LoggingConfig: run python -m tools.log_groups (in infra/)"
        group = config["LogGroup"]["Ref"]
        assert group not in groups_used, f"{name} shares its log group"
        groups_used.add(group)
        properties = resources[group]["Properties"]
        assert resources[group]["Type"] == "AWS::Logs::LogGroup", name
        assert properties["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        # Not Lambda's default /aws/lambda/<name>: that group exists for every function that ran.
        assert properties["LogGroupName"] == {"Fn::Sub": f"/therapy-platform/${{Environment}}/{name}"}
    # No stray log group without its function.
    assert {name for name, body in resources.items() if body["Type"] == "AWS::Logs::LogGroup"} == groups_used


def test_the_log_retention_is_one_cloudwatch_accepts(parsed: dict[str, Any]) -> None:
    parameter = parsed["Parameters"]["LogRetentionDays"]
    assert parameter["Default"] in parameter["AllowedValues"]
    assert set(parameter["AllowedValues"]) <= {
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    }


def test_the_tool_finds_every_function_the_template_declares(resources: dict[str, Any]) -> None:
    declared = {name for name, body in resources.items() if body["Type"] == "AWS::Serverless::Function"}
    assert set(log_groups.functions(TEMPLATE.read_text())) == declared
    assert log_groups.missing(TEMPLATE.read_text()) == []


NEW_FUNCTION = """
  NewFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/new/
      Handler: app.lambda_handler

  SomeQueue:
    Type: AWS::SQS::Queue
"""


def test_the_tool_wires_a_function_added_later_once() -> None:
    text = TEMPLATE.read_text().replace("\nResources:\n", "\nResources:" + NEW_FUNCTION, 1)
    assert log_groups.missing(text) == ["NewFunction"]
    wired = log_groups.wire(text)
    assert log_groups.missing(wired) == []
    assert log_groups.wire(wired) == wired  # idempotent
    parsed = yaml_parse(wired)["Resources"]
    assert parsed["NewFunction"]["Properties"]["LoggingConfig"] == {
        "LogGroup": {"Ref": "NewFunctionLogGroup"}
    }
    assert parsed["NewFunctionLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert "Outputs" in yaml_parse(wired)


@pytest.mark.slow  # seconds of SAM's transform: `make test` runs it
@pytest.mark.parametrize("environment", ["dev", "local"])
def test_the_deployed_stack_stays_under_cloudformations_500_resources(
    monkeypatch: pytest.MonkeyPatch, parsed: dict[str, Any], environment: str
) -> None:
    """A log group per function doubles the functions' share: the stack after SAM's transform
    (roles, permissions, schedules, the API functions' versions, aliases and CodeDeploy groups)
    must stay under CloudFormation's limit of 500 resources, with room for what the next change
    adds. dev (and prod) take the parameters' defaults (canary deploys on: 439 resources in
    December 2026); local turns canaries off (423)."""
    import copy

    from samtranslator.translator.transform import transform

    from tools.function_environment import local_parameters

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    template = copy.deepcopy(parsed)
    for body in template["Resources"].values():
        properties = body.get("Properties", {})
        for uri in ("CodeUri", "ContentUri"):
            if uri in properties:
                properties[uri] = "s3://bucket/key"  # what `sam package` puts there
    parameters = local_parameters() if environment == "local" else {}
    resources = transform(template, parameters, NoManagedPolicies())["Resources"]
    assert len(resources) <= 450, f"{len(resources)} resources: split the stack before it reaches 500"
