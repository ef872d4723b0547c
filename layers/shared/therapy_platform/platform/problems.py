"""The catalogue of every problem the platform can answer with (RFC 9457 problem details): one
entry per stable machine code with its HTTP status, an English and a German title and when it
happens; and the catalogue of the codes a field can fail with (`errors[].code`), each with a
German description. The REST resolver, API Gateway's own answers (template.yaml), the OpenAPI
document, the bulk load and `localcloud` all read these tables, so a code means the same
everywhere.

A problem's `type` is `https://therapy-platform.example/problems/<code>`: an identifier, stable
across deployments and environments (the `.example` domain is reserved, RFC 2606, so it can never
name someone else's page); the OpenAPI document (`x-problem-types`) documents each one.

Nothing here names a service's module: service-specific codes are plain strings, registered here
so the whole list lives in one place (`tests/unit/test_problems.py` proves every DomainError
subclass of the layer uses a registered code)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final, Literal

PROBLEM_TYPE_BASE: Final = "https://therapy-platform.example/problems/"

Location = Literal["body", "query", "path", "header"]
LOCATIONS: Final[tuple[Location, ...]] = ("body", "query", "path", "header")


@dataclass(frozen=True)
class ProblemType:
    """One kind of problem. `api`: False for problems only jobs and tools meet (the scraper's,
    the bulk load's); they are catalogued for completeness but no route answers with them."""

    code: str
    status: HTTPStatus
    title: str
    title_de: str
    description: str
    api: bool = True

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.code

    def title_in(self, language: str) -> str:
        return self.title_de if language == "de" else self.title


def _by_code(types: Iterable[ProblemType]) -> dict[str, ProblemType]:
    catalogue: dict[str, ProblemType] = {}
    for problem in types:
        if problem.code in catalogue:
            raise ValueError(f"problem code {problem.code} is catalogued twice")
        catalogue[problem.code] = problem
    return catalogue


_S = HTTPStatus
PROBLEM_TYPES: Final[Mapping[str, ProblemType]] = _by_code(
    [
        # --- the request itself (the resolver) ---------------------------------------------------
        ProblemType(
            "malformed_json",
            _S.BAD_REQUEST,
            "Malformed JSON body",
            "Ungültiges JSON",
            "The body is not valid UTF-8 JSON.",
        ),
        ProblemType(
            "unsupported_media_type",
            _S.UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            "Nicht unterstütztes Format",
            "Bodies are JSON only (Content-Type: application/json).",
        ),
        ProblemType(
            "validation_failed",
            _S.UNPROCESSABLE_ENTITY,
            "Invalid or missing fields",
            "Ungültige oder fehlende Angaben",
            "Fields (body, query or path) are missing, invalid, unknown or break a rule; `errors` "
            "names each one with a code and a German message.",
        ),
        ProblemType(
            "unauthorized",
            _S.UNAUTHORIZED,
            "Authentication required",
            "Anmeldung erforderlich",
            "No valid bearer token: missing, expired, not yet valid, wrong issuer or audience, bad "
            "signature.",
        ),
        ProblemType(
            "forbidden",
            _S.FORBIDDEN,
            "Forbidden",
            "Keine Berechtigung",
            "The caller's roles do not include the role the operation needs (`required_role`), or "
            "the operation is not in the access policy.",
        ),
        ProblemType(
            "route_not_found",
            _S.NOT_FOUND,
            "No such route",
            "Unbekannte Adresse",
            "No operation has this method and path.",
        ),
        ProblemType(
            "internal_error",
            _S.INTERNAL_SERVER_ERROR,
            "Internal error",
            "Interner Fehler",
            "A bug, never bad input; it is logged under `request_id`.",
        ),
        # --- API Gateway's own answers (template.yaml GatewayResponses) -------------------------
        ProblemType(
            "too_many_requests",
            _S.TOO_MANY_REQUESTS,
            "Too many requests",
            "Zu viele Anfragen",
            "The stage's (or the operation's) request rate was exceeded; try again shortly.",
        ),
        ProblemType(
            "request_blocked",
            _S.FORBIDDEN,
            "Request blocked",
            "Anfrage blockiert",
            "The web application firewall blocked the client address (too many requests from it).",
        ),
        ProblemType(
            "request_too_large",
            _S.REQUEST_ENTITY_TOO_LARGE,
            "Request too large",
            "Anfrage zu groß",
            "The request is larger than API Gateway accepts (10 MB).",
        ),
        ProblemType(
            "request_rejected",
            _S.BAD_REQUEST,
            "Request rejected",
            "Anfrage abgelehnt",
            "API Gateway refused the request before any function saw it; `gateway_response` names "
            "API Gateway's reason.",
        ),
        ProblemType(
            "authorizer_error",
            _S.INTERNAL_SERVER_ERROR,
            "Sign-in check failed",
            "Anmeldeprüfung fehlgeschlagen",
            "The token could not be checked (the authorizer failed or the identity provider's keys "
            "could not be read); retry later.",
        ),
        ProblemType(
            "gateway_timeout",
            _S.GATEWAY_TIMEOUT,
            "Gateway timeout",
            "Zeitüberschreitung",
            "The operation did not answer in time (API Gateway waits at most 29 s); retry later.",
        ),
        ProblemType(
            "gateway_error",
            _S.BAD_GATEWAY,
            "Gateway error",
            "Fehler am API-Gateway",
            "API Gateway got no usable answer from the operation (it crashed or is misconfigured); "
            "`gateway_response` names API Gateway's reason.",
        ),
        # --- domain errors (platform/errors.py and the services' subclasses) --------------------
        ProblemType(
            "domain_error",
            _S.BAD_REQUEST,
            "Request refused",
            "Anfrage abgelehnt",
            "The domain refused the request (a rule without a more specific code).",
        ),
        ProblemType(
            "bad_request",
            _S.BAD_REQUEST,
            "Request contradicts its target",
            "Anfrage passt nicht zum Datensatz",
            "The request contradicts what it refers to, e.g. a response that does not list exactly "
            "the bundle's members (`missing`, `extra`).",
        ),
        ProblemType(
            "internal_call_failed",
            _S.BAD_GATEWAY,
            "Another service did not answer",
            "Ein anderer Dienst antwortet nicht",
            "The operation needs an answer from another service of the platform (e.g. its part "
            "of a personal-data export), which failed; nothing was changed, retry later.",
        ),
        ProblemType(
            "not_found",
            _S.NOT_FOUND,
            "Not found",
            "Nicht gefunden",
            "The record does not exist (or is not known to this service yet).",
        ),
        ProblemType(
            "gone",
            _S.GONE,
            "Gone",
            "Nicht mehr vorhanden",
            "The record existed but is gone for good.",
        ),
        ProblemType(
            "patient_erased",
            _S.GONE,
            "Patient erased",
            "Patient gelöscht",
            "The patient's personal data was erased (GDPR); `erased_at` says when.",
        ),
        ProblemType(
            "conflict",
            _S.CONFLICT,
            "Conflicts with the current state",
            "Widerspricht dem aktuellen Stand",
            "The request is valid but clashes with the record's current state (e.g. "
            "`current_status`, `requested_status`).",
        ),
        ProblemType(
            "idempotency_key_reused",
            _S.CONFLICT,
            "Idempotency key reused",
            "Idempotenzschlüssel bereits verwendet",
            "The `Idempotency-Key` was sent before with a different request (path, query or body); "
            "use a new key for a new request (`header`).",
        ),
        ProblemType(
            "idempotency_key_in_use",
            _S.CONFLICT,
            "Idempotency key in use",
            "Idempotenzschlüssel in Bearbeitung",
            "The first request with this `Idempotency-Key` is still running; retry shortly (`header`).",
        ),
        ProblemType(
            "precondition_failed",
            _S.PRECONDITION_FAILED,
            "Record changed meanwhile",
            "Datensatz wurde inzwischen geändert",
            "`If-Match` names a version (ETag) that is no longer current: someone else changed the "
            "record; read it again and repeat the change.",
        ),
        ProblemType(
            "precondition_required",
            _S.PRECONDITION_REQUIRED,
            "If-Match required",
            "If-Match erforderlich",
            "A change to this record needs the `If-Match` header with the version (ETag) it was read at.",
        ),
        ProblemType(
            "invalid_input",
            _S.UNPROCESSABLE_ENTITY,
            "Breaks a business rule",
            "Verstößt gegen eine Regel",
            "The input passed the schema but breaks a business rule (e.g. a patient who cannot be "
            "searched for yet: `problems`).",
        ),
        ProblemType(
            "unknown_location",
            _S.UNPROCESSABLE_ENTITY,
            "Location unknown",
            "Ort unbekannt",
            "A distance was asked for a place that cannot be located; `sides` and `errors` name it.",
        ),
        ProblemType(
            "recipient_unknown",
            _S.NOT_FOUND,
            "Recipient unknown",
            "Empfänger unbekannt",
            "The email's recipient is not known to the communication service (yet).",
        ),
        ProblemType(
            "recipient_unreachable",
            _S.CONFLICT,
            "Recipient unreachable",
            "Empfänger nicht erreichbar",
            "The recipient was erased or has no email address (`reason`), or the idempotency key was "
            "used for another recipient.",
        ),
        ProblemType(
            "dependency_unavailable",
            _S.SERVICE_UNAVAILABLE,
            "Service unavailable",
            "Dienst nicht erreichbar",
            "A backing service (database, bus, storage) cannot be reached; retry later.",
        ),
        ProblemType(
            "geocoder_unavailable",
            _S.SERVICE_UNAVAILABLE,
            "Geocoder unavailable",
            "Geokodierung nicht erreichbar",
            "The geocoder (Nominatim) did not answer usefully; retry later.",
        ),
        # --- jobs and tools only ----------------------------------------------------------------
        ProblemType(
            "bulk_load_interrupted",
            _S.SERVICE_UNAVAILABLE,
            "Bulk load interrupted",
            "Massenimport abgebrochen",
            "A bulk load stopped part-way (the database went away).",
            api=False,
        ),
        ProblemType(
            "budget_exhausted",
            _S.SERVICE_UNAVAILABLE,
            "Request budget exhausted",
            "Anfragekontingent erschöpft",
            "A directory scraping run reached its request or time cap.",
            api=False,
        ),
        ProblemType(
            "robots_disallowed",
            _S.FORBIDDEN,
            "Disallowed by robots.txt",
            "Durch robots.txt untersagt",
            "robots.txt of a host does not allow the scraper this path.",
            api=False,
        ),
        ProblemType(
            "malformed_answer",
            _S.BAD_GATEWAY,
            "Malformed answer",
            "Unlesbare Antwort",
            "The directory answered with something that is not JSON.",
            api=False,
        ),
        ProblemType(
            "unsafe_address",
            _S.UNPROCESSABLE_ENTITY,
            "Unsafe address",
            "Unsichere Adresse",
            "A URL the scraper must not fetch (scheme, port or address of no public website).",
            api=False,
        ),
    ]
)


def problem_type(code: str) -> ProblemType:
    """The catalogued type of `code`; KeyError names an uncatalogued code."""
    try:
        return PROBLEM_TYPES[code]
    except KeyError:
        raise KeyError(f"problem code {code!r} is not in platform/problems.py") from None


# --- API Gateway's own answers ---------------------------------------------------------------


@dataclass(frozen=True)
class GatewayProblem:
    """How API Gateway answers one of its response types (template.yaml `GatewayResponses`, checked
    against this table by tests/unit/test_problems.py). `detail` None: API Gateway's own message
    (`$context.error.messageString`, already a quoted JSON string; it never holds request data)."""

    code: str
    status: HTTPStatus
    detail: str | None


# Every response type API Gateway (REST) has, so none answers in its own shape. DEFAULT_4XX and
# DEFAULT_5XX only catch types AWS may add later; they carry a fixed status so the body's
# `status` always matches the status line.
GATEWAY_PROBLEMS: Final[Mapping[str, GatewayProblem]] = {
    "UNAUTHORIZED": GatewayProblem("unauthorized", _S.UNAUTHORIZED, "a valid bearer token is required"),
    "ACCESS_DENIED": GatewayProblem("forbidden", _S.FORBIDDEN, "the token does not allow this request"),
    "EXPIRED_TOKEN": GatewayProblem("forbidden", _S.FORBIDDEN, "the request signature has expired"),
    "INVALID_SIGNATURE": GatewayProblem("forbidden", _S.FORBIDDEN, "the request signature is invalid"),
    "INVALID_API_KEY": GatewayProblem("forbidden", _S.FORBIDDEN, "the API key is invalid"),
    # API Gateway answers a path (or method) it does not know with 403 "Missing Authentication
    # Token"; it is an unknown route, so 404.
    "MISSING_AUTHENTICATION_TOKEN": GatewayProblem(
        "route_not_found", _S.NOT_FOUND, "no operation answers this method on this path"
    ),
    "RESOURCE_NOT_FOUND": GatewayProblem("route_not_found", _S.NOT_FOUND, "no such resource"),
    "THROTTLED": GatewayProblem(
        "too_many_requests", _S.TOO_MANY_REQUESTS, "too many requests: try again shortly"
    ),
    "QUOTA_EXCEEDED": GatewayProblem(
        "too_many_requests", _S.TOO_MANY_REQUESTS, "the request quota is used up"
    ),
    "WAF_FILTERED": GatewayProblem(
        "request_blocked",
        _S.FORBIDDEN,
        "blocked by the web application firewall (too many requests from this address?)",
    ),
    "REQUEST_TOO_LARGE": GatewayProblem(
        "request_too_large", _S.REQUEST_ENTITY_TOO_LARGE, "the request is larger than 10 MB"
    ),
    "UNSUPPORTED_MEDIA_TYPE": GatewayProblem(
        "unsupported_media_type", _S.UNSUPPORTED_MEDIA_TYPE, "send the body as JSON (application/json)"
    ),
    "BAD_REQUEST_BODY": GatewayProblem("request_rejected", _S.BAD_REQUEST, None),
    "BAD_REQUEST_PARAMETERS": GatewayProblem("request_rejected", _S.BAD_REQUEST, None),
    "DEFAULT_4XX": GatewayProblem("request_rejected", _S.BAD_REQUEST, None),
    "AUTHORIZER_FAILURE": GatewayProblem(
        "authorizer_error", _S.INTERNAL_SERVER_ERROR, "the bearer token could not be checked; retry later"
    ),
    "AUTHORIZER_CONFIGURATION_ERROR": GatewayProblem(
        "authorizer_error", _S.INTERNAL_SERVER_ERROR, "the bearer token could not be checked; retry later"
    ),
    "INTEGRATION_TIMEOUT": GatewayProblem(
        "gateway_timeout", _S.GATEWAY_TIMEOUT, "the operation did not answer in time; retry later"
    ),
    "INTEGRATION_FAILURE": GatewayProblem(
        "gateway_timeout", _S.GATEWAY_TIMEOUT, "the operation could not be reached; retry later"
    ),
    "API_CONFIGURATION_ERROR": GatewayProblem("gateway_error", _S.BAD_GATEWAY, None),
    "DEFAULT_5XX": GatewayProblem("gateway_error", _S.BAD_GATEWAY, None),
}


def gateway_response_template(response_type: str) -> str:
    """The `application/json` body template (VTL) of one gateway response: the same members as
    every problem (English title: API Gateway cannot negotiate), plus `gateway_response` and
    `request_id`. Nothing from the request goes in (no path, no headers)."""
    gateway = GATEWAY_PROBLEMS[response_type]
    kind = problem_type(gateway.code)
    detail = "$context.error.messageString" if gateway.detail is None else json.dumps(gateway.detail)
    named = "$context.error.responseType" if response_type.startswith("DEFAULT_") else response_type
    return (
        f'{{"type":"{kind.type_uri}","title":{json.dumps(kind.title)},"status":{int(gateway.status)},'
        f'"detail":{detail},"code":"{kind.code}","errors":[],'
        f'"gateway_response":"{named}","request_id":"$context.requestId"}}'
    )


# --- fields ----------------------------------------------------------------------------------

# Every code an entry of `errors` can carry, with what it means (German, as staff read it). The
# messages of the entries themselves say more (e.g. "höchstens 100 Zeichen"); the pydantic
# error types map onto these codes in platform/validation.py.
FIELD_ERROR_CODES: Final[Mapping[str, str]] = {
    # the schema
    "missing": "Pflichtfeld fehlt",
    "unknown_field": "unbekanntes Feld",
    "unknown_parameter": "unbekannter Parameter",
    "too_short": "zu kurz",
    "too_long": "zu lang",
    "too_few_items": "zu wenige Einträge",
    "too_many_items": "zu viele Einträge",
    "too_small": "Wert zu klein",
    "too_large": "Wert zu groß",
    "pattern_mismatch": "hat nicht das erwartete Format",
    "not_allowed": "kein erlaubter Wert",
    "not_a_string": "muss Text sein",
    "not_an_integer": "muss eine ganze Zahl sein",
    "not_a_number": "muss eine Zahl sein",
    "not_a_boolean": "muss true oder false sein",
    "not_an_object": "muss ein Objekt sein",
    "not_a_list": "muss eine Liste sein",
    "invalid_date": "kein gültiges Datum",
    "invalid_datetime": "kein gültiger Zeitpunkt",
    "invalid_time": "keine gültige Uhrzeit",
    "timezone_missing": "Zeitzone fehlt",
    "invalid_uuid": "keine gültige UUID",
    "invalid_url": "keine gültige Adresse (URL)",
    "invalid_json": "kein gültiges JSON",
    "invalid_text": "enthält Zeichen, die kein Text sind (NUL, Steuerzeichen, ungültiges Unicode)",
    "invalid": "ungültiger Wert",
    # rules of the domain
    "letter_missing": "muss Buchstaben enthalten",
    "too_few_digits": "zu wenige Ziffern",
    "invalid_characters": "enthält nicht erlaubte Zeichen",
    "in_future": "liegt in der Zukunft",
    "in_past": "liegt in der Vergangenheit",
    "too_far_in_past": "liegt zu weit zurück",
    "too_far_ahead": "liegt zu weit in der Zukunft",
    "too_early": "liegt zu früh",
    "too_young": "unter dem Mindestalter",
    "duplicate": "doppelt aufgeführt",
    "inconsistent": "passt nicht zu anderen Angaben",
    "cannot_be_cleared": "Pflichtfeld, kann nicht geleert werden",
    "nothing_to_change": "keine Änderung angegeben",
    "exactly_one": "genau eine Angabe erwartet",
    "unknown_location": "Ort kann nicht bestimmt werden",
}


# The same codes in English (the code catalogue, GET /api/v2/catalog, labels each in both).
FIELD_ERROR_CODES_EN: Final[Mapping[str, str]] = {
    "missing": "required field missing",
    "unknown_field": "unknown field",
    "unknown_parameter": "unknown parameter",
    "too_short": "too short",
    "too_long": "too long",
    "too_few_items": "too few items",
    "too_many_items": "too many items",
    "too_small": "value too small",
    "too_large": "value too large",
    "pattern_mismatch": "not in the expected format",
    "not_allowed": "not an allowed value",
    "not_a_string": "must be text",
    "not_an_integer": "must be an integer",
    "not_a_number": "must be a number",
    "not_a_boolean": "must be true or false",
    "not_an_object": "must be an object",
    "not_a_list": "must be a list",
    "invalid_date": "not a valid date",
    "invalid_datetime": "not a valid date and time",
    "invalid_time": "not a valid time",
    "timezone_missing": "time zone missing",
    "invalid_uuid": "not a valid UUID",
    "invalid_url": "not a valid address (URL)",
    "invalid_json": "not valid JSON",
    "invalid_text": "holds characters that are not text (NUL, control characters, invalid Unicode)",
    "invalid": "invalid value",
    "letter_missing": "must contain letters",
    "too_few_digits": "too few digits",
    "invalid_characters": "holds characters that are not allowed",
    "in_future": "lies in the future",
    "in_past": "lies in the past",
    "too_far_in_past": "lies too far back",
    "too_far_ahead": "lies too far in the future",
    "too_early": "too early",
    "too_young": "below the minimum age",
    "duplicate": "listed twice",
    "inconsistent": "does not fit the other fields",
    "cannot_be_cleared": "required field, cannot be cleared",
    "nothing_to_change": "no change given",
    "exactly_one": "exactly one value expected",
    "unknown_location": "the place cannot be located",
}
if set(FIELD_ERROR_CODES_EN) != set(FIELD_ERROR_CODES):
    raise ValueError(f"field codes without both texts: {set(FIELD_ERROR_CODES) ^ set(FIELD_ERROR_CODES_EN)}")

# Where a field was sent, for a UI that names it.
LOCATION_LABELS: Final[Mapping[Location, tuple[str, str]]] = {
    "body": ("Inhalt der Anfrage", "request body"),
    "query": ("Abfrageparameter", "query parameter"),
    "path": ("Pfad", "path"),
    "header": ("Kopfzeile", "header"),
}


@dataclass(frozen=True)
class FieldError:
    """One entry of a problem's `errors`: which field (a.b.0), where it was sent, a stable code
    (FIELD_ERROR_CODES) and a German message for staff. Never the value sent."""

    field: str
    location: Location
    code: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "location": self.location, "code": self.code, "message": self.message}


def describe_field_errors(errors: Sequence[FieldError | Mapping[str, Any]]) -> str:
    """One line naming each field and its German message: `postcode: hat nicht das erwartete
    Format; email: Pflichtfeld fehlt` (bulk-load reports, the CLIs)."""
    parts = []
    for error in errors:
        entry = error.as_json() if isinstance(error, FieldError) else error
        parts.append(f"{entry.get('field', '?')}: {entry.get('message', entry.get('code', ''))}")
    return "; ".join(parts)


def describe_problem(body: Mapping[str, Any], *, status: int | None = None) -> str:
    """A problem details body as one readable line for a terminal: status, code, title, detail
    and every field's German message. Bodies that are not problems come back as JSON-ish text."""
    code = body.get("code")
    if not isinstance(code, str):
        return str(dict(body))
    shown_status = body.get("status", status)
    head = f"{shown_status} {code}" if shown_status is not None else code
    title = body.get("title") or (PROBLEM_TYPES[code].title if code in PROBLEM_TYPES else "")
    line = f"{head} ({title})" if title else head
    if body.get("detail"):
        line += f": {body['detail']}"
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        line += f" [{describe_field_errors([entry for entry in errors if isinstance(entry, Mapping)])}]"
    return line
