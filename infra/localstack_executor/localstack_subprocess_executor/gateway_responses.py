"""The REST API's configured gateway responses for LocalStack's community API Gateway.

API Gateway answers its own errors (no token, access denied, unknown route, throttling, ...) with
the API's `GatewayResponses`: their status code, their `responseTemplates` body and their
`responseParameters` headers. SAM writes them into the API's OpenAPI body as
`x-amazon-apigateway-gateway-responses`. LocalStack's community edition drops that extension when
it imports the body, and answers every gateway error `application/json` `{"message": ...}`.
The project's template makes every gateway error an RFC 9457 problem
(`application/problem+json`, see template.yaml), so locally this plugin

1. keeps the extension's responses when an OpenAPI body is imported (as PutGatewayResponse
   would), and
2. renders the configured template (with LocalStack's own VTL engine) and sets the configured
   headers when the gateway answers an error, the way API Gateway documents it:

- the body is the `application/json` template (the one the project configures), else the first;
- `gatewayresponse.header.<name>` parameters take a quoted literal (`'value'`), a
  `context.<variable>`, a `stageVariables.<name>` or a `method.request.header.<name>`;
- a response type the API does not configure keeps LocalStack's default answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

LOG = logging.getLogger(__name__)

_HEADER = "gatewayresponse.header."

Render = Callable[[str, dict[str, Any]], str]


def _lookup(path: str, variables: Mapping[str, Any]) -> Any:
    value: Any = variables
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def response_headers(
    parameters: Mapping[str, str],
    context_variables: Mapping[str, Any],
    stage_variables: Mapping[str, str],
    request_headers: Mapping[str, str],
) -> dict[str, str]:
    """The headers a gateway response's `responseParameters` ask for (unresolvable ones left out)."""
    lowered_request = {name.lower(): value for name, value in request_headers.items()}
    headers: dict[str, str] = {}
    for key, source in parameters.items():
        if not key.startswith(_HEADER):
            continue
        name = key[len(_HEADER) :]
        value: Any = None
        if len(source) >= 2 and source.startswith("'") and source.endswith("'"):
            value = source[1:-1]
        elif source.startswith("context."):
            value = _lookup(source[len("context.") :], context_variables)
        elif source.startswith("stageVariables."):
            value = stage_variables.get(source[len("stageVariables.") :])
        elif source.startswith("method.request.header."):
            value = lowered_request.get(source[len("method.request.header.") :].lower())
        if value is not None:
            headers[name] = str(value)
    return headers


def response_body(
    templates: Mapping[str, str],
    context_variables: Mapping[str, Any],
    stage_variables: Mapping[str, str],
    render: Render,
) -> str | None:
    """The rendered body template, or None when the gateway response configures none."""
    template = templates.get("application/json") or next(iter(templates.values()), None)
    if not template:
        return None
    return render(template, {"context": dict(context_variables), "stageVariables": dict(stage_variables)})


_EXTENSION = "x-amazon-apigateway-gateway-responses"


def gateway_responses_in(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The gateway responses an OpenAPI body declares, keyed by response type, as the
    GatewayResponse records PutGatewayResponse stores."""
    declared = document.get(_EXTENSION) or {}
    responses: dict[str, dict[str, Any]] = {}
    for response_type, declaration in declared.items():
        status = declaration.get("statusCode")
        responses[str(response_type)] = {
            "responseType": str(response_type),
            "statusCode": str(status) if status else None,
            "responseParameters": dict(declaration.get("responseParameters") or {}),
            "responseTemplates": dict(declaration.get("responseTemplates") or {}),
            "defaultResponse": False,
        }
    return responses


def register_gateway_responses() -> None:
    """Wrap LocalStack's gateway exception handler so it applies the configured responses (once)."""
    from localstack.services.apigateway.helpers import get_apigateway_store
    from localstack.services.apigateway.legacy import provider
    from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
        get_gateway_response_or_default,
    )
    from localstack.services.apigateway.next_gen.execute_api.handlers.gateway_exception import (
        GatewayExceptionHandler,
    )
    from localstack.services.apigateway.next_gen.execute_api.template_mapping import ApiGatewayVtlTemplate

    original = GatewayExceptionHandler.create_exception_response
    if getattr(original, "applies_configured_gateway_responses", False):
        return
    original_import = provider.import_api_from_openapi_spec

    def import_api_from_openapi_spec(
        rest_api: Any, context: Any, open_api_spec: dict[str, Any], mode: Any
    ) -> Any:
        result = original_import(rest_api, context, open_api_spec, mode)
        responses = gateway_responses_in(open_api_spec)
        if responses:
            container = get_apigateway_store(context=context).rest_apis[rest_api.id]
            container.gateway_responses.update(responses)
        return result

    provider.import_api_from_openapi_spec = import_api_from_openapi_spec
    engine = ApiGatewayVtlTemplate()

    def render(template: str, variables: dict[str, Any]) -> str:
        return str(engine.render_vtl(template=template.strip(), variables=variables))

    def create_exception_response(self: Any, exception: Any, context: Any) -> Any:
        response = original(self, exception, context)
        if response is None or context.deployment is None:
            return response
        configured = get_gateway_response_or_default(
            exception.type, context.deployment.rest_api.gateway_responses
        )
        if not configured or configured.get("defaultResponse"):
            return response
        context_variables = context.context_variables or {}
        stage_variables = context.stage_variables or {}
        request = context.invocation_request or {}
        try:
            body = response_body(
                configured.get("responseTemplates") or {}, context_variables, stage_variables, render
            )
            headers = response_headers(
                configured.get("responseParameters") or {},
                context_variables,
                stage_variables,
                dict(request.get("headers") or {}),
            )
        except Exception:  # a broken template must not turn a 4xx into a crash
            LOG.exception("could not apply the gateway response %s", exception.type)
            return response
        if body is not None:
            response.set_data(body.encode())
        for name, value in headers.items():
            response.headers[name] = value
        return response

    create_exception_response.applies_configured_gateway_responses = True  # type: ignore[attr-defined]
    GatewayExceptionHandler.create_exception_response = create_exception_response
    LOG.info("gateway responses are applied by the project's plugin")
