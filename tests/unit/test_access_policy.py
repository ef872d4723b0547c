"""The access policy (contracts/access.py) covers every route, and the shared resolver enforces it:
401 without a verified caller, 403 naming the missing role, before the request is validated.

A route in template.yaml, in a function's resolver or in the OpenAPI document that the policy
does not name fails here: no route is unprotected by omission."""

from __future__ import annotations

import json
import re
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from pydantic import BaseModel
from samtranslator.yaml_helper import yaml_parse

from support import FakeLambdaContext, api_event, assert_problem, call, load_function
from therapy_platform.contracts.access import ADMIN, API_ACCESS_POLICY, AUDITOR, ROLES, ROUTES, STAFF
from therapy_platform.platform.rest.access import PUBLIC, AccessPolicy, Identity, openapi_path
from therapy_platform.platform.rest.resolver import create_resolver, current_actor

ROOT = Path(__file__).resolve().parents[2]
CATCH_ALL = ("ANY", "/{proxy+}")


@cache
def template_routes() -> dict[tuple[str, str], tuple[str, bool]]:
    """(METHOD, path) -> (function, public?) of every Api event in template.yaml."""
    template = yaml_parse((ROOT / "template.yaml").read_text())
    found: dict[tuple[str, str], tuple[str, bool]] = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                properties = event["Properties"]
                public = properties.get("Auth", {}).get("Authorizer") == "NONE"
                found[(properties["Method"].upper(), properties["Path"])] = (name, public)
    return found


def test_every_route_of_the_template_is_in_the_policy_and_no_other() -> None:
    routes = {route for route in template_routes() if route != CATCH_ALL}
    assert routes - set(ROUTES) == set(), "routes without an access rule"
    assert set(ROUTES) - routes == set(), "access rules for routes the API does not have"


def test_exactly_the_public_routes_skip_the_authorizer() -> None:
    public_in_template = {route for route, (_, public) in template_routes().items() if public}
    public_in_policy = {route for route, role in ROUTES.items() if role == PUBLIC}
    assert (
        public_in_template
        == public_in_policy
        == {
            ("GET", "/health"),
            ("GET", "/api/v2/openapi.json"),
            ("GET", "/api/v2/docs"),
            ("GET", "/api/v2/docs/{asset}"),
        }
    )
    assert template_routes()[CATCH_ALL][1] is False  # unknown paths need a token too


def test_every_operation_of_the_openapi_document_carries_its_policy_role() -> None:
    document = json.loads((ROOT / "functions" / "api_docs" / "openapi.json").read_text())
    operations = {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) <= set(ROUTES)
    for route, operation in operations.items():
        role = ROUTES[route]
        assert operation["x-required-role"] == role, route
        if role == PUBLIC:
            assert operation["security"] == [], route
        else:
            assert operation["security"] == [{"bearerAuth": []}], route
            assert f"`{role}`" in operation["description"], route
            assert {"401", "403"} <= set(operation["responses"]), route
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": scheme["description"],
    }


def test_only_what_cannot_be_undone_or_reaches_anyone_needs_admin() -> None:
    assert {route for route, role in ROUTES.items() if role == ADMIN} == {
        ("DELETE", "/api/v2/patients/{patient_id}"),
        ("GET", "/api/v2/patients/{patient_id}/export"),  # everything about a person at once
        ("GET", "/api/v2/therapists/{therapist_id}/export"),
        ("POST", "/api/v2/therapists/{therapist_id}/erase"),  # GDPR erasure of a therapist
        ("POST", "/api/v2/therapists/{therapist_id}/block"),
        ("POST", "/api/v2/therapists/{therapist_id}/unblock"),
        ("PUT", "/api/v2/therapists/{therapist_id}/cooling-period"),
        # contacting someone who objected (Art. 21) again: only when they asked for it
        ("POST", "/api/v2/therapists/{therapist_id}/opt-in"),
        ("POST", "/api/v2/emails"),
        # how the platform behaves for whom: rollouts, override users, paused regions
        ("GET", "/api/v2/admin/feature-flags"),
    }


