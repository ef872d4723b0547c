"""Lambda TOKEN authorizers for LocalStack's community API Gateway, which has none.

LocalStack's community edition accepts a REST API's authorizers and methods with
`authorizationType: CUSTOM` but never runs them: every request reaches the integration without
authentication (its `preprocess_request` handler stage, where LocalStack Pro plugs its
authorizers in, is empty). The project's API relies on its authorizer, so locally this handler
fills that stage the way API Gateway documents it, running the deployed authorizer function:

- no identity header, or one that does not match the authorizer's `identityValidationExpression`:
  401 without invoking the function;
- the function is invoked with `{"type": "TOKEN", "authorizationToken", "methodArn"}`; an error
  whose message is exactly "Unauthorized": 401; any other error or a malformed answer: 500
  (AUTHORIZER_FAILURE / AUTHORIZER_CONFIGURATION_ERROR);
- the returned IAM policy is evaluated for `execute-api:Invoke` on the method ARN (`*` and `?`
  wildcards; an explicit Deny wins; no Allow: 403 ACCESS_DENIED);
- allowed: `principalId` and the returned `context` (values as strings) become
  `requestContext.authorizer` of the integration's event;
- allowed policies are cached per authorizer and token for `authorizerResultTtlInSeconds`.

Not emulated: REQUEST authorizers (refused with 500, so a misconfiguration is loud). The
answers for the raised errors are the API's configured gateway responses (gateway_responses.py).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)

_FUNCTION_IN_URI = re.compile(r"/functions/(arn:[^/]+)/invocations")
_HEADER_SOURCE = re.compile(r"^method\.request\.header\.(.+)$")

Invoke = Callable[[str, dict[str, Any], str], tuple[Any, str | None]]


class AuthorizerDecision(Exception):  # noqa: N818 - a verdict, raised to stop the request
    """What the gateway answers instead of calling the integration."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # unauthorized | forbidden | failure | configuration
        self.message = message


def _statement_matches(statement: dict[str, Any], method_arn: str) -> bool:
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    resources = statement.get("Resource", [])
    resources = [resources] if isinstance(resources, str) else resources
    action_ok = any(fnmatch.fnmatchcase("execute-api:Invoke", str(action)) for action in actions)
    return action_ok and any(fnmatch.fnmatchcase(method_arn, str(resource)) for resource in resources)


def policy_allows(policy: dict[str, Any], method_arn: str) -> bool:
    """IAM evaluation as far as an authorizer's policy needs it: an explicit Deny wins, else an
    Allow is needed."""
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    matching = [s for s in statements if isinstance(s, dict) and _statement_matches(s, method_arn)]
    if any(str(s.get("Effect")) == "Deny" for s in matching):
        return False
    return any(str(s.get("Effect")) == "Allow" for s in matching)


def _as_context_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class TokenAuthorizer:
    """The authorization step of one request: `authorize(...)` returns the `requestContext.authorizer`
    to pass on, or raises AuthorizerDecision. Independent of LocalStack's classes (tested alone)."""

    def __init__(self, invoke: Invoke, clock: Callable[[], float] = time.monotonic) -> None:
        self._invoke = invoke
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def authorize(
        self, authorizer: dict[str, Any], headers: dict[str, str], method_arn: str, source_arn: str
    ) -> dict[str, Any]:
        if str(authorizer.get("type", "")).upper() != "TOKEN":
            raise AuthorizerDecision("configuration", "only TOKEN authorizers are emulated locally")
        source = _HEADER_SOURCE.match(str(authorizer.get("identitySource", "")))
        if source is None:
            raise AuthorizerDecision("configuration", "the identity source must be a header")
        wanted = source.group(1).lower()
        token = next((value for name, value in headers.items() if name.lower() == wanted), "")
        if not token:
            raise AuthorizerDecision("unauthorized", "Unauthorized")
        expression = authorizer.get("identityValidationExpression")
        if expression and re.fullmatch(str(expression), token) is None:
            raise AuthorizerDecision("unauthorized", "Unauthorized")
        function = _FUNCTION_IN_URI.search(str(authorizer.get("authorizerUri", "")))
        if function is None:
            raise AuthorizerDecision("configuration", "the authorizer names no Lambda function")

        key = (str(authorizer.get("id", "")), token)
        ttl = int(authorizer.get("authorizerResultTtlInSeconds", 300) or 0)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            policy, result = cached[1], cached[2]
        else:
            event = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
            payload, function_error = self._invoke(function.group(1), event, source_arn)
            if function_error:
                message = payload.get("errorMessage") if isinstance(payload, dict) else None
                if message == "Unauthorized":
                    raise AuthorizerDecision("unauthorized", "Unauthorized")
                LOG.warning("authorizer failed: %s", str(message)[:200])
                raise AuthorizerDecision("failure", "authorizer failure")
            if not isinstance(payload, dict) or not isinstance(payload.get("policyDocument"), dict):
                raise AuthorizerDecision("configuration", "the authorizer answered no policy document")
            policy, result = payload["policyDocument"], payload
            if ttl > 0:
                with self._lock:
                    self._cache[key] = (self._clock() + ttl, policy, result)
        if not policy_allows(policy, method_arn):
            raise AuthorizerDecision("forbidden", "User is not authorized to access this resource")
        context = result.get("context") if isinstance(result.get("context"), dict) else {}
        return {
            **{str(name): _as_context_value(value) for name, value in context.items()},
            "principalId": str(result.get("principalId", "")),
        }


