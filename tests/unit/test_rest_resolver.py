"""The shared resolver's guards, which every API function gets: media type, undecodable bodies,
text no database can store, and the actor recorded in audit logs (the verified token's user,
never a header)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from support import FakeLambdaContext, api_event
from therapy_platform.contracts.access import AUDITOR, ROLES, STAFF
from therapy_platform.platform.rest.access import AccessPolicy
from therapy_platform.platform.rest.resolver import create_resolver, current_actor


class Note(BaseModel):
    text: str
    tags: list[str] = []


app = create_resolver(
    Logger(service="test"),
    access=AccessPolicy(roles=ROLES, routes={("POST", "/notes"): STAFF, ("GET", "/notes"): AUDITOR}),
)


@app.post("/notes")
def add_note(note: Note) -> dict[str, Any]:
    return {"stored": note.text, "actor": current_actor(app)}


@app.get("/notes")
def find_notes(q: str = "") -> dict[str, Any]:
    return {"q": q}


def _call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.resolve(event, FakeLambdaContext())  # type: ignore[arg-type]
    return int(response["statusCode"]), json.loads(response["body"])


def test_valid_json_passes_and_the_actor_comes_from_the_verified_token() -> None:
    event = api_event("POST", "/notes", {"text": "Rückruf bitte"}, user="anna@example.de")
    assert _call(event) == (200, {"stored": "Rückruf bitte", "actor": "anna@example.de"})


def test_the_x_staff_user_header_no_longer_changes_the_actor() -> None:
    event = api_event("POST", "/notes", {"text": "x"}, user="anna@example.de")
    event["headers"]["X-Staff-User"] = "mallory@example.de"
    event["multiValueHeaders"]["X-Staff-User"] = ["mallory@example.de"]
    assert _call(event) == (200, {"stored": "x", "actor": "anna@example.de"})


@pytest.mark.parametrize(
    "media_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"]
)
def test_other_media_types_get_415(media_type: str) -> None:
    event = api_event("POST", "/notes", {"text": "x"})
    event["headers"]["Content-Type"] = media_type
    status, body = _call(event)
    assert status == 415 and body["code"] == "unsupported_media_type" and media_type in body["detail"]


def test_undecodable_bodies_get_400() -> None:
    event = api_event("POST", "/notes", raw_body=base64.b64encode(b"\xff\xfe{").decode())
    event["isBase64Encoded"] = True
    status, body = _call(event)
    assert status == 400 and body["code"] == "malformed_json"


@given(
    prefix=st.text(max_size=5).filter(lambda t: "\x00" not in t),
    bad=st.sampled_from(["\x00", "\ud800", "\udfff"]),
    where=st.sampled_from(["text", "tags"]),
)
def test_text_no_database_can_store_is_refused_naming_the_field(prefix: str, bad: str, where: str) -> None:
    body: dict[str, Any] = {"text": "ok", "tags": ["a"]}
    if where == "text":
        body["text"] = prefix + bad
        field = "text"
    else:
        body["tags"] = ["a", prefix + bad]
        field = "tags.1"
    status, answer = _call(api_event("POST", "/notes", raw_body=json.dumps(body)))
    assert status == 422
    assert [entry["field"] for entry in answer["errors"]] == [field]


def test_nul_in_a_query_parameter_is_refused() -> None:
    status, answer = _call(api_event("GET", "/notes", query={"q": "Mül\x00ler"}))
    assert status == 422 and answer["errors"][0] == {
        "field": "q",
        "location": "query",
        "code": "invalid_text",
        "message": "enthält ein NUL-Zeichen oder ungültiges Unicode",
    }


def test_every_route_refuses_query_parameters_it_does_not_declare() -> None:
    assert _call(api_event("GET", "/notes", query={"q": "x"})) == (200, {"q": "x"})
    status, body = _call(api_event("GET", "/notes", query={"q": "x", "qq": "typo", "limit": "5"}))
    assert status == 422 and body["code"] == "validation_failed"
    assert [field["field"] for field in body["errors"]] == ["limit", "qq"]
    assert {field["location"] for field in body["errors"]} == {"query"}
    status, body = _call(api_event("POST", "/notes", {"text": "x"}, query={"debug": "1"}))
    assert status == 422 and [field["field"] for field in body["errors"]] == ["debug"]


def test_readable_local_logs_never_turn_on_the_resolvers_debug_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # Powertools' debug mode (on with POWERTOOLS_DEV) prints every request, body and token included.
    monkeypatch.setenv("POWERTOOLS_DEV", "true")
    resolver = create_resolver(Logger(service="test"), access=AccessPolicy(roles=ROLES, routes={}))
    assert resolver._debug is False
