"""The platform's own HTTP functions: /health, the API documents, the catch-all 404."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support import ROOT, FakeLambdaContext, load_function


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
    assert body["components"]["broker"]["error"] == "ConnectionError: connection refused"
    assert body["components"]["database"]["status"] == "ok"


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


def test_an_unknown_route_gets_the_one_error_shape() -> None:
    handler = load_function("route_not_found")
    response = handler.lambda_handler(_sample("route_not_found", "unknown_route.json"), FakeLambdaContext())
    assert response["statusCode"] == 404
    assert set(json.loads(response["body"])) >= {"error", "message"}