def _invoke_lambda(function_arn: str, event: dict[str, Any], source_arn: str) -> tuple[Any, str | None]:
    from localstack.aws.connect import connect_to
    from localstack.utils.aws.arns import extract_region_from_arn
    from localstack.utils.aws.client_types import ServicePrincipal

    client = connect_to(region_name=extract_region_from_arn(function_arn)).lambda_
    result = client.request_metadata(
        service_principal=ServicePrincipal.apigateway, source_arn=source_arn
    ).invoke(FunctionName=function_arn, Payload=json.dumps(event).encode(), InvocationType="RequestResponse")
    raw = result["Payload"].read() if result.get("Payload") else b""
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    return payload, result.get("FunctionError")


class LambdaTokenAuthorizerHandler:
    """A handler of LocalStack's REST API invocation chain (`preprocess_request` stage)."""

    def __init__(self, authorizer: TokenAuthorizer | None = None) -> None:
        self.authorizer = authorizer or TokenAuthorizer(_invoke_lambda)

    def __call__(self, chain: Any, context: Any, response: Any) -> None:
        from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
            AccessDeniedError,
            AuthorizerConfigurationError,
            AuthorizerFailureError,
            UnauthorizedError,
        )

        method = context.resource_method or {}
        if str(method.get("authorizationType", "NONE")).upper() != "CUSTOM":
            return
        authorizers = context.deployment.rest_api.authorizers
        authorizer = authorizers.get(method.get("authorizerId", ""))
        if authorizer is None:
            raise AuthorizerConfigurationError("Authorizer configuration error")
        request = context.invocation_request
        arn_prefix = f"arn:aws:execute-api:{context.region}:{context.account_id}:{context.api_id}"
        method_arn = f"{arn_prefix}/{context.stage}/{request['http_method']}{request['path']}"
        source_arn = f"{arn_prefix}/authorizers/{authorizer.get('id', '')}"
        try:
            verdict = self.authorizer.authorize(authorizer, dict(request["headers"]), method_arn, source_arn)
        except AuthorizerDecision as decision:
            errors = {
                "unauthorized": UnauthorizedError,
                "forbidden": AccessDeniedError,
                "failure": AuthorizerFailureError,
                "configuration": AuthorizerConfigurationError,
            }
            message = (
                decision.message if decision.kind != "configuration" else "Authorizer configuration error"
            )
            raise errors[decision.kind](message) from None
        context.context_variables["authorizer"] = verdict


def register_lambda_authorizers() -> None:
    """Put the handler into LocalStack's REST API chain (once)."""
    from localstack.services.apigateway.next_gen.execute_api import handlers

    stage = handlers.preprocess_request
    if not any(isinstance(handler, LambdaTokenAuthorizerHandler) for handler in stage.handlers):
        stage.append(LambdaTokenAuthorizerHandler())
        LOG.info("Lambda TOKEN authorizers are emulated by the project's plugin")
