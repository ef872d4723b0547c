"""Helpers shared by the test suites (imported as `support`)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py under a unique module name (every function has an app.py)."""
    module_name = f"function_{name}_app"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


class FakeLambdaContext:
    function_name = "test-function"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:000000000000:function:test-function"
    memory_limit_in_mb = 512
    log_group_name = "/aws/lambda/test-function"
    log_stream_name = "test"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


# The caller api_event's requests come from unless a test says otherwise: a staff member.
STAFF_USER = "staff@team.example"
STAFF = ("staff",)
ADMIN = ("admin",)
AUDITOR = ("auditor",)


def authorizer_context(user: str, roles: tuple[str, ...], display_name: str | None = None) -> dict[str, Any]:
    """`requestContext.authorizer` as API Gateway passes the authorizer's verdict to a function."""
    return {
        "principalId": user,
        "user_id": user,
        "display_name": display_name or user,
        "roles": ",".join(roles),
        "integrationLatency": 3,
    }


def least_roles(method: str, path: str) -> tuple[str, ...]:
    """The lowest role the access policy lets call this concrete request (a route's own tests act
    with just the role the route needs); STAFF for a path the policy does not know."""
    from therapy_platform.contracts.access import ROUTES
    from therapy_platform.platform.rest.access import PUBLIC

    matches = [
        (template.count("{"), role)
        for (route_method, template), role in ROUTES.items()
        if route_method == method.upper()
        and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path.split("?", 1)[0])
    ]
    if not matches:
        return STAFF
    _, role = min(matches)  # /therapists/eligible before /therapists/{therapist_id}
    return () if role == PUBLIC else (role,)


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw_body: str | None = None,
    query: dict[str, str] | None = None,
    user: str | None = STAFF_USER,
    roles: tuple[str, ...] = STAFF,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event as LocalStack and AWS send it, from a caller the
    gateway's authorizer verified (`user` with `roles`; `user=None`: no verified caller), with
    extra request `headers` (If-Match, Idempotency-Key, ...)."""
    payload = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    request_context: dict[str, Any] = {
        "resourcePath": path,
        "httpMethod": method,
        "path": f"/test{path}",
        "stage": "test",
        "requestId": str(uuid.uuid4()),
        "accountId": "000000000000",
        "apiId": "testapi",
        "identity": {"sourceIp": "127.0.0.1"},
    }
    if user is not None:
        request_context["authorizer"] = authorizer_context(user, roles)
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "Host": "localhost", **(headers or {})},
        "multiValueHeaders": {
            "Content-Type": ["application/json"],
            "Host": ["localhost"],
            **{name: [value] for name, value in (headers or {}).items()},
        },
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": request_context,
        "body": payload,
        "isBase64Encoded": False,
    }


PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "errors"})
FIELD_ERROR_MEMBERS = frozenset({"field", "location", "code", "message"})


def assert_problem(response: dict[str, Any]) -> dict[str, Any]:
    """An error answer is RFC 9457 problem details (platform/rest/problems.py): the media type, the
    standard members, a catalogued code whose status and type URI it carries, and field entries
    with a catalogued field code and a message. Returns the parsed body."""
    from therapy_platform.platform.problems import FIELD_ERROR_CODES, PROBLEM_TYPES

    # The resolver answers REST (v1) proxy results: Powertools puts headers in multiValueHeaders.
    headers = {name.lower(): str(value) for name, value in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name.lower(), ",".join(map(str, values)))
    assert headers.get("content-type") == "application/problem+json", headers
    body = json.loads(response["body"])
    assert set(body) >= PROBLEM_MEMBERS, body
    kind = PROBLEM_TYPES[body["code"]]
    assert (body["status"], body["type"]) == (int(response["statusCode"]), kind.type_uri), body
    assert int(kind.status) == body["status"] or kind.code in {"request_rejected", "gateway_error"}, body
    assert isinstance(body["detail"], str) and body["detail"], body
    for entry in body["errors"]:
        assert set(entry) == FIELD_ERROR_MEMBERS, entry
        assert entry["code"] in FIELD_ERROR_CODES and entry["message"], entry
        assert entry["location"] in {"body", "query", "path", "header"}, entry
    return dict(body)


def call(handler: Any, event: dict[str, Any]) -> tuple[int, Any]:
    """Call a handler; every error answer must be problem details (checked here, so every API
    test proves it for the answers it provokes)."""
    response = handler(event, FakeLambdaContext())
    status = int(response["statusCode"])
    if status >= 400:
        return status, assert_problem(response)
    body = response.get("body")
    return status, json.loads(body) if body else None


# PUT/PATCH of these records need If-Match (platform/preconditions.py).
TAGGED_RECORD = re.compile(r"^/api/v2/(patients|therapists|patient-searches)/[0-9a-fA-F-]{36}$")


def with_if_match(method: str, path: str, headers: dict[str, str] | None) -> dict[str, str] | None:
    """A test's write of a record that is not about preconditions: `If-Match: *` (any current
    version; the write still answers its own 404/410). Tests of the precondition send the
    ETag they read (or none), which is kept."""
    if method.upper() not in {"PUT", "PATCH"} or not TAGGED_RECORD.match(path):
        return headers
    if any(name.lower() == "if-match" for name in headers or {}):
        return headers
    return {**(headers or {}), "If-Match": "*"}


def unavailable(reason: str) -> NoReturn:
    """A test needs something this machine lacks (a browser, node, a server feature): skipped on
    a developer machine, a failure under CI (CI=true), so a check cannot silently disappear there."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def run_in_localstack_venv(script: str) -> Any:
    """Run `script` in LocalStack's own virtualenv with the project's LocalStack plugin on the path
    (no server started) and return the JSON its last printed line holds."""
    from localcloud import localstack

    python = localstack.venv_python(localstack.LOCALSTACK_VENV)
    if not python.exists():
        unavailable("LocalStack's virtualenv is not installed (localcloud up installs it)")
    done = subprocess.run(
        [str(python), "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT / "infra" / "localstack_executor"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def chromium() -> str:
    """Debian's headless-capable `chromium`, shared by the email screenshots and Swagger UI tests."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    unavailable("chromium is not installed (infra/scripts/install_chromium.sh installs Debian's package)")


def migrate(engine: Any, action: Any, revision: str) -> None:
    """One Alembic command (`command.downgrade`, `command.stamp`, ...) on `engine`'s database,
    for the tests that take a migration back and forth (`runner.upgrade` brings it up)."""
    from alembic.config import Config

    from runner import HERE

    config = Config()
    config.set_main_option("script_location", str(HERE))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        action(config, revision)
