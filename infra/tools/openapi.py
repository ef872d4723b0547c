"""Generates the API's OpenAPI 3 document from the code: every function of template.yaml with
API routes is imported and asked for its Powertools OpenAPI schema; the parts are merged into
one document, with problem details (platform/rest/problems.py: the Problem schema, every code in
x-problem-codes and x-field-error-codes) on every operation and the
access policy (contracts/access.py): the bearer-token scheme, and per operation its `security`,
the role it needs (`x-required-role`, also in its description) and the 401/403 answers. Each
function is imported with the environment template.yaml gives it.

Each route describes itself (platform/rest/operations.py: operationId, tag, summary,
description, success answer, its own errors); this tool adds the errors the resolver answers
on every route, the access policy, the tags' descriptions and the examples
(tools/openapi_examples.py), and validates the result as OpenAPI 3.1 (openapi-spec-validator).

    python -m tools.openapi            write functions/api_docs/openapi.json
    python -m tools.openapi --check    fail when the committed document and the code differ
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

from therapy_platform.contracts.access import API_ACCESS_POLICY, ROLE_DESCRIPTIONS
from therapy_platform.platform.rest.access import PUBLIC
from therapy_platform.platform.rest.operations import TAG_DESCRIPTIONS, Tag, error_response
from therapy_platform.platform.rest.problems import field_error_catalogue, problem_catalogue, problem_schemas
from tools.function_environment import function_environment
from tools.openapi_examples import OPERATION_EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SPEC = ROOT / "functions" / "api_docs" / "openapi.json"
TITLE = "Therapy matching platform API"
VERSION = "2.0.0"

SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An OpenID Connect token (JWT) of the organisation's identity provider, whose roles "
        "claim names the caller's roles (locally: `.venv/bin/localcloud token --role staff`).",
    }
}
AUTH_RESPONSES = {
    "401": "No valid bearer token (missing, expired, not yet valid, wrong issuer or audience, bad signature)",
    "403": "The token lacks the role this operation needs (named in required_role)",
}
# What the resolver answers on its own (platform/rest/resolver.py), by what a route takes. A
# route's own errors come with the route (platform/rest/operations.py).
EVERY_ROUTE_ERRORS = {
    "422": "Invalid or missing fields, or a query parameter this operation does not declare "
    "(each named in errors)",
    "503": "A backing service (the database) is unavailable; retry later",
}
# Answers the resolver gives for the convention headers a route declares (platform/idempotency.py,
# platform/preconditions.py).
HEADER_ERRORS = {
    "idempotency-key": {
        "409": "This Idempotency-Key was used with another request, or its first request is still running",
        "410": "What the first request with this Idempotency-Key created was erased (GDPR Art. 17); "
        "it is not created again",
    },
    "if-match": {
        "412": "If-Match names an older version of the record: read it again and reapply the change",
        "428": "If-Match is missing: send the ETag of the version this change is based on (or *)",
    },
}
BODY_ERRORS = {
    "400": "The body is not valid JSON",
    "415": "The body is not JSON (Content-Type must be application/json)",
}


def api_functions() -> list[tuple[str, Path, str]]:
    """(logical id, code dir, handler module) of every function that serves API routes."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(TEMPLATE.read_text())
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        events = properties.get("Events", {})
        if any(event.get("Type") == "Api" for event in events.values()) and logical_id != "ApiDocsFunction":
            module = properties["Handler"].rsplit(".", 1)[0]
            found.append((logical_id, ROOT / properties["CodeUri"], module))
    return sorted(found)


def _load_app(logical_id: str, code_dir: Path, module: str) -> Any:
    # Handlers validate their settings at import (cold start): give each the environment the
    # template gives it (tools/function_environment.py), which is also a check of the template.
    os.environ.update(function_environment(logical_id))
    spec = importlib.util.spec_from_file_location(f"openapi_{logical_id}", code_dir / f"{module}.py")
    assert spec and spec.loader
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    return loaded.app


def _merge_into(target: dict[str, Any], part: dict[str, Any], where: str) -> None:
    for name, value in part.items():
        if name in target and target[name] != value:
            raise ValueError(f"OpenAPI conflict at {where}.{name}: two functions define it differently")
        target[name] = value


