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

from therapy_platform.platform.problems import FieldError, ProblemType, problem_type

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
    # Serialised here: Powertools serialises dict bodies only for application/json.
    return Response(
        status_code=int(kind.status),
        content_type=PROBLEM_JSON,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str),
        headers=_headers(language),
    )


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
    return {
        "statusCode": int(kind.status),
        "headers": {
            "Content-Type": PROBLEM_JSON,
            "Access-Control-Allow-Origin": allow_origin,
            **_headers(language),
        },
        "body": json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str),
        "isBase64Encoded": False,
    }
