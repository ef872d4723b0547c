"""Routes are declared twice, by necessity: in template.yaml (API Gateway sends the request to a
function) and in the function's resolver (the function answers it). Both must name the same set,
function by function: a route only in the template answers 404 from the function; a route only
in the code is never reached."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tools.openapi import TEMPLATE, _load_app, api_functions

# Every path no function owns: a resolver without routes answers the problem+json 404.
CATCH_ALL = ("ANY", "/{proxy+}")
CATCH_ALL_FUNCTION = "RouteNotFoundFunction"


@cache
def template_routes() -> dict[str, set[tuple[str, str]]]:
    """Function logical id -> its (METHOD, path) Api events."""
    resources = yaml_parse(TEMPLATE.read_text())["Resources"]
    found: dict[str, set[tuple[str, str]]] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "Api":
                properties = event["Properties"]
                route = (properties["Method"].upper(), properties["Path"])
                if route != CATCH_ALL:
                    found.setdefault(logical_id, set()).add(route)
                else:
                    found.setdefault(CATCH_ALL_FUNCTION, set())
    return found


def code_routes(app: Any) -> set[tuple[str, str]]:
    """(METHOD, path) of every route a Powertools resolver registered (paths in OpenAPI form)."""
    return {(route.method, route.openapi_path) for route in app._static_routes + app._dynamic_routes}


def functions_by_code() -> dict[tuple[str, str], list[str]]:
    """(code dir, handler module) -> the logical ids deployed from it (MatchingApiFunction and
    BundleRoundApiFunction share one resolver: the round's routes get more memory and time)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for logical_id, code_dir, module in api_functions():
        grouped.setdefault((str(code_dir), module), []).append(logical_id)
    return grouped


@pytest.mark.parametrize(("code", "logical_ids"), sorted(functions_by_code().items()), ids=lambda v: str(v))
def test_the_template_and_the_code_name_the_same_routes(
    code: tuple[str, str], logical_ids: list[str]
) -> None:
    app = _load_app(logical_ids[0], Path(code[0]), code[1])
    in_template = [template_routes().get(logical_id, set()) for logical_id in logical_ids]
    assert code_routes(app) == set().union(*in_template)
    # A route goes to one function only.
    assert sum(len(routes) for routes in in_template) == len(set().union(*in_template))


def test_every_function_with_routes_is_checked() -> None:
    checked = {logical_id for logical_id, _, _ in api_functions()}
    # ApiDocsFunction serves two fixed documents, without a resolver.
    assert set(template_routes()) - checked == {"ApiDocsFunction"}
    assert len(checked) >= 10