def _add_access(operation: dict[str, Any], method: str, path: str) -> None:
    """The route's rule from the access policy; a route the policy lacks cannot be described."""
    role = API_ACCESS_POLICY.required_role(method, path)
    if role is None:
        raise ValueError(f"{method.upper()} {path} is not in the access policy (contracts/access.py)")
    operation["x-required-role"] = role
    text = operation.get("description", "").rstrip()
    if role == PUBLIC:
        operation["security"] = []
        operation["description"] = f"{text}\n\nPublic: no token needed.".lstrip()
        return
    operation["security"] = [{"bearerAuth": []}]
    granting = ", ".join(f"`{name}`" for name in API_ACCESS_POLICY.roles_granting(role))
    operation["description"] = (
        f"{text}\n\nRequires the role `{role}` (callers with any of {granting}).".lstrip()
    )
    for status, description in AUTH_RESPONSES.items():
        operation["responses"][status] = error_response(status, description)


def _powertools_default(response: dict[str, Any]) -> bool:
    """Powertools' own 422 (its HTTPValidationError body, which this API never answers)."""
    return "HTTPValidationError" in json.dumps(response)


def _add_resolver_errors(operation: dict[str, Any]) -> None:
    """The errors the resolver answers on every route, and on routes that take a body."""
    responses = operation.setdefault("responses", {})
    if _powertools_default(responses.get("422", {})):
        del responses["422"]
    resolver_errors = dict(EVERY_ROUTE_ERRORS)
    if "requestBody" in operation:
        resolver_errors |= BODY_ERRORS
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "header":
            resolver_errors |= HEADER_ERRORS.get(parameter["name"].lower(), {})
    for status, description in resolver_errors.items():
        responses.setdefault(status, error_response(status, description))


def _add_examples(operation: dict[str, Any], where: str) -> None:
    """Request and response examples (tools/openapi_examples.py), by operationId."""
    examples = OPERATION_EXAMPLES.get(operation["operationId"])
    if examples is None:
        return
    if examples.request is not None:
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            raise ValueError(f"{where}: a request example for an operation without a JSON body")
        content["examples"] = examples.request
    for status, named in examples.responses.items():
        content = operation["responses"].get(str(status), {}).get("content", {}).get("application/json")
        if content is None:
            raise ValueError(f"{where}: an example for {status}, which the operation does not answer")
        content["examples"] = named


def build() -> dict[str, Any]:
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "openapi")
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Staff API of the psychotherapy matching platform. Generated from the code "
            "(infra/tools/openapi.py). Every error is RFC 9457 problem details (application/problem+json, "
            "schema Problem) with a stable `code` (x-problem-codes) and one entry per offending field "
            "in `errors` (codes in x-field-error-codes, German messages). Every operation but "
            "/health and this description needs a bearer token; each names the role it needs "
            "(x-required-role). Roles, each including the ones before it: "
            + "; ".join(f"`{role}`: {ROLE_DESCRIPTIONS[role]}" for role in API_ACCESS_POLICY.roles)
            + ".",
        },
        "paths": {},
        "components": {"schemas": problem_schemas(), "securitySchemes": SECURITY_SCHEMES},
        "security": [{"bearerAuth": []}],
        "x-problem-codes": problem_catalogue(),
        "x-field-error-codes": field_error_catalogue(),
    }
    used_tags: set[str] = set()
    for logical_id, code_dir, module in api_functions():
        schema = _load_app(logical_id, code_dir, module).get_openapi_schema(title=TITLE, version=VERSION)
        part = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
        for path, operations in part.get("paths", {}).items():
            for method, operation in operations.items():
                where = f"{method.upper()} {path} ({logical_id})"
                if not operation.get("tags"):
                    raise ValueError(f"{where}: no tag; describe the route with platform.rest.operations")
                used_tags.update(operation["tags"])
                _add_resolver_errors(operation)
                _add_access(operation, method, path)
                _add_examples(operation, where)
                document["paths"].setdefault(path, {})[method] = operation
        schemas = part.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
            schemas.pop(unused, None)
        _merge_into(document["components"]["schemas"], schemas, "components.schemas")
    document["paths"] = dict(sorted(document["paths"].items()))
    document["tags"] = [
        {"name": tag.value, "description": TAG_DESCRIPTIONS[tag]} for tag in Tag if tag.value in used_tags
    ]
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if the committed document is out of date")
    args = parser.parse_args(argv)
    document = build()
    # A document client generators choke on is never written nor accepted.
    validate(document)
    text = render(document)
    if args.check:
        if not SPEC.exists() or SPEC.read_text() != text:
            print(f"{SPEC.relative_to(ROOT)} is out of date: run python -m tools.openapi", file=sys.stderr)
            return 1
        return 0
    SPEC.write_text(text)
    print(f"wrote {SPEC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
