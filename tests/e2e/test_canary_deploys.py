"""Deploys of the API functions locally (docs/operations.md#deploys): the API calls each function's
`live` alias; with `CanaryDeploys=false` the stack holds no CodeDeploy resource and the alias
points at the function's newest version; and LocalStack's CloudFormation moves an alias to a new
version in place (the project's plugin, alias_updates.py), so redeploying a changed API function
does not fail and restart the local stack."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests

from localcloud import stack
from localcloud.aws import client

pytestmark = pytest.mark.e2e


def _resources(stack_name: str) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    for page in client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack_name):
        resources += page["StackResourceSummaries"]
    return resources


def test_the_api_calls_each_functions_live_alias_and_no_codedeploy_is_deployed(
    deployed: stack.StackInfo,
) -> None:
    resources = _resources(deployed.stack_name)
    types = {r["ResourceType"] for r in resources}
    assert not [kind for kind in types if kind.startswith("AWS::CodeDeploy::")]
    aliases = {r["LogicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Lambda::Alias"}
    assert len(aliases) >= 10

    lambda_client = client("lambda")
    aliased = {name for name in deployed.functions if f"{name}Aliaslive" in aliases}
    assert aliased == {alias.removesuffix("Aliaslive") for alias in aliases}
    for name in aliased:
        function = deployed.functions[name]
        live = lambda_client.get_alias(FunctionName=function, Name="live")["FunctionVersion"]
        versions = lambda_client.list_versions_by_function(FunctionName=function)["Versions"]
        newest = max(int(v["Version"]) for v in versions if v["Version"] != "$LATEST")
        assert live == str(newest), name

    apigateway = client("apigateway")
    targets = set()
    for resource in apigateway.get_resources(restApiId=deployed.api_id, limit=500)["items"]:
        for method in resource.get("resourceMethods") or {}:
            if method != "OPTIONS":
                uri = apigateway.get_integration(
                    restApiId=deployed.api_id, resourceId=resource["id"], httpMethod=method
                )["uri"]
                targets.add(uri.split("functions/", 1)[1].removesuffix("/invocations"))
    prefix = "arn:aws:lambda:eu-central-1:000000000000:function:"
    assert targets == {f"{prefix}{deployed.functions[name]}:live" for name in aliased}
    assert requests.get(f"{deployed.api_base_url}/health", timeout=60).status_code == 200


def _template(version: str) -> str:
    """A function with one published version and an alias on it, as SAM's AutoPublishAlias makes
    them (the version's logical id changes with the code)."""
    return json.dumps(
        {
            "Resources": {
                "Fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Runtime": "python3.13",
                        "Handler": "index.handler",
                        "Role": "arn:aws:iam::000000000000:role/alias-update-test",
                        "Code": {"ZipFile": f"def handler(event, context):\n    return {version!r}\n"},
                    },
                },
                f"FnVersion{version}": {
                    "Type": "AWS::Lambda::Version",
                    "DeletionPolicy": "Retain",
                    "Properties": {"FunctionName": {"Ref": "Fn"}},
                },
                "FnAliaslive": {
                    "Type": "AWS::Lambda::Alias",
                    "Properties": {
                        "FunctionName": {"Ref": "Fn"},
                        "FunctionVersion": {"Fn::GetAtt": [f"FnVersion{version}", "Version"]},
                        "Name": "live",
                    },
                },
            }
        }
    )


def test_cloudformation_moves_an_alias_to_the_new_version_in_place(deployed: stack.StackInfo) -> None:
    cloudformation = client("cloudformation")
    name = f"alias-update-{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(StackName=name, TemplateBody=_template("1"))
    try:
        cloudformation.get_waiter("stack_create_complete").wait(
            StackName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
        )
        function = next(r for r in _resources(name) if r["LogicalResourceId"] == "Fn")["PhysicalResourceId"]
        lambda_client = client("lambda")
        first = lambda_client.get_alias(FunctionName=function, Name="live")["FunctionVersion"]

        cloudformation.update_stack(StackName=name, TemplateBody=_template("2"))
        cloudformation.get_waiter("stack_update_complete").wait(
            StackName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
        )
        second = lambda_client.get_alias(FunctionName=function, Name="live")["FunctionVersion"]
        assert int(second) == int(first) + 1
        status = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        assert status == "UPDATE_COMPLETE"
    finally:
        cloudformation.delete_stack(StackName=name)
        cloudformation.get_waiter("stack_delete_complete").wait(
            StackName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
        )
