"""The project's stand-in for API Gateway's Lambda TOKEN authorizers in LocalStack's community
edition (localstack_subprocess_executor/authorizers.py): the decision logic without LocalStack,
and the handler inside LocalStack's own request chain classes (its virtualenv)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

# Loaded from infra/localstack_executor (see conftest.py); outside mypy_path on purpose.
from localstack_subprocess_executor.authorizers import (  # type: ignore[import-not-found]
    AuthorizerDecision,
    TokenAuthorizer,
    policy_allows,
)
from support import run_in_localstack_venv

FUNCTION = "arn:aws:lambda:eu-central-1:000000000000:function:authorizer"
AUTHORIZER = {
    "id": "auth1",
    "type": "TOKEN",
    "identitySource": "method.request.header.Authorization",
    "identityValidationExpression": "^[Bb]earer [-0-9A-Za-z._~+/]+=*$",
    "authorizerUri": (
        f"arn:aws:apigateway:eu-central-1:lambda:path/2015-03-31/functions/{FUNCTION}/invocations"
    ),
    "authorizerResultTtlInSeconds": 60,
}
METHOD_ARN = "arn:aws:execute-api:eu-central-1:000000000000:api1/local/GET/api/v2/patients"
SOURCE_ARN = "arn:aws:execute-api:eu-central-1:000000000000:api1/authorizers/auth1"


def allow_all(context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "principalId": "anna@team.example",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": ["arn:aws:execute-api:eu-central-1:000000000000:api1/local/*/*"],
                }
            ],
        },
        "context": context if context is not None else {"user_id": "anna@team.example", "roles": "staff"},
    }


class FakeFunction:
    def __init__(self, answer: Any, error: str | None = None) -> None:
        self.answer, self.error = answer, error
        self.events: list[dict[str, Any]] = []

    def __call__(self, function_arn: str, event: dict[str, Any], source_arn: str) -> tuple[Any, str | None]:
        assert (function_arn, source_arn) == (FUNCTION, SOURCE_ARN)
        self.events.append(event)
        return self.answer, self.error


def decide(function: FakeFunction, headers: dict[str, str], authorizer: dict[str, Any] = AUTHORIZER) -> Any:
    return TokenAuthorizer(function).authorize(authorizer, headers, METHOD_ARN, SOURCE_ARN)


def refused(function: FakeFunction, headers: dict[str, str], authorizer: dict[str, Any] = AUTHORIZER) -> str:
    with pytest.raises(AuthorizerDecision) as raised:
        decide(function, headers, authorizer)
    return str(raised.value.kind)


def test_an_allowed_token_passes_the_callers_context_on() -> None:
    function = FakeFunction(allow_all({"user_id": "anna", "roles": "staff", "level": 3, "ok": True}))
    verdict = decide(function, {"authorization": "Bearer abc.def.ghi"})
    assert verdict == {
        "principalId": "anna@team.example",
        "user_id": "anna",
        "roles": "staff",
        "level": "3",
        "ok": "true",
    }
    assert function.events == [
        {"type": "TOKEN", "authorizationToken": "Bearer abc.def.ghi", "methodArn": METHOD_ARN}
    ]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": ""}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer a b"}]
)
def test_a_missing_or_malformed_header_is_401_without_calling_the_function(headers: dict[str, str]) -> None:
    function = FakeFunction(allow_all())
    assert refused(function, headers) == "unauthorized"
    assert function.events == []


def test_the_function_saying_unauthorized_is_401_and_other_errors_are_500() -> None:
    assert (
        refused(FakeFunction({"errorMessage": "Unauthorized"}, "Unhandled"), {"Authorization": "Bearer x"})
        == "unauthorized"
    )
    assert (
        refused(FakeFunction({"errorMessage": "boom"}, "Unhandled"), {"Authorization": "Bearer x"})
        == "failure"
    )
    assert refused(FakeFunction({"principalId": "x"}), {"Authorization": "Bearer x"}) == "configuration"


def test_a_deny_or_a_policy_for_other_methods_is_403() -> None:
    deny = allow_all()
    deny["policyDocument"]["Statement"].append(
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": METHOD_ARN}
    )
    assert refused(FakeFunction(deny), {"Authorization": "Bearer x"}) == "forbidden"
    other = allow_all()
    other["policyDocument"]["Statement"][0]["Resource"] = [
        "arn:aws:execute-api:eu-central-1:000000000000:api1/local/POST/*"
    ]
    assert refused(FakeFunction(other), {"Authorization": "Bearer x"}) == "forbidden"


def test_verdicts_are_cached_per_token_for_the_ttl() -> None:
    function = FakeFunction(allow_all())
    clock = [0.0]
    authorizer = TokenAuthorizer(function, clock=lambda: clock[0])
    for _ in range(3):
        authorizer.authorize(AUTHORIZER, {"Authorization": "Bearer one"}, METHOD_ARN, SOURCE_ARN)
    authorizer.authorize(AUTHORIZER, {"Authorization": "Bearer two"}, METHOD_ARN, SOURCE_ARN)
    assert len(function.events) == 2
    clock[0] = 61
    authorizer.authorize(AUTHORIZER, {"Authorization": "Bearer one"}, METHOD_ARN, SOURCE_ARN)
    assert len(function.events) == 3


def test_request_authorizers_are_refused_loudly() -> None:
    assert (
        refused(FakeFunction(allow_all()), {"Authorization": "Bearer x"}, {**AUTHORIZER, "type": "REQUEST"})
        == "configuration"
    )


def test_policy_wildcards() -> None:
    policy = allow_all()["policyDocument"]
    assert policy_allows(policy, METHOD_ARN)
    assert not policy_allows(policy, METHOD_ARN.replace("/local/", "/prod/"))


@pytest.mark.integration
def test_the_handler_in_localstacks_chain_sets_the_authorizer_context_or_raises_its_errors() -> None:
    """Run in LocalStack's own virtualenv against its gateway classes (no server started)."""
    script = textwrap.dedent(
        f"""
        import json, types
        from localstack_subprocess_executor.authorizers import (
            LambdaTokenAuthorizerHandler, TokenAuthorizer, register_lambda_authorizers)
        from localstack.services.apigateway.next_gen.execute_api import handlers
        from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
            AccessDeniedError, UnauthorizedError)
        register_lambda_authorizers()
        registered = [h for h in handlers.preprocess_request.handlers
                      if isinstance(h, LambdaTokenAuthorizerHandler)]
        answer = {json.dumps(allow_all())}
        handler = LambdaTokenAuthorizerHandler(TokenAuthorizer(lambda arn, event, source: (answer, None)))
        def context(headers, authorization="CUSTOM"):
            return types.SimpleNamespace(
                resource_method={{"authorizationType": authorization, "authorizerId": "auth1"}},
                deployment=types.SimpleNamespace(rest_api=types.SimpleNamespace(
                    authorizers={{"auth1": {json.dumps(AUTHORIZER)}}})),
                invocation_request={{"http_method": "GET", "path": "/api/v2/patients", "headers": headers}},
                region="eu-central-1", account_id="000000000000", api_id="api1", stage="local",
                context_variables={{}})
        results = {{"registered": len(registered)}}
        allowed = context({{"Authorization": "Bearer abc"}})
        handler(None, allowed, None)
        results["allowed"] = allowed.context_variables["authorizer"]
        public = context({{}}, authorization="NONE")
        handler(None, public, None)
        results["public"] = public.context_variables
        try:
            handler(None, context({{}}), None)
        except UnauthorizedError as error:
            results["missing"] = [int(error.status_code or 401), error.message]
        print(json.dumps(results))
        """
    )
    results = run_in_localstack_venv(script)
    assert results["registered"] == 1
    assert results["allowed"] == {
        "principalId": "anna@team.example",
        "user_id": "anna@team.example",
        "roles": "staff",
    }
    assert results["public"] == {}
    assert results["missing"][1] == "Unauthorized"
