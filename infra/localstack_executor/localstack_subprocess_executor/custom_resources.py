"""Lambda-backed CloudFormation custom resources for LocalStack's community edition, which
accepts `Custom::*` resources but never calls their function (it only warns that the type is
unsupported and marks them complete).

The project's stack runs its migrations and Kafka topics through custom resources
(template.yaml's DatabaseMigration and KafkaTopicDeclarations), so locally this provider does
what CloudFormation documents:

- it sends the function named by `ServiceToken` the request (`RequestType` Create, Update or
  Delete, the resource's properties, the old ones on Update, the physical id on Update and
  Delete) with a presigned S3 URL as `ResponseURL`;
- the function answers by PUTting its response document there; the resource succeeds with the
  answer's `PhysicalResourceId` and `Data`, or fails with its `Reason`;
- a function that crashes or never answers fails the resource (AWS would wait an hour).

The function is invoked synchronously, so its answer is in S3 when the invocation returns.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any, Final

LOG = logging.getLogger(__name__)

TYPE: Final = "AWS::CloudFormation::CustomResource"


def custom_resource_request(
    kind: str,
    *,
    properties: Mapping[str, Any],
    old_properties: Mapping[str, Any] | None,
    physical_id: str | None,
    response_url: str,
    stack_id: str,
    logical_id: str,
    resource_type: str,
) -> dict[str, Any]:
    """The event CloudFormation sends a custom resource's function."""
    request: dict[str, Any] = {
        "RequestType": kind,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": response_url,
        "StackId": stack_id,
        "RequestId": str(uuid.uuid4()),
        "ResourceType": resource_type,
        "LogicalResourceId": logical_id,
        "ResourceProperties": dict(properties),
    }
    if kind != "Create":
        request["PhysicalResourceId"] = physical_id or logical_id
    if kind == "Update":
        request["OldResourceProperties"] = dict(old_properties or {})
    return request


def outcome(
    answer: Mapping[str, Any] | None, properties: Mapping[str, Any]
) -> tuple[bool, dict[str, Any], str]:
    """(succeeded, resource model, reason) from the function's response document."""
    if answer is None:
        return False, {}, "the function answered nothing on its ResponseURL"
    if answer.get("Status") != "SUCCESS":
        return False, {}, str(answer.get("Reason") or "the function answered FAILED")
    data = answer.get("Data") or {}
    model = {**properties, **{str(k): v for k, v in data.items()}, "Id": str(answer["PhysicalResourceId"])}
    return True, model, ""


def provider_class() -> type:
    from localstack.services.cloudformation.resource_provider import (
        OperationStatus,
        ProgressEvent,
        ResourceProvider,
    )

    class CustomResourceProvider(ResourceProvider):  # type: ignore[misc]
        TYPE = TYPE
        SCHEMA: Final = {"typeName": TYPE, "primaryIdentifier": ["/properties/Id"]}

        def create(self, request: Any) -> Any:
            return self._run("Create", request)

        def update(self, request: Any) -> Any:
            return self._run("Update", request)

        def delete(self, request: Any) -> Any:
            return self._run("Delete", request)

        def read(self, request: Any) -> Any:
            raise NotImplementedError

        def _run(self, kind: str, request: Any) -> Any:
            previous = dict(request.previous_state or {})
            properties = dict(request.desired_state or previous)
            properties.pop("Id", None)
            s3 = request.aws_client_factory.s3
            bucket = f"cloudformation-custom-resources-{request.region_name}"
            try:
                s3.head_bucket(Bucket=bucket)
            except Exception:  # not there yet
                location = (
                    {}
                    if request.region_name == "us-east-1"
                    else {"CreateBucketConfiguration": {"LocationConstraint": request.region_name}}
                )
                s3.create_bucket(Bucket=bucket, **location)
            key = f"{request.stack_name}/{request.logical_resource_id}/{uuid.uuid4()}.json"
            url = s3.generate_presigned_url(
                "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600
            )
            event = custom_resource_request(
                kind,
                properties=properties,
                old_properties={k: v for k, v in previous.items() if k != "Id"},
                physical_id=previous.get("Id"),
                response_url=url,
                stack_id=request.stack_id,
                logical_id=request.logical_resource_id,
                resource_type=request.resource_type,
            )
            result = request.aws_client_factory.lambda_.invoke(
                FunctionName=properties["ServiceToken"],
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
            answer: dict[str, Any] | None = None
            try:
                answer = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            except Exception:
                LOG.warning(
                    "custom resource %s: no answer (%s)",
                    request.logical_resource_id,
                    result.get("FunctionError"),
                )
            succeeded, model, reason = outcome(answer, properties)
            if kind == "Delete":
                # A failed delete must not strand the stack; CloudFormation itself gives up after an hour.
                return ProgressEvent(status=OperationStatus.SUCCESS, resource_model={})
            if not succeeded:
                return ProgressEvent(status=OperationStatus.FAILED, resource_model={}, message=reason)
            return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    return CustomResourceProvider