def test_auditors_only_read() -> None:
    assert all(method == "GET" for (method, _), role in ROUTES.items() if role == AUDITOR)


def test_the_ladder() -> None:
    policy = API_ACCESS_POLICY
    assert (
        policy.allows({ADMIN}, STAFF) and policy.allows({ADMIN}, AUDITOR) and policy.allows({STAFF}, AUDITOR)
    )
    assert not policy.allows({AUDITOR}, STAFF) and not policy.allows({STAFF}, ADMIN)
    assert not policy.allows(set(), AUDITOR) and not policy.allows({"Admin", "root"}, AUDITOR)
    assert policy.allows(set(), PUBLIC)
    assert policy.roles_granting(STAFF) == (STAFF, ADMIN)
    with pytest.raises(ValueError, match="roles the ladder does not have"):
        AccessPolicy(roles=ROLES, routes={("GET", "/x"): "superuser"})


def test_the_identity_comes_from_the_authorizer_context_only() -> None:
    assert Identity.from_authorizer_context(None) is None
    assert Identity.from_authorizer_context({"principalId": "x"}) is None  # no user id: nobody
    identity = Identity.from_authorizer_context(
        {"user_id": "anna", "roles": "staff, admin,", "display_name": ""}
    )
    assert identity == Identity("anna", "anna", frozenset({"staff", "admin"}))
    assert Identity.from_authorizer_context(identity.context()) == identity


# ---------------------------------------------------------------- enforced in every API function


def _concrete(path: str) -> str:
    values = {"postcode": "10115"}
    return re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), str(uuid.uuid4())), path)


def _below(role: str) -> list[tuple[str, ...]]:
    """Callers whose roles do not reach `role`: no role at all, each lower role, unknown names."""
    return [(), ("Staff", "root"), *((lower,) for lower in ROLES[: ROLES.index(role)])]


PROTECTED = sorted(
    (function, method, path, ROUTES[(method, path)])
    for (method, path), (function, public) in template_routes().items()
    if not public and (method, path) != CATCH_ALL
)


@cache
def _handler(function: str) -> Any:
    code_dir = yaml_parse((ROOT / "template.yaml").read_text())["Resources"][function]["Properties"][
        "CodeUri"
    ]
    return load_function(Path(code_dir).name).lambda_handler


def forbidden(role: str, *, instance: str) -> dict[str, Any]:
    """The whole 403 answer: problem details naming the missing role, nothing else."""
    return {
        "type": "https://therapy-platform.example/problems/forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": f"this operation needs the role {role}",
        "code": "forbidden",
        "errors": [],
        "required_role": role,
        "instance": instance,
    }


@pytest.mark.parametrize(("function", "method", "path", "role"), PROTECTED)
def test_every_protected_route_refuses_callers_without_its_role(
    function: str, method: str, path: str, role: str
) -> None:
    """Through the deployed handler, before any service code runs (the services here are the
    real ones, with no database to reach: a refusal that came too late would fail differently)."""
    handler = _handler(function)
    target = _concrete(path)
    body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH"} else None
    status, answer = call(handler, api_event(method, target, body, user=None))
    assert (status, answer["code"]) == (401, "unauthorized"), answer
    for roles in _below(role):
        status, answer = call(handler, api_event(method, target, body, roles=roles))
        assert status == 403, (roles, answer)
        assert answer == forbidden(role, instance=f"/test{target}")


def test_unknown_paths_answer_404_to_a_verified_caller() -> None:
    status, answer = call(load_function("route_not_found").lambda_handler, api_event("GET", "/api/v2/nope"))
    assert (status, answer["code"]) == (404, "route_not_found")


# ---------------------------------------------------------------- the resolver's rules


class Note(BaseModel):
    text: str


POLICY = AccessPolicy(
    roles=ROLES,
    routes={
        ("GET", "/open"): PUBLIC,
        ("GET", "/notes"): AUDITOR,
        ("POST", "/notes"): STAFF,
        ("DELETE", "/notes/{note_id}"): ADMIN,
    },
)
app = create_resolver(Logger(service="test"), access=POLICY)


