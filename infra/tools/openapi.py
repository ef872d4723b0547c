"""Generates the API's OpenAPI 3 document from the code: every function of template.yaml with
API routes is imported and asked for its Powertools OpenAPI schema; the parts are merged into
one document, with problem details (platform/rest/problems.py: the Problem schema, every code in
x-problem-codes and x-field-error-codes) on every operation and the
access policy (contracts/access.py): the bearer-token scheme, and per operation its `security`,
the role it needs (`x-required-role`, also in its description) and the 401/403 answers. Each
function is imported with the environment template.yaml gives it.

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

from therapy_platform.contracts.access import API_ACCESS_POLICY, ROLE_DESCRIPTIONS
from therapy_platform.platform.rest.access import PUBLIC
from therapy_platform.platform.rest.problems import (
    PROBLEM_JSON,
    field_error_catalogue,
    problem_catalogue,
    problem_codes_by_status,
    problem_schemas,
)
from tools.function_environment import function_environment

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
# Every error is problem details (platform/rest/problems.py); the codes each status can carry are
# listed in its description and, with their titles, in x-problem-codes.
ERROR_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
ERROR_RESPONSES = {
    "400": "Malformed JSON body",
    "404": "Unknown resource or route",
    "409": "Conflicts with the current state",
    "415": "The body is not JSON (Content-Type must be application/json)",
    "422": "Invalid or missing fields (each named in errors)",
    "500": "Internal error (logged under request_id)",
    "503": "A backing service is unavailable; retry later",
}


def _error_response(status: str, description: str) -> dict[str, Any]:
    codes = ", ".join(f"`{code}`" for code in problem_codes_by_status().get(int(status), []))
    return {
        "description": f"{description}. Codes: {codes}." if codes else description,
        "content": ERROR_CONTENT,
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
    if role == PUBLIC:
        operation["security"] = []
        operation["description"] = "Public: no token needed."
        return
    operation["security"] = [{"bearerAuth": []}]
    granting = ", ".join(f"`{name}`" for name in API_ACCESS_POLICY.roles_granting(role))
    operation["description"] = f"Requires the role `{role}` (callers with any of {granting})."
    for status, description in AUTH_RESPONSES.items():
        operation["responses"][status] = _error_response(status, description)


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
    for logical_id, code_dir, module in api_functions():
        schema = _load_app(logical_id, code_dir, module).get_openapi_schema(title=TITLE, version=VERSION)
        part = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
        for path, operations in part.get("paths", {}).items():
            for method, operation in operations.items():
                operation.setdefault("tags", [logical_id.removesuffix("Function")])
                responses = operation.setdefault("responses", {})
                for status, description in ERROR_RESPONSES.items():
                    responses[status] = _error_response(status, description)
                _add_access(operation, method, path)
                document["paths"].setdefault(path, {})[method] = operation
        schemas = part.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        _merge_into(document["components"]["schemas"], schemas, "components.schemas")
    document["paths"] = dict(sorted(document["paths"].items()))
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if the committed document is out of date")
    args = parser.parse_args(argv)
    text = render(build())
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
