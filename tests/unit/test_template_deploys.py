"""Safe deploys (docs/operations.md#deploys): every API function is published as the `live` alias,
which AWS shifts by a CodeDeploy canary rolled back by the API's alarms; locally (LocalStack
community has no CodeDeploy) the `CanaryDeploys` parameter turns the canary off and the alias
moves at once. SAM resolves the parameter when it transforms the template, so the local stack
holds no CodeDeploy resource at all."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tools.function_environment import local_parameters

ROOT = Path(__file__).resolve().parents[2]
CANARY = "Canary10Percent5Minutes"
ROLLBACK_ALARMS = {"ApiServerErrorsAlarm", "FunctionErrorsAlarm"}


@pytest.fixture(scope="module")
def parsed() -> dict[str, Any]:
    return yaml_parse((ROOT / "template.yaml").read_text())  # type: ignore[no-any-return]


def _functions(parsed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: body["Properties"]
        for name, body in parsed["Resources"].items()
        if body["Type"] == "AWS::Serverless::Function"
    }


def _api_functions(parsed: dict[str, Any]) -> set[str]:
    return {
        name
        for name, properties in _functions(parsed).items()
        if any(event["Type"] == "Api" for event in (properties.get("Events") or {}).values())
    }


def test_every_api_function_deploys_through_the_live_alias_with_a_canary(parsed: dict[str, Any]) -> None:
    api_functions = _api_functions(parsed)
    assert len(api_functions) >= 10
    for name in api_functions:
        properties = _functions(parsed)[name]
        assert properties.get("AutoPublishAlias") == "live", name
        preference = properties.get("DeploymentPreference")
        assert preference is not None, f"{name} has no DeploymentPreference"
        assert preference["Enabled"] == {"Ref": "CanaryDeploys"}, name
        assert preference["Type"] == CANARY, name
        assert {alarm["Ref"] for alarm in preference["Alarms"]} == ROLLBACK_ALARMS, name
    # Only the API functions: a canary for queue consumers or schedules would shift nothing.
    others = {
        name
        for name, properties in _functions(parsed).items()
        if "DeploymentPreference" in properties or "AutoPublishAlias" in properties
    }
    assert others == api_functions


def test_the_rollback_alarms_watch_the_api_and_every_function(parsed: dict[str, Any]) -> None:
    resources = parsed["Resources"]
    server_errors = resources["ApiServerErrorsAlarm"]["Properties"]
    api = resources["Api"]["Properties"]
    assert (server_errors["Namespace"], server_errors["MetricName"]) == ("AWS/ApiGateway", "5XXError")
    dimensions = {d["Name"]: d["Value"] for d in server_errors["Dimensions"]}
    assert dimensions == {"ApiName": api["Name"], "Stage": api["StageName"]}
    for alarm in ROLLBACK_ALARMS:
        assert resources[alarm]["Type"] == "AWS::CloudWatch::Alarm"
        assert resources[alarm]["Properties"]["AlarmActions"] == [{"Ref": "StaffAlertTopic"}], alarm


def test_canaries_are_on_by_default_and_off_only_locally(parsed: dict[str, Any]) -> None:
    assert parsed["Parameters"]["CanaryDeploys"]["Default"] == "true"
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for environment in ("dev", "prod"):
        overrides = samconfig[environment]["deploy"]["parameters"]["parameter_overrides"]
        assert not any(item.startswith("CanaryDeploys=") for item in overrides), environment
    assert local_parameters()["CanaryDeploys"] == "false"


def transformed(parsed: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The template after SAM's transform with these parameter values (what CloudFormation gets)."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    template = copy.deepcopy(parsed)
    for body in template["Resources"].values():
        properties = body.get("Properties", {})
        for uri in ("CodeUri", "ContentUri"):
            if uri in properties:
                properties[uri] = "s3://bucket/key"  # what `sam package` puts there
    resources: dict[str, Any] = transform(template, parameters, NoManagedPolicies())["Resources"]
    return resources


@pytest.mark.slow  # seconds of SAM's transform: `make test` runs it
def test_aws_gets_a_deployment_group_per_api_function_and_local_none(
    monkeypatch: pytest.MonkeyPatch, parsed: dict[str, Any]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    api_functions = _api_functions(parsed)

    aws = transformed(parsed, {})  # dev and prod leave CanaryDeploys at its default
    groups = {name: body for name, body in aws.items() if body["Type"] == "AWS::CodeDeploy::DeploymentGroup"}
    assert len(groups) == len(api_functions)
    for name, group in groups.items():
        properties = group["Properties"]
        config = {"Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}", {"ConfigName": CANARY}]}
        assert properties["DeploymentConfigName"] == config, name
        alarms = {alarm["Name"]["Ref"] for alarm in properties["AlarmConfiguration"]["Alarms"]}
        assert alarms == ROLLBACK_ALARMS, name
        assert properties["AutoRollbackConfiguration"]["Enabled"] is True, name
    aliases = {name: body for name, body in aws.items() if body["Type"] == "AWS::Lambda::Alias"}
    assert len(aliases) == len(api_functions)
    assert all("CodeDeployLambdaAliasUpdate" in body.get("UpdatePolicy", {}) for body in aliases.values())

    local = transformed(parsed, local_parameters())
    assert not [name for name, body in local.items() if body["Type"].startswith("AWS::CodeDeploy::")]
    local_aliases = [body for body in local.values() if body["Type"] == "AWS::Lambda::Alias"]
    assert len(local_aliases) == len(api_functions)
    assert all("UpdatePolicy" not in body for body in local_aliases)
    # API Gateway calls the alias, not $LATEST (the authorizer is no route: it stays unaliased).
    permissions = [body["Properties"] for body in local.values() if body["Type"] == "AWS::Lambda::Permission"]
    api_targets = [p["FunctionName"] for p in permissions if p.get("Principal") == "apigateway.amazonaws.com"]
    for name in api_functions:
        assert {"Ref": f"{name}Aliaslive"} in api_targets, name
        assert {"Ref": name} not in api_targets and {"Fn::GetAtt": [name, "Arn"]} not in api_targets, name
