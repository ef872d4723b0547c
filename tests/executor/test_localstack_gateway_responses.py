"""The project's patch that makes LocalStack's community API Gateway answer the API's configured
gateway responses (localstack_subprocess_executor/gateway_responses.py): the pure parts alone,
and the patch inside LocalStack's own classes (its virtualenv)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

# Loaded from infra/localstack_executor (see conftest.py); outside mypy_path on purpose.
from localstack_subprocess_executor.gateway_responses import (  # type: ignore[import-not-found]
    gateway_responses_in,
    response_body,
    response_headers,
)
from support import run_in_localstack_venv

UNAUTHORIZED = {
    "statusCode": 401,
    "responseParameters": {
        "gatewayresponse.header.Content-Type": "'application/problem+json'",
        "gatewayresponse.header.WWW-Authenticate": "'Bearer'",
        "gatewayresponse.header.X-Request": "context.requestId",
        "gatewayresponse.header.X-Stage": "stageVariables.colour",
        "gatewayresponse.header.X-Echo": "method.request.header.x-trace",
        "gatewayresponse.header.X-Missing": "context.nothing.here",
    },
    "responseTemplates": {"application/json": '{"code":"unauthorized","request_id":"$context.requestId"}'},
}
DOCUMENT = {"openapi": "3.0.1", "x-amazon-apigateway-gateway-responses": {"UNAUTHORIZED": UNAUTHORIZED}}


def test_the_documents_responses_become_put_gateway_response_records() -> None:
    assert gateway_responses_in(DOCUMENT) == {
        "UNAUTHORIZED": {
            "responseType": "UNAUTHORIZED",
            "statusCode": "401",
            "responseParameters": UNAUTHORIZED["responseParameters"],
            "responseTemplates": UNAUTHORIZED["responseTemplates"],
            "defaultResponse": False,
        }
    }
    assert gateway_responses_in({"openapi": "3.0.1"}) == {}


def test_header_parameters_resolve_literals_context_stage_and_request_headers() -> None:
    headers = response_headers(
        UNAUTHORIZED["responseParameters"],
        {"requestId": "req-1"},
        {"colour": "blue"},
        {"X-Trace": "t-7"},
    )
    assert headers == {
        "Content-Type": "application/problem+json",
        "WWW-Authenticate": "Bearer",
        "X-Request": "req-1",
        "X-Stage": "blue",
        "X-Echo": "t-7",
    }


def test_the_json_template_is_rendered_with_the_context() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def render(template: str, variables: dict[str, Any]) -> str:
        seen.append((template, variables))
        return template.replace("$context.requestId", variables["context"]["requestId"])

    templates = {"text/plain": "x", **UNAUTHORIZED["responseTemplates"]}  # type: ignore[dict-item]
    body = response_body(templates, {"requestId": "req-1"}, {}, render)
    assert json.loads(body or "") == {"code": "unauthorized", "request_id": "req-1"}
    assert response_body({}, {}, {}, render) is None


@pytest.mark.integration
def test_localstack_imports_and_answers_the_configured_response() -> None:
    """Run in LocalStack's own virtualenv against its gateway classes (no server started)."""
    script = textwrap.dedent(
        f"""
        import json, types
        from localstack_subprocess_executor.gateway_responses import register_gateway_responses
        from localstack.services.apigateway.legacy import provider
        from localstack.services.apigateway.next_gen.execute_api.handlers.gateway_exception import (
            GatewayExceptionHandler)
        from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
            UnauthorizedError)
        imported = {{}}
        provider.import_api_from_openapi_spec = lambda rest_api, context, spec, mode: (rest_api, [])
        from localstack.services.apigateway import helpers
        container = types.SimpleNamespace(gateway_responses={{}})
        helpers.get_apigateway_store = lambda context: types.SimpleNamespace(
            rest_apis={{"api1": container}})
        register_gateway_responses()
        register_gateway_responses()  # idempotent
        provider.import_api_from_openapi_spec(
            types.SimpleNamespace(id="api1"), None, {json.dumps(DOCUMENT)}, "overwrite")
        context = types.SimpleNamespace(
            deployment=types.SimpleNamespace(rest_api=types.SimpleNamespace(
                gateway_responses=container.gateway_responses)),
            context_variables={{"requestId": "req-9"}}, stage_variables=None,
            invocation_request={{"headers": {{"X-Trace": "t-1"}}}})
        handler = GatewayExceptionHandler()
        response = handler.create_exception_response(UnauthorizedError("Unauthorized"), context)
        print(json.dumps({{"status": response.status_code, "headers": dict(response.headers),
                           "body": response.get_data(as_text=True)}}))
        """
    )
    result = run_in_localstack_venv(script)
    assert result["status"] == 401
    assert result["headers"]["Content-Type"] == "application/problem+json"
    assert result["headers"]["WWW-Authenticate"] == "Bearer"
    assert result["headers"]["X-Echo"] == "t-1"
    assert json.loads(result["body"]) == {"code": "unauthorized", "request_id": "req-9"}
