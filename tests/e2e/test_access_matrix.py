"""Authentication and roles through the deployed local stack, for every operation of the committed
OpenAPI document (generated from it, not a hand list): without a token, and with an expired,
wrongly issued, wrongly addressed, forged or unsigned token, every protected operation answers
401; a caller whose roles do not reach the operation's `x-required-role` gets 403 naming it; the
right role gets neither. The audit log names the token's user, whatever X-Staff-User says.

Requests are made so that an allowed one changes nothing: path ids are random (404), and a body
is a JSON array, which no operation accepts (422)."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import create_engine, text

from cloud_support import ApiCaller
from localcloud import identity, postgres
from therapy_platform.contracts.access import ROLES
from therapy_platform.platform.rest.access import PUBLIC

pytestmark = pytest.mark.e2e

SPEC = json.loads(
    (Path(__file__).resolve().parents[2] / "functions" / "api_docs" / "openapi.json").read_text()
)
OPERATIONS = sorted(
    (method.upper(), path, operation)
    for path, methods in SPEC["paths"].items()
    for method, operation in methods.items()
)


def _url(base_url: str, path: str, operation: dict[str, Any]) -> str:
    """The operation's path with a value for each path parameter that names nothing stored."""
    schemas = {
        parameter["name"]: parameter.get("schema", {})
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "path"
    }

    def value(match: re.Match[str]) -> str:
        schema = schemas.get(match.group(1), {})
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        return "99999" if match.group(1) == "postcode" else "0"

    return base_url + re.sub(r"\{([^}]+)\}", value, path)


def _send(method: str, url: str, operation: dict[str, Any], headers: dict[str, str]) -> requests.Response:
    body = "[]" if "requestBody" in operation else None
    return requests.request(
        method,
        url,
        data=body,
        headers={"Content-Type": "application/json", **headers} if body else headers,
        timeout=60,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bad_tokens() -> dict[str, str]:
    """Tokens the authorizer must refuse, each wrong in one way only (role: admin, the highest)."""
    now = int(time.time())
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good_claims = jwt.decode(
        identity.issue_token(("admin",), user="e2e-attacker@example.org"), options={"verify_signature": False}
    )
    header = {"alg": "none", "typ": "JWT", "kid": identity.key_id()}
    return {
        "expired": identity.issue_token(("admin",), now=now - 7200, ttl_s=600),
        "not yet valid": identity.issue_token(("admin",), nbf=now + 3600),
        "wrong issuer": identity.issue_token(("admin",), iss="http://127.0.0.1:9/other-issuer"),
        "wrong audience": identity.issue_token(("admin",), aud="another-application"),
        "forged signature": jwt.encode(
            good_claims, attacker, algorithm="RS256", headers={"kid": identity.key_id()}
        ),
        "alg none": f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(good_claims).encode())}.",
        "not a JWT": "not-a-token",
    }


@pytest.fixture(scope="module")
def bad_tokens(deployed: Any) -> dict[str, str]:
    return _bad_tokens()


def _roles_below(required: str) -> list[tuple[str, ...]]:
    return [(), *((role,) for role in ROLES[: ROLES.index(required)])]


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    OPERATIONS,
    ids=[f"{method} {path}" for method, path, _ in OPERATIONS],
)
def test_the_operation_admits_exactly_the_verified_callers_with_its_role(
    base_url: str, bad_tokens: dict[str, str], method: str, path: str, operation: dict[str, Any]
) -> None:
    required = operation["x-required-role"]
    url = _url(base_url, path, operation)
    if required == PUBLIC:
        answer = _send(method, url, operation, {})
        assert answer.status_code not in (401, 403), answer.text
        return
    wrong: list[str] = []
    answer = _send(method, url, operation, {})
    if answer.status_code != 401:
        wrong.append(f"no token -> {answer.status_code} {answer.text[:200]}")
    for name, token in bad_tokens.items():
        answer = _send(method, url, operation, {"Authorization": f"Bearer {token}"})
        if answer.status_code != 401:
            wrong.append(f"{name} -> {answer.status_code} {answer.text[:200]}")
    for roles in _roles_below(required):
        answer = _send(method, url, operation, {"Authorization": f"Bearer {identity.issue_token(roles)}"})
        if answer.status_code != 403 or answer.json().get("required_role") != required:
            wrong.append(f"roles {list(roles)} -> {answer.status_code} {answer.text[:200]}")
    for role in ROLES[ROLES.index(required) :]:
        answer = _send(method, url, operation, {"Authorization": f"Bearer {identity.issue_token((role,))}"})
        if answer.status_code in (401, 403) or answer.status_code >= 500:
            wrong.append(f"role {role} -> {answer.status_code} {answer.text[:200]}")
    assert wrong == [], f"{method} {path} (needs {required}):\n" + "\n".join(wrong)


def test_unknown_paths_need_a_token_too(base_url: str) -> None:
    assert requests.get(f"{base_url}/api/v2/no-such-thing", timeout=30).status_code == 401
    with_token = ApiCaller("auditor").get(f"{base_url}/api/v2/no-such-thing", timeout=30)
    assert with_token.status_code == 404 and with_token.json()["code"] == "route_not_found"
    assert with_token.headers["Content-Type"] == "application/problem+json"


def test_the_audit_log_names_the_tokens_user_and_ignores_x_staff_user(base_url: str) -> None:
    user = f"e2e-audit-{uuid.uuid4().hex[:8]}@praxisvermittlung.example.de"
    created = ApiCaller("staff", user=user).post(
        f"{base_url}/api/v2/patients",
        json={"first_name": "Ida", "last_name": "Prüfer", "postcode": "10115", "symptoms": ["anxiety"]},
        headers={"X-Staff-User": "mallory@example.org"},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    engine = create_engine(postgres.admin_url())
    try:
        with engine.connect() as connection:
            actors = (
                connection.execute(
                    text(
                        "SELECT actor FROM patient_service.audit_log"
                        " WHERE entity_id = :id AND action = 'create'"
                    ),
                    {"id": created.json()["id"]},
                )
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert actors == [user]


def test_an_unauthenticated_answer_is_the_templates_problem(base_url: str) -> None:
    """The template's UNAUTHORIZED gateway response (problem details, code `unauthorized`,
    application/problem+json, WWW-Authenticate; tests/unit/test_problems.py checks the template
    against the catalogue). LocalStack applies it through the project's plugin
    (gateway_responses.py), AWS by itself."""
    answer = requests.get(f"{base_url}/api/v2/patients", timeout=30)
    assert answer.status_code == 401
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    problem = answer.json()
    assert problem["status"] == 401 and problem["code"] == "unauthorized"
    assert problem["type"] == "https://therapy-platform.example/problems/unauthorized"
    assert problem["gateway_response"] == "UNAUTHORIZED"
    assert problem["request_id"] and not problem["request_id"].startswith("$")
