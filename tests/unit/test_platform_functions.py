"""The platform's own HTTP functions: /health, the API documents, the catch-all 404."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest

from support import ROOT, FakeLambdaContext, assert_problem, load_function
from therapy_platform.platform.rest import swagger_ui


def _sample(function: str, name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / function / name).read_text())  # type: ignore[no-any-return]


def _unavailable() -> None:
    raise ConnectionError("connection refused")


def test_health_is_ok_when_every_dependency_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = load_function("health_api")
    monkeypatch.setattr(handler, "checks", {"database": lambda: None, "bus": lambda: None})
    response = handler.lambda_handler(_sample("health_api", "get_health.json"), FakeLambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 200 and body["status"] == "ok"
    assert set(body["components"]) == {"database", "bus"}


def test_health_names_the_dependency_that_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = load_function("health_api")
    monkeypatch.setattr(handler, "checks", {"database": lambda: None, "broker": _unavailable})
    response = handler.lambda_handler(_sample("health_api", "get_health.json"), FakeLambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 503 and body["status"] == "degraded"
    assert body["components"]["broker"]["status"] == "unavailable"
    assert body["components"]["database"]["status"] == "ok"


def _pg_auth_failure() -> None:
    # How SQLAlchemy wraps pg8000 refusing a password (SQLSTATE 28P01), naming user and host.
    from sqlalchemy.exc import OperationalError

    driver = Exception({"S": "FATAL", "C": "28P01", "M": 'password authentication failed for user "app"'})
    raise OperationalError("SELECT 1 -- db.internal.example:5432", {}, driver)


def _bus_timeout() -> None:
    from botocore.exceptions import ConnectTimeoutError

    raise ConnectTimeoutError(endpoint_url="https://events.internal.example:4566/")


def _broker_gone() -> None:
    try:
        raise ConnectionRefusedError(111, "Connection refused: kafka-1.internal.example:9098")
    except OSError as error:
        raise RuntimeError("KafkaConnectionError: kafka-1.internal.example:9098") from error


def _bus_denied() -> None:
    from botocore.exceptions import ClientError

    raise ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "arn:aws:iam::123456789012:role/x"}},
        "DescribeEventBus",
    )


def _sql_bug() -> None:
    raise ValueError("SELECT secret FROM patient_service.patients WHERE host = 'db.internal.example'")


def test_health_answers_stable_codes_and_keeps_the_detail_in_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    handler = load_function("health_api")
    checks = {
        "database": _pg_auth_failure,
        "bus": _bus_timeout,
        "broker": _broker_gone,
        "denied": _bus_denied,
        "other": _sql_bug,
    }
    monkeypatch.setattr(handler, "checks", checks)
    with caplog.at_level("WARNING"):
        response = handler.lambda_handler(_sample("health_api", "get_health.json"), FakeLambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 503
    assert {name: c["status"] for name, c in body["components"].items()} == {
        "database": "access_denied",
        "bus": "timeout",
        "broker": "unavailable",
        "denied": "access_denied",
        "other": "error",
    }
    assert all(set(component) == {"status", "latency_ms"} for component in body["components"].values())
    # No host, port, user, account or SQL reaches the public answer; operators find it in the log.
    for leak in ("internal.example", "5432", "9098", "4566", "SELECT", "app", "123456789012", "28P01"):
        assert leak not in response["body"], leak
    logged = caplog.text
    assert "db.internal.example" in logged and "kafka-1.internal.example" in logged


def test_the_deployed_health_checks_cover_database_bus_and_broker() -> None:
    assert set(load_function("health_api").checks) == {"database", "bus", "broker"}


def test_the_api_documents_are_served() -> None:
    handler = load_function("api_docs")
    event = _sample("api_docs", "get_openapi.json")
    response = handler.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["openapi"].startswith("3.")
    docs = handler.lambda_handler(_sample("api_docs", "get_docs.json"), FakeLambdaContext())
    assert docs["statusCode"] == 200 and "swagger-ui" in docs["body"]


def _header(response: dict[str, Any], name: str) -> str:
    return str(response["multiValueHeaders"][name][0])


def test_swagger_ui_comes_from_the_shipped_assets_and_loads_nothing_from_elsewhere() -> None:
    handler = load_function("api_docs")
    docs = handler.lambda_handler(_sample("api_docs", "get_docs.json"), FakeLambdaContext())
    page = docs["body"]
    # No CDN, no absolute URL, no inline script or style: the CSP allows this origin only.
    assert "//" not in page.replace("<!doctype html>", "") and "unpkg" not in page
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.DOTALL)
    assert len(scripts) == 2 and all("src=" in tag and not body.strip() for tag, body in scripts)
    assert "<style" not in page and " style=" not in page
    policy = _header(docs, "Content-Security-Policy")
    assert (
        "default-src 'none'" in policy and "script-src 'self';" in policy and "connect-src 'self';" in policy
    )
    assert "unsafe" not in policy and "http" not in policy
    shipped = swagger_ui.ASSET_DIR / "swagger-ui-bundle.min.js"
    asset = handler.lambda_handler(_sample("api_docs", "get_swagger_asset.json"), FakeLambdaContext())
    assert asset["statusCode"] == 200 and asset["body"] == shipped.read_text(encoding="utf-8")
    assert _header(asset, "Content-Type").startswith("text/javascript")
    digest = base64.b64encode(hashlib.sha384(shipped.read_bytes()).digest()).decode()
    assert f'src="docs/swagger-ui-bundle.js" integrity="sha384-{digest}"' in page
    for name in ("swagger-ui.css", "swagger-init.js"):
        assert f'"docs/{name}"' in page
        event = _sample("api_docs", "get_swagger_asset.json")
        event["path"], event["pathParameters"] = f"/api/v2/docs/{name}", {"asset": name}
        served = handler.lambda_handler(event, FakeLambdaContext())
        assert served["statusCode"] == 200 and served["body"], name
    event = _sample("api_docs", "get_swagger_asset.json")
    event["path"], event["pathParameters"] = "/api/v2/docs/secrets.txt", {"asset": "secrets.txt"}
    assert handler.lambda_handler(event, FakeLambdaContext())["statusCode"] == 404


def test_an_unknown_route_gets_the_one_error_shape() -> None:
    handler = load_function("route_not_found")
    response = handler.lambda_handler(_sample("route_not_found", "unknown_route.json"), FakeLambdaContext())
    assert response["statusCode"] == 404
    assert assert_problem(response)["code"] == "route_not_found"
