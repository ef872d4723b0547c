"""LocalStack plugin entry points: `LAMBDA_RUNTIME_EXECUTOR=subprocess` selects this executor; a
start-up hook adds Lambda TOKEN authorizers to the community API Gateway (authorizers.py), another
makes it answer the API's configured gateway responses (gateway_responses.py), a third lets
CloudFormation update Lambda aliases in place (alias_updates.py), and a resource provider runs
Lambda-backed CloudFormation custom resources (custom_resources.py).

Kept import-light: LocalStack loads every plugin class of the namespace to read its name.
"""

from __future__ import annotations

from typing import Any

from localstack.runtime import hooks
from localstack.services.cloudformation.resource_provider import CloudFormationResourceProviderPlugin
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class SubprocessRuntimeExecutorPlugin(RuntimeExecutorPlugin):  # type: ignore[misc]
    name = "subprocess"

    def load(self, *args: Any, **kwargs: Any) -> type:
        from localstack_subprocess_executor.executor import SubprocessRuntimeExecutor

        return SubprocessRuntimeExecutor


@hooks.on_infra_start()
def register_lambda_authorizers() -> None:
    """LocalStack's community API Gateway runs no Lambda authorizers: add them (authorizers.py)."""
    from localstack_subprocess_executor.authorizers import register_lambda_authorizers as register

    register()


@hooks.on_infra_start()
def register_gateway_responses() -> None:
    """LocalStack's community API Gateway ignores the gateway responses' bodies and headers: apply them."""
    from localstack_subprocess_executor.gateway_responses import register_gateway_responses as register

    register()


@hooks.on_infra_start()
def register_alias_updates() -> None:
    """LocalStack's CloudFormation replaces a Lambda alias whose function changed, and fails: update it."""
    from localstack_subprocess_executor.alias_updates import register_alias_updates as register

    register()


class CustomResourceProviderPlugin(CloudFormationResourceProviderPlugin):  # type: ignore[misc]
    """LocalStack's community edition has no provider for Lambda-backed custom resources."""

    name = "AWS::CloudFormation::CustomResource"

    def __init__(self) -> None:
        self.factory: type | None = None

    def load(self) -> None:
        from localstack_subprocess_executor.custom_resources import provider_class

        self.factory = provider_class()
