"""In-place updates of Lambda aliases in LocalStack's CloudFormation (community edition).

SAM's `AutoPublishAlias` (the API functions' `live` alias, docs/operations.md#deploys) publishes a
new `AWS::Lambda::Version` whenever a function changes and points the alias at it: in AWS an
in-place update of the `AWS::Lambda::Alias` (its `FunctionVersion` is not create-only).
LocalStack 2026.3's alias provider has no update, and its change-set engine marks the alias for
replacement whenever its function was modified (`FunctionName`, a Ref to the modified function,
counts as changed and is create-only): the replacement's CreateAlias meets the alias that exists,
the stack update fails, and `localcloud deploy` would start the local stack afresh after every
change to an API function.

The start-up hook gives the provider an update and leaves only `Name` create-only:
- the same function: UpdateAlias (version, description, routing);
- another function (the function was replaced): CreateAlias on the new one, DeleteAlias on the old.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

LOG = logging.getLogger(__name__)

# Clears a weighted routing that the template no longer declares.
_NO_ROUTING = {"AdditionalVersionWeights": {}}


def alias_update_calls(
    previous: Mapping[str, Any], desired: Mapping[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """The Lambda API calls (operation, parameters) that turn the previous alias into the desired one."""
    target = {
        "FunctionName": desired["FunctionName"],
        "Name": desired["Name"],
        "FunctionVersion": desired["FunctionVersion"],
        "Description": desired.get("Description", ""),
    }
    if desired.get("RoutingConfig"):
        target["RoutingConfig"] = desired["RoutingConfig"]
    if previous.get("FunctionName") == desired["FunctionName"] and previous.get("Name") == desired["Name"]:
        if previous.get("RoutingConfig") and "RoutingConfig" not in target:
            target["RoutingConfig"] = _NO_ROUTING
        return [("update_alias", target)]
    return [
        ("create_alias", target),
        ("delete_alias", {"FunctionName": previous["FunctionName"], "Name": previous["Name"]}),
    ]


def register_alias_updates() -> None:
    """Patch LocalStack's alias provider (once): an update, and `Name` as the only create-only property."""
    from localstack.services.cloudformation.resource_provider import OperationStatus, ProgressEvent
    from localstack.services.lambda_.resource_providers.lambda_alias import LambdaAliasProvider

    if getattr(LambdaAliasProvider, "_project_alias_updates", False):
        return

    def update(self: Any, request: Any) -> Any:
        model = dict(request.desired_state)
        lambda_ = request.aws_client_factory.lambda_
        for operation, parameters in alias_update_calls(request.previous_state or {}, model):
            try:
                result = getattr(lambda_, operation)(**parameters)
            except lambda_.exceptions.ResourceNotFoundException:
                if operation != "delete_alias":
                    raise
                continue
            if operation != "delete_alias":
                model["Id"] = result["AliasArn"]
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    schema = dict(LambdaAliasProvider.SCHEMA)
    schema["createOnlyProperties"] = ["/properties/Name"]
    LambdaAliasProvider.SCHEMA = schema
    LambdaAliasProvider.update = update
    LambdaAliasProvider._project_alias_updates = True
    LOG.info("Lambda aliases are updated in place by the project's plugin")
