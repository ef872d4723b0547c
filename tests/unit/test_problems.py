"""Problem details (RFC 9457) everywhere: the code catalogue (platform/problems.py) is complete
and German, every domain error and pydantic error type maps onto it, the OpenAPI document lists
every code, API Gateway's own answers use it (template.yaml), and every route of every API
function answers its errors as `application/problem+json` without echoing what was sent."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import typing
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ValidationError, field_validator
from pydantic_core.core_schema import ErrorType
from samtranslator.yaml_helper import yaml_parse

import therapy_platform
from support import ROOT, FakeLambdaContext, api_event, assert_problem, call, least_roles, load_function
from therapy_platform.contracts.access import API_ACCESS_POLICY, ROUTES
from therapy_platform.platform.errors import DomainError
from therapy_platform.platform.problems import (
    FIELD_ERROR_CODES,
    GATEWAY_PROBLEMS,
    PROBLEM_TYPE_BASE,
    PROBLEM_TYPES,
    FieldError,
    describe_problem,
    gateway_response_template,
)
from therapy_platform.platform.rest.access import PUBLIC
from therapy_platform.platform.rest.problems import (
    PROBLEM_JSON,
    RESOLVER_CODES,
    preferred_language,
    problem_body,
)
from therapy_platform.platform.rest.resolver import create_resolver
from therapy_platform.platform.validation import (
    FALLBACK,
    PYDANTIC_ERRORS,
    FieldRuleError,
    FieldValidationError,
    field_error_from_pydantic,
)

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# A German text: an umlaut or ß, or one of the words the catalogue's German texts are made of
# (a crude check, but an English default such as "Field required" fails it).
GERMAN = re.compile(
    r"[äöüß]|\b(muss|darf|kein|keine|nicht|ein|eine|ungültig\w*|pflichtfeld|unbekannt\w*|zu|"
    r"höchstens|mindestens|erlaubt|zahl|text|liste|objekt|datum|uhrzeit|zeitpunkt|zeitzone|"
    r"adresse|wert|einträge?|format|zeichen|angabe|ziffern|doppelt|stellen|dauer|schlüssel|"
    r"kodierung|verschachtelt|liegt|ort|regel|anfrage|anmeldung|dienst|fehler|gefunden|"
    r"berechtigung|patient|datensatz|erforderlich|blockiert|abgelehnt|empfänger|"
    r"zeitüberschreitung|if-match|der|die|das|dem|den|hat|unter|abgebrochen|massenimport|antwort|unsicher|unlesbare|untersagt|erschöpft)\b",
    re.IGNORECASE,
)


# ---------------------------------------------------------------- the catalogue


def test_every_problem_code_is_stable_snake_case_with_a_status_and_titles() -> None:
    for code, kind in PROBLEM_TYPES.items():
        assert SNAKE.match(code) and kind.code == code, code
        assert 400 <= kind.status <= 599, code
        assert kind.title and kind.description, code
        assert kind.title_de and GERMAN.search(kind.title_de), (code, kind.title_de)
        assert kind.type_uri == PROBLEM_TYPE_BASE + code
    assert set(RESOLVER_CODES) <= set(PROBLEM_TYPES)


def test_every_field_code_has_a_german_message() -> None:
    for code, message in FIELD_ERROR_CODES.items():
        assert SNAKE.match(code), code
        assert message and GERMAN.search(message), (code, message)


def _subclasses(kind: type[DomainError]) -> list[type[DomainError]]:
    found = []
    for sub in kind.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_domain_error_of_the_layer_uses_a_catalogued_code() -> None:
    """Importing every module of the layer finds every DomainError subclass (the composition
    roots need their environment and are skipped; they define no errors)."""
    for module in pkgutil.walk_packages(therapy_platform.__path__, "therapy_platform."):
        if not module.name.endswith(".bootstrap"):
            importlib.import_module(module.name)
    classes: list[type[DomainError]] = [DomainError, *_subclasses(DomainError)]
    assert len(classes) > 15
    for kind in classes:
        assert kind.code in PROBLEM_TYPES, f"{kind.__module__}.{kind.__name__}: {kind.code}"


# ---------------------------------------------------------------- pydantic's errors in German


def test_every_pydantic_error_type_has_a_german_message_and_a_field_code() -> None:
    """A pydantic upgrade that adds an error type fails here, not in front of staff in English."""
    missing = sorted(set(typing.get_args(ErrorType)) - set(PYDANTIC_ERRORS))
    assert missing == [], f"pydantic error types without a German message: {missing}"
    context = {
        "max_length": 3,
        "min_length": 2,
        "gt": 1,
        "ge": 1,
        "lt": 9,
        "le": 9,
        "multiple_of": 2,
        "expected": "'a' or 'b'",
        "max_digits": 4,
        "decimal_places": 2,
        "whole_digits": 2,
    }
    for kind, (code, message) in PYDANTIC_ERRORS.items():
        assert code in FIELD_ERROR_CODES, kind
        text = message(context) if callable(message) else message
        assert text and GERMAN.search(text), (kind, text)
    assert FALLBACK[0] in FIELD_ERROR_CODES


class _Sample(BaseModel):
    name: str
    age: int

    @field_validator("name")
    @classmethod
    def _rule(cls, value: str) -> str:
        if value == "rule":
            raise FieldRuleError("letter_missing", "muss Buchstaben enthalten")
        if value.startswith("Max"):
            raise ValueError(f"{value} is not allowed")  # an English rule that quotes the value
        return value


def _errors(data: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(ValidationError) as raised:
        _Sample.model_validate(data)
    return list(FieldValidationError.from_validation_error(raised.value).errors)


def test_pydantic_errors_become_coded_german_entries_that_never_repeat_the_value() -> None:
    assert _errors({"name": "rule", "age": "Müller"}) == [
        FieldError("name", "body", "letter_missing", "muss Buchstaben enthalten"),
        FieldError("age", "body", "not_an_integer", "muss eine ganze Zahl sein"),
    ]
    [entry] = _errors({"name": "Max Mustermann", "age": 3})
    assert entry == FieldError("name", "body", "invalid", "ungültiger Wert")
    assert _errors({})[0] == FieldError("name", "body", "missing", "Pflichtfeld fehlt")


def test_request_validation_entries_keep_their_location() -> None:
    detail = {"type": "string_too_long", "loc": ("query", "q"), "msg": "...", "ctx": {"max_length": 5}}
    assert field_error_from_pydantic(detail) == FieldError("q", "query", "too_long", "höchstens 5 Zeichen")
    nested = {"type": "missing", "loc": ("body", "members", 0, "outcome"), "msg": "Field required"}
    assert field_error_from_pydantic(nested).field == "members.0.outcome"


# ---------------------------------------------------------------- the body


def test_a_problem_body_has_the_standard_members_and_extensions_never_replace_them() -> None:
    body = problem_body(
        "conflict",
        "search is paused",
        instance="/dev/api/v2/x",
        extensions={"status": "paused", "current_status": "paused"},
    )
    assert body == {
        "type": PROBLEM_TYPE_BASE + "conflict",
        "title": "Conflicts with the current state",
        "status": 409,
        "detail": "search is paused",
        "code": "conflict",
        "errors": [],
        "instance": "/dev/api/v2/x",
        "current_status": "paused",
    }
    assert problem_body("conflict", "x", language="de")["title"] == "Widerspricht dem aktuellen Stand"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("en-US,de;q=0.5", "en"),
        ("fr, de;q=0.1", "de"),
        ("de;q=0, en", "en"),
        ("*", "en"),
    ],
)
def test_titles_follow_accept_language(header: str | None, language: str) -> None:
    assert preferred_language(header) == language


def test_a_problem_reads_as_one_line_for_operators() -> None:
    body = problem_body(
        "validation_failed",
        "invalid or missing fields: email",
        errors=[FieldError("email", "body", "missing", "Pflichtfeld fehlt")],
    )
    assert describe_problem(body) == (
        "422 validation_failed (Invalid or missing fields): invalid or missing fields: email "
        "[email: Pflichtfeld fehlt]"
    )
    assert describe_problem({"message": "Unauthorized"}) == "{'message': 'Unauthorized'}"


# ---------------------------------------------------------------- the OpenAPI document


def test_the_openapi_document_lists_every_code() -> None:
    document = json.loads((ROOT / "functions" / "api_docs" / "openapi.json").read_text())
    api_codes = [kind.code for kind in PROBLEM_TYPES.values() if kind.api]
    listed = {entry["code"]: entry for entry in document["x-problem-codes"]}
    assert list(listed) == api_codes
    for code, entry in listed.items():
        kind = PROBLEM_TYPES[code]
        assert (entry["status"], entry["type"], entry["title_de"]) == (
            int(kind.status),
            kind.type_uri,
            kind.title_de,
        )
    assert [entry["code"] for entry in document["x-field-error-codes"]] == list(FIELD_ERROR_CODES)
    schemas = document["components"]["schemas"]
    assert schemas["Problem"]["properties"]["code"]["enum"] == api_codes
    assert schemas["FieldError"]["properties"]["code"]["enum"] == list(FIELD_ERROR_CODES)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {status: answer for status, answer in operation["responses"].items() if status >= "400"}
            assert errors, (method, path)
            if path == "/health":  # its 503 is the health report naming the failing component
                assert operation["responses"]["503"]["content"] == operation["responses"]["200"]["content"]
                errors.pop("503")
            for answer in errors.values():
                assert answer["content"] == {
                    PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                }


# ---------------------------------------------------------------- API Gateway's own answers


@cache
def _gateway_responses() -> dict[str, Any]:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    return dict(template["Resources"]["Api"]["Properties"]["GatewayResponses"])


def _render(template: str) -> dict[str, Any]:
    """The body API Gateway sends: its variables replaced the way it replaces them."""
    rendered = (
        template.replace("$context.error.messageString", json.dumps('Internal "server" error'))
        .replace("$context.error.responseType", "DEFAULT_4XX")
        .replace("$context.requestId", "c0ffee")
    )
    assert "$" not in rendered, rendered
    return dict(json.loads(rendered))


def test_every_gateway_response_is_problem_details_from_the_catalogue() -> None:
    responses = _gateway_responses()
    assert set(responses) == set(GATEWAY_PROBLEMS)
    for name, gateway in GATEWAY_PROBLEMS.items():
        response = responses[name]
        assert response["StatusCode"] == str(int(gateway.status)), name
        headers = response["ResponseParameters"]["Headers"]
        assert headers["Content-Type"] == f"'{PROBLEM_JSON}'", name
        template = response["ResponseTemplates"]["application/json"]
        assert template == gateway_response_template(name), f"{name}: regenerate from GATEWAY_PROBLEMS"
        body = _render(template)
        fake = {
            "statusCode": int(gateway.status),
            "headers": {"Content-Type": PROBLEM_JSON},
            "body": json.dumps(body),
        }
        assert assert_problem(fake)["code"] == gateway.code
        assert body["request_id"] == "c0ffee" and body["gateway_response"] in {name, "DEFAULT_4XX"}
    assert responses["UNAUTHORIZED"]["ResponseParameters"]["Headers"]["WWW-Authenticate"] == "'Bearer'"


# ---------------------------------------------------------------- every route of every function

MARKER = "Zzmustermann"  # stands for a name: it must come back nowhere in an error


@cache
def _function_of_routes() -> dict[tuple[str, str], str]:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                properties = event["Properties"]
                found[(properties["Method"].upper(), properties["Path"])] = Path(
                    resource["Properties"]["CodeUri"]
                ).name
    return found


ROUTE_CASES = sorted(route for route in ROUTES if route in _function_of_routes())


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "10115" if m.group(0) == "{postcode}" else MARKER, path)


@pytest.mark.parametrize(("method", "path"), ROUTE_CASES)
def test_every_route_answers_its_errors_as_problem_details(method: str, path: str) -> None:
    """Through the deployed handler (real services, no database to reach): without a caller, with
    a path parameter, body and query parameter no route accepts. Each answer is checked by
    `support.call` (problem+json, catalogued code, coded field entries) and may name fields, never
    the value sent."""
    handler = load_function(_function_of_routes()[(method, path)]).lambda_handler
    target = _concrete(path)
    body = {MARKER.lower(): MARKER} if method in {"POST", "PUT", "PATCH"} else None
    if ROUTES[(method, path)] != PUBLIC:
        status, answer = call(handler, api_event(method, target, body, user=None))
        assert (status, answer["code"]) == (401, "unauthorized")
    event = api_event(method, target, body, query={"zz_unknown": MARKER}, roles=least_roles(method, target))
    status, answer = call(handler, event)
    assert status in {400, 404, 422}, (status, answer)
    if status == 422:
        assert answer["errors"], answer
        assert {entry["location"] for entry in answer["errors"]} <= {"body", "query", "path"}
    leaked = {key: value for key, value in answer.items() if key != "instance"}  # instance: the path
    assert MARKER not in json.dumps(leaked, ensure_ascii=False), answer


def test_an_unexpected_error_is_a_problem_that_says_nothing_internal() -> None:
    app = create_resolver(Logger(service="test"), access=API_ACCESS_POLICY)

    @app.get("/health")
    def _broken() -> dict[str, Any]:
        raise RuntimeError(f"secret {MARKER}")

    response = app.resolve(api_event("GET", "/health", user=None), FakeLambdaContext())  # type: ignore[arg-type]
    body = assert_problem(response)
    assert (body["status"], body["code"]) == (500, "internal_error") and MARKER not in response["body"]
    assert body["request_id"]


def test_localcloud_invoke_shows_an_api_functions_problem_in_one_line() -> None:
    from localcloud.cli import api_problem

    body = problem_body(
        "validation_failed",
        "invalid or missing fields: postcode",
        errors=[FieldError("postcode", "body", "pattern_mismatch", "hat nicht das erwartete Format")],
    )
    payload = {"statusCode": 422, "body": json.dumps(body)}
    assert api_problem(payload) == (
        "422 validation_failed (Invalid or missing fields): invalid or missing fields: postcode "
        "[postcode: hat nicht das erwartete Format]"
    )
    assert api_problem({"statusCode": 200, "body": "{}"}) is None
    assert api_problem({"statusCode": 502, "body": "not json"}) is None
    assert api_problem("a job's result") is None
