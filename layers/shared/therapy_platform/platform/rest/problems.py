"""Problem details answers (RFC 9457, `application/problem+json`), the one error shape of every
route. A body has the standard members `type` (the code's URI), `title`, `status`, `detail`,
`instance` (the request path, never its query string), and the platform's `code` (the stable
machine code, platform/problems.py) and `errors` (one entry per field: `field`, `location`,
`code`, German `message`; empty when no field is involved). Anything else a problem carries
(e.g. `required_role`, `current_status`) is an extension member beside them; it can never replace
a standard member.

Languages: `title` follows the request's Accept-Language (German when the caller prefers `de`,
else English; `Content-Language` says which), as RFC 9457 allows for titles; `detail` is English
for developers and logs; `errors[].message` is always German, for staff."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from aws_lambda_powertools.event_handler import Response

from therapy_platform.platform.problems import (
    FIELD_ERROR_CODES,
    LOCATIONS,
    PROBLEM_TYPE_BASE,
    PROBLEM_TYPES,
    FieldError,
    ProblemType,
    problem_type,
)

PROBLEM_JSON: Final = "application/problem+json"
STANDARD_MEMBERS: Final = frozenset({"type", "title", "status", "detail", "instance", "code", "errors"})

Language = Literal["de", "en"]


def preferred_language(accept_language: str | None) -> Language:
    """`de` when the caller ranks German above English (Accept-Language q-values; on a tie the
    one listed first), else `en`."""
    best: tuple[float, int, Language] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        if primary not in {"de", "en"}:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        language: Language = "de" if primary == "de" else "en"
        candidate = (-quality, position, language)
        if best is None or candidate < best:
            best = candidate
    return best[2] if best else "en"


def _header(event: Mapping[str, Any], name: str) -> str | None:
    headers = event.get("headers") or {}
    return next((str(value) for key, value in headers.items() if key.lower() == name), None)


def request_language(event: Mapping[str, Any] | None) -> Language:
    return preferred_language(_header(event, "accept-language")) if event else "en"


def request_instance(event: Mapping[str, Any] | None) -> str | None:
    """The path the client called (with the stage, as API Gateway's own answers give it); never
    the query string, which may hold search terms such as a name."""
    if not event:
        return None
    context = event.get("requestContext") or {}
    path = context.get("path") or event.get("path")
    return str(path) if path else None


def problem_body(
    problem: ProblemType | str,
    detail: str,
    *,
    instance: str | None = None,
    language: Language = "en",
    errors: Sequence[FieldError] = (),
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    kind = problem if isinstance(problem, ProblemType) else problem_type(problem)
    body: dict[str, Any] = {
        name: value for name, value in (extensions or {}).items() if name not in STANDARD_MEMBERS
    }
    body.update(
        type=kind.type_uri,
        title=kind.title_in(language),
        status=int(kind.status),
        detail=detail,
        code=kind.code,
        errors=[error.as_json() for error in errors],
    )
    if instance:
        body["instance"] = instance
    return body


def _headers(language: Language) -> dict[str, str]:
    return {"Content-Language": language, "Vary": "Accept-Language"}


def problem_response(
    problem: ProblemType | str,
    detail: str,
    /,
    *,
    event: Mapping[str, Any] | None,
    errors: Sequence[FieldError] = (),
    **extensions: Any,
) -> Response[str]:
    """The answer for a route (the resolver adds CORS). Positional-only: a problem's extension
    members may well be called `status` or `detail` (they are dropped, never mixed in)."""
    kind, language, body = _rendered(problem, detail, event, errors, extensions)
    return Response(
        status_code=int(kind.status),
        content_type=PROBLEM_JSON,
        body=body,
        headers=_headers(language),
    )


def _rendered(
    problem: ProblemType | str,
    detail: str,
    event: Mapping[str, Any] | None,
    errors: Sequence[FieldError],
    extensions: Mapping[str, Any],
) -> tuple[ProblemType, Language, str]:
    """The problem's type, the answer's language and its serialised body. Serialised here:
    Powertools serialises dict bodies only for application/json."""
    language = request_language(event)
    kind = problem if isinstance(problem, ProblemType) else problem_type(problem)
    body = problem_body(
        kind,
        detail,
        instance=request_instance(event),
        language=language,
        errors=errors,
        extensions=extensions,
    )
    return kind, language, json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)


def raw_problem_response(
    problem: ProblemType | str,
    detail: str,
    /,
    *,
    event: Mapping[str, Any],
    allow_origin: str,
    errors: Sequence[FieldError] = (),
    **extensions: Any,
) -> dict[str, Any]:
    """The same answer as a Lambda proxy result, for checks that run before the framework."""
    kind, language, body = _rendered(problem, detail, event, errors, extensions)
    return {
        "statusCode": int(kind.status),
        "headers": {
            "Content-Type": PROBLEM_JSON,
            "Access-Control-Allow-Origin": allow_origin,
            **_headers(language),
        },
        "body": body,
        "isBase64Encoded": False,
    }


# --- the OpenAPI description ------------------------------------------------------------------

# Codes any route can answer with, whatever it does: the resolver's checks and its last resort.
# A route adds the codes of its domain errors (not derivable cheaply: they are raised in use
# cases), so the OpenAPI document lists every API code per status (`problem_codes_by_status`).
RESOLVER_CODES: Final = (
    "unauthorized",
    "forbidden",
    "malformed_json",
    "unsupported_media_type",
    "validation_failed",
    "internal_error",
)


def problem_codes_by_status() -> dict[int, list[str]]:
    """Every code a route or API Gateway can answer with, grouped by HTTP status."""
    grouped: dict[int, list[str]] = {}
    for kind in PROBLEM_TYPES.values():
        if kind.api:
            grouped.setdefault(int(kind.status), []).append(kind.code)
    return dict(sorted(grouped.items()))


def problem_catalogue() -> list[dict[str, Any]]:
    """`x-problem-codes` of the OpenAPI document: every code a client can meet, with its type URI,
    status and titles (what a frontend needs to map a code to a German text)."""
    return [
        {
            "code": kind.code,
            "type": kind.type_uri,
            "status": int(kind.status),
            "title": kind.title,
            "title_de": kind.title_de,
            "description": kind.description,
        }
        for kind in PROBLEM_TYPES.values()
        if kind.api
    ]


def field_error_catalogue() -> list[dict[str, str]]:
    """`x-field-error-codes` of the OpenAPI document: every `errors[].code` with its German meaning."""
    return [{"code": code, "message_de": message} for code, message in FIELD_ERROR_CODES.items()]


def problem_schemas() -> dict[str, Any]:
    """`Problem` and `FieldError` (JSON Schema for OpenAPI 3.1 components)."""
    api_codes = [kind.code for kind in PROBLEM_TYPES.values() if kind.api]
    return {
        "FieldError": {
            "title": "FieldError",
            "type": "object",
            "description": "One offending field. Never repeats the value that was sent.",
            "required": ["field", "location", "code", "message"],
            "properties": {
                "field": {
                    "type": "string",
                    "description": "The field's name; nested fields and list items joined by dots "
                    "(`members.0.outcome`); the location itself (`body`) for the whole body.",
                },
                "location": {"type": "string", "enum": list(LOCATIONS)},
                "code": {
                    "type": "string",
                    "enum": list(FIELD_ERROR_CODES),
                    "description": "Stable machine code (x-field-error-codes lists their German meaning).",
                },
                "message": {"type": "string", "description": "What is wrong, in German, for staff."},
            },
        },
        "Problem": {
            "title": "Problem",
            "type": "object",
            "description": "RFC 9457 problem details (`application/problem+json`), the one error shape "
            "of every route and of API Gateway's own answers. Further members (e.g. `required_role`, "
            "`current_status`, `erased_at`) depend on the code.",
            "required": ["type", "title", "status", "detail", "code", "errors"],
            "properties": {
                "type": {
                    "type": "string",
                    "format": "uri",
                    "description": f"`{PROBLEM_TYPE_BASE}<code>`: identifies the code (x-problem-codes)",
                },
                "title": {
                    "type": "string",
                    "description": "The code's short title: German when Accept-Language prefers de, "
                    "else English",
                },
                "status": {"type": "integer", "description": "The HTTP status code"},
                "detail": {
                    "type": "string",
                    "description": "This occurrence, in English, for developers and logs (ids and "
                    "states, never personal data)",
                },
                "instance": {"type": "string", "description": "The path that was called (no query)"},
                "code": {"type": "string", "enum": api_codes, "description": "Stable machine code"},
                "errors": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/FieldError"},
                    "description": "One entry per offending field; empty when no field is involved",
                },
                "required_role": {"type": "string", "description": "With forbidden: the role needed"},
                "header": {
                    "type": "string",
                    "description": "With idempotency_key_reused and idempotency_key_in_use: the header "
                    "concerned",
                },
                "request_id": {
                    "type": "string",
                    "description": "With internal_error and API Gateway's answers: the id the logs carry",
                },
                "gateway_response": {
                    "type": "string",
                    "description": "With API Gateway's own answers: its response type",
                },
            },
        },
    }