@app.get("/open")
def open_route() -> dict[str, Any]:
    return {"open": True}


@app.get("/notes")
def list_notes() -> dict[str, Any]:
    return {"reader": current_actor(app)}


@app.post("/notes")
def add_note(note: Note) -> dict[str, Any]:
    return {"stored": note.text, "actor": current_actor(app)}


@app.delete("/notes/<note_id>")
def delete_note(note_id: str) -> dict[str, Any]:
    return {"deleted": note_id, "actor": current_actor(app)}


@app.get("/forgotten")
def forgotten() -> dict[str, Any]:
    return {"served": True}


def _call(event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    response = app.resolve(event, FakeLambdaContext())  # type: ignore[arg-type]
    headers = {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
    body = assert_problem(response) if int(response["statusCode"]) >= 400 else json.loads(response["body"])
    return int(response["statusCode"]), body, headers


def test_a_public_route_needs_no_caller() -> None:
    assert _call(api_event("GET", "/open", user=None))[:2] == (200, {"open": True})


def test_without_a_verified_caller_the_answer_is_401() -> None:
    event = api_event("GET", "/notes", user=None)
    event["headers"]["Origin"] = "https://staff.example.org"
    event["multiValueHeaders"]["Origin"] = ["https://staff.example.org"]
    status, body, headers = _call(event)
    assert (status, body) == (
        401,
        {
            "type": "https://therapy-platform.example/problems/unauthorized",
            "title": "Authentication required",
            "status": 401,
            "detail": "a valid bearer token is required",
            "code": "unauthorized",
            "errors": [],
            "instance": "/test/notes",
        },
    )
    assert headers["Access-Control-Allow-Origin"] in {"*", "https://staff.example.org"}  # a browser reads why


def test_each_role_may_do_what_the_roles_below_it_may() -> None:
    assert _call(api_event("GET", "/notes", roles=(AUDITOR,), user="audit@x"))[:2] == (
        200,
        {"reader": "audit@x"},
    )
    assert _call(api_event("GET", "/notes", roles=(ADMIN,), user="boss@x"))[:2] == (200, {"reader": "boss@x"})
    assert _call(api_event("POST", "/notes", {"text": "a"}, roles=(ADMIN,)))[0] == 200
    assert _call(api_event("DELETE", "/notes/7", roles=(STAFF, ADMIN), user="b@x"))[:2] == (
        200,
        {"deleted": "7", "actor": "b@x"},
    )


def test_a_missing_role_is_named() -> None:
    status, body, _ = _call(api_event("DELETE", "/notes/7", roles=(STAFF, AUDITOR)))
    assert (status, body) == (403, forbidden("admin", instance="/test/notes/7"))


def test_the_role_is_checked_before_the_body() -> None:
    """A caller without the role learns nothing about what the route expects."""
    status, body, _ = _call(api_event("POST", "/notes", {"wrong": 1}, roles=(AUDITOR,)))
    assert status == 403 and body["required_role"] == "staff"
    status, body, _ = _call(api_event("POST", "/notes", raw_body="{broken", user=None))
    assert status == 401


def test_a_route_the_policy_does_not_name_is_refused_to_everyone() -> None:
    status, body, _ = _call(api_event("GET", "/forgotten", roles=ROLES))
    assert status == 403 and "not in the access policy" in body["detail"]


def test_unknown_routes_stay_404() -> None:
    assert _call(api_event("GET", "/nothing", roles=ROLES))[0] == 404


def test_headers_cannot_make_a_caller() -> None:
    event = api_event("GET", "/notes", user=None)
    event["headers"]["X-Staff-User"] = "mallory@x"
    event["headers"]["Authorization"] = "Bearer whatever"
    assert _call(event)[0] == 401


def test_the_route_path_matches_the_policy_form() -> None:
    assert (
        openapi_path("/api/v2/patients/<patient_id>/communications")
        == "/api/v2/patients/{patient_id}/communications"
    )
