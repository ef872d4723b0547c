"""The shared REST resolver: every API function builds its app here, so the HTTP rules live in
exactly one place: the access policy (401 without a verified caller, 403 naming the missing role,
before the request is validated against the route), request validation, unknown query parameters refused
on every route, JSON bodies only, every error as problem details (`application/problem+json`,
platform/rest/problems.py) with its status from the problem catalogue (platform/problems.py),
201 + Location on creation (`created`), the acting user (`current_actor`)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder, Route
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.errors import (
    DomainError,
    GoneError,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
)
from therapy_platform.platform.idempotency import (
    ERASED_ANSWER,
    KEY_DESCRIPTION,
    IdempotencyKey,
    IdempotencyStore,
    KeyScope,
    StoredAnswer,
    request_fingerprint,
)
from therapy_platform.platform.idempotency import (
    HEADER as IDEMPOTENCY_HEADER,
)
from therapy_platform.platform.problems import PROBLEM_TYPES, FieldError, Location, ProblemType
from therapy_platform.platform.rest.access import PUBLIC, AccessPolicy, Identity, openapi_path
from therapy_platform.platform.rest.pagination import PAGE_FIELDS, page_links
from therapy_platform.platform.rest.problems import problem_response, raw_problem_response
from therapy_platform.platform.validation import FieldValidationError, field_errors_from_pydantic, field_names


def problem_type_of(error: DomainError) -> ProblemType:
    """The catalogued type of a domain error: its own code, else the nearest base class's (an
    uncatalogued code is a bug tests/unit/test_problems.py catches; it still answers sensibly)."""
    for kind in type(error).__mro__:
        code = getattr(kind, "code", None)
        if isinstance(code, str) and code in PROBLEM_TYPES:
            return PROBLEM_TYPES[code]
    return PROBLEM_TYPES["domain_error"]


def validation_error_response(
    error: RequestValidationError, event: Mapping[str, Any] | None
) -> Response[str]:
    details = list(error.errors())
    if any(detail.get("type") == "json_invalid" for detail in details):
        return problem_response("malformed_json", "the request body is not valid JSON", event=event)
    errors = field_errors_from_pydantic(details)
    return problem_response(
        "validation_failed", f"invalid or missing fields: {field_names(errors)}", event=event, errors=errors
    )


def created(body: Any, location: str) -> Response[Any]:
    """201 Created with the new resource and where it lives."""
    return Response(
        status_code=int(HTTPStatus.CREATED),
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Location": location},
    )


def declared_query_parameters(app: APIGatewayRestResolver) -> frozenset[str] | None:
    """The query parameters the matched route declares in its signature (None: no route)."""
    route = app.context.get("_route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    return frozenset(str(param.alias) for param in dependant.query_params)


# One name for free-text search on every list (`q`); the names clients used before, or might
# guess, are refused like any unknown parameter, with a hint.
FREE_TEXT_PARAMETER = "q"
FREE_TEXT_ALIASES = frozenset({"name", "search", "query", "text"})


UNKNOWN_PARAMETER_MESSAGE = "unbekannter Parameter"


def _unknown_parameter_message(name: str, allowed: frozenset[str]) -> str:
    # German, like every field message (staff read it); the hint names the parameter to use.
    if FREE_TEXT_PARAMETER in allowed and name in FREE_TEXT_ALIASES:
        return f"{UNKNOWN_PARAMETER_MESSAGE}; für die Freitextsuche: {FREE_TEXT_PARAMETER}"
    return UNKNOWN_PARAMETER_MESSAGE


def refuse_unknown_query_parameters(
    app: APIGatewayRestResolver, next_middleware: NextMiddleware
) -> Response[Any]:
    """422 naming every query parameter the route does not declare: a mistyped filter
    (`?postcode=` for `?postcode_prefix=`) must never silently list everyone. Every route, the
    same way, because every route declares its parameters in its signature."""
    allowed = declared_query_parameters(app)
    if allowed is not None:
        unknown = sorted(set(app.current_event.query_string_parameters or {}) - allowed)
        if unknown:
            errors = [
                FieldError(name, "query", "unknown_parameter", _unknown_parameter_message(name, allowed))
                for name in unknown
            ]
            hint = (
                f" (free-text search is {FREE_TEXT_PARAMETER})"
                if any(error.message != UNKNOWN_PARAMETER_MESSAGE for error in errors)
                else ""
            )
            raise FieldValidationError(f"unknown query parameters: {', '.join(unknown)}{hint}", errors=errors)
    return next_middleware(app)


def add_page_links(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Every list answer (`Page` and the histories shaped like it) gets its `next`/`prev`
    links here, from the request's path and query parameters, so every route links alike."""
    response = next_middleware(app)
    body = response.body
    if response.status_code == HTTPStatus.OK and isinstance(body, dict) and body.keys() >= PAGE_FIELDS:
        event = app.current_event
        query = event.multi_value_query_string_parameters or {
            name: [value] for name, value in (event.query_string_parameters or {}).items()
        }
        response.body = page_links(body, event.path, query)
    return response


# A creating POST declares this parameter; the resolver then answers a repeated key itself.
IdempotencyKeyHeader = Annotated[
    IdempotencyKey | None, Header(alias=IDEMPOTENCY_HEADER, description=KEY_DESCRIPTION)
]
REPLAYED_HEADER = "Idempotent-Replayed"
# A write that edits a record names the version it edits (platform/preconditions.py).
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag of the record as you read it (required): 412 if it changed since, "
        "428 without it",
    ),
]


def tagged(body: Any, etag: str, status: HTTPStatus = HTTPStatus.OK) -> Response[Any]:
    """A record with its entity tag (`ETag`), for the reads and writes of updatable records."""
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"ETag": etag},
    )


def declares_idempotency_key(app: APIGatewayRestResolver) -> bool:
    dependant = getattr(app.context.get("_route"), "dependant", None)
    return dependant is not None and any(
        str(param.alias).lower() == IDEMPOTENCY_HEADER.lower() for param in dependant.header_params
    )


def _query(app: APIGatewayRestResolver) -> dict[str, list[str]]:
    event = app.current_event
    multi = event.multi_value_query_string_parameters
    if multi:
        return {name: list(values) for name, values in multi.items()}
    return {name: [value] for name, value in (event.query_string_parameters or {}).items()}


def idempotent_creation(store: Callable[[], IdempotencyStore] | None) -> Callable[..., Response[Any]]:
    """The `Idempotency-Key` rules (platform/idempotency.py) for every route that declares the
    header: the first answer again for a repeated request, 409 for a reused key."""

    def middleware(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        key = app.current_event.headers.get(IDEMPOTENCY_HEADER)  # case-insensitive
        if key is None or not declares_idempotency_key(app):
            return next_middleware(app)
        if store is None:
            raise NoIdempotencyStoreError("this function declares Idempotency-Key but keeps no keys")
        route = app.context["_route"]
        scope = KeyScope(f"{route.method} {openapi_path(route.path)}", current_actor(app), key)
        fingerprint = request_fingerprint(app.current_event.path, _query(app), app.current_event.body)
        keys = store()
        record = keys.claim(scope, fingerprint, now=utc_now())
        if record is not None:
            if record.request_hash != fingerprint:
                raise IdempotencyKeyReusedError(
                    f"this {IDEMPOTENCY_HEADER} was used for a different request; use a new key",
                    details={"header": IDEMPOTENCY_HEADER},
                )
            if record.answer is None:
                raise IdempotencyKeyInUseError(
                    f"the first request with this {IDEMPOTENCY_HEADER} is still running; retry shortly",
                    details={"header": IDEMPOTENCY_HEADER},
                )
            if record.answer.body == ERASED_ANSWER:
                # The record the first request created was erased (GDPR Art. 17): its answer is
                # gone, and the request is not run again (that would undo the erasure).
                raise GoneError(
                    f"what the first request with this {IDEMPOTENCY_HEADER} created was erased; "
                    "nothing is created again",
                    details={"header": IDEMPOTENCY_HEADER},
                )
            headers = {REPLAYED_HEADER: "true"}
            if record.answer.location:
                headers["Location"] = record.answer.location
            return Response(
                status_code=record.answer.status,
                content_type=content_types.APPLICATION_JSON,
                body=json.loads(record.answer.body),
                headers=headers,
            )
        try:
            response = next_middleware(app)
        except BaseException:
            keys.release(scope)
            raise
        if HTTPStatus.OK <= response.status_code < HTTPStatus.MULTIPLE_CHOICES:
            body = response.body if isinstance(response.body, str) else json.dumps(response.body, default=str)
            location = next(
                (
                    str(value)
                    for name, value in (response.headers or {}).items()
                    if name.lower() == "location"
                ),
                None,
            )
            keys.complete(scope, StoredAnswer(int(response.status_code), body, location))
        else:
            keys.release(scope)
        return response

    return middleware


class NoIdempotencyStoreError(RuntimeError):
    """A route declares Idempotency-Key in a function that was given no key store."""


def current_identity(app: APIGatewayRestResolver) -> Identity | None:
    """The caller the gateway's authorizer verified (its context), or None. Nothing the client
    sends itself (headers, body) can set it."""
    context = app.current_event.request_context
    raw = context.authorizer.raw_event if context.authorizer else None
    return Identity.from_authorizer_context(raw)


class NoVerifiedCallerError(RuntimeError):
    """A route that records its actor ran without a verified caller: it must not be PUBLIC."""


def current_actor(app: APIGatewayRestResolver) -> str:
    """Who is acting, for audit records and events: the verified token's user id. Only the
    authorizer's context counts; the old X-Staff-User header is ignored."""
    identity = current_identity(app)
    if identity is None:  # the resolver refuses protected routes without a caller first
        raise NoVerifiedCallerError("no verified caller on this request")
    return identity.user_id


def _unstorable_text(value: str) -> bool:
    # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as UTF-8.
    return "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value)


def _unstorable_paths(value: Any, path: str) -> list[str]:
    """JSON paths (a.b.0) of every key or string that no database could store."""
    found: list[str] = []
    if isinstance(value, str):
        if _unstorable_text(value):
            found.append(path or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if _unstorable_text(str(key)):
                found.append(child)
            found.extend(_unstorable_paths(item, child))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_unstorable_paths(item, f"{path}.{index}" if path else str(index)))
    return found


class PlatformRestResolver(APIGatewayRestResolver):
    """Checks every request needs before the framework parses it:
    - the caller may call the route (`access`): 401 without a verified caller, 403 naming the
      missing role; checked on the matched route before validation, so a caller without the role
      learns nothing about the body the route expects; a route the policy does not name is
      refused (403), never served by omission;
    - bodies are JSON: other media types get 415 (the framework's form and multipart parsers
      would fail deep inside it);
    - no text may contain NUL or a lone surrogate (PostgreSQL cannot store them): 422 naming
      each field, for every service at once instead of in every model."""

    def __init__(self, *, access: AccessPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.access = access

    # Powertools runs request validation before any middleware, so the access check hooks in where
    # the matched route is called (a private method of the pinned Powertools 3.37; the access
    # tests fail if an upgrade moves it).
    def _call_route(self, route: Route, route_arguments: dict[str, str]) -> ResponseBuilder:  # type: ignore[type-arg]
        refusal = self._access_refusal(route)
        if refusal is not None:
            return self._response_builder_class(response=refusal, serializer=self._serializer, route=route)
        return super()._call_route(route, route_arguments)

    def _access_refusal(self, route: Route) -> Response[str] | None:
        if not any(route is known for known in (*self._static_routes, *self._dynamic_routes)):
            return None  # no such route: the not-found handler answers 404
        path = openapi_path(route.path)
        event = self.current_event.raw_event
        required = self.access.required_role(route.method, path)
        if required is None:
            return problem_response(
                "forbidden",
                f"{route.method} {path} is not in the access policy; nobody may call it",
                event=event,
            )
        if required == PUBLIC:
            return None
        identity = current_identity(self)
        if identity is None:
            return problem_response("unauthorized", "a valid bearer token is required", event=event)
        if not self.access.allows(identity.roles, required):
            return problem_response(
                "forbidden", f"this operation needs the role {required}", event=event, required_role=required
            )
        return None

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        unstorable = self._unstorable_fields(event)
        if unstorable:
            errors = [
                FieldError(name, location, "invalid_text", "enthält ein NUL-Zeichen oder ungültiges Unicode")
                for location, name in unstorable
            ]
            return raw_problem_response(
                "validation_failed",
                f"invalid or missing fields: {field_names(errors)}",
                event=event,
                allow_origin=_allowed_origin(),
                errors=errors,
            )
        return self._resolve_json_only(event, context)

    @staticmethod
    def _unstorable_fields(event: Mapping[str, Any]) -> list[tuple[Location, str]]:
        found: list[tuple[Location, str]] = [
            ("query", name)
            for name, values in (event.get("multiValueQueryStringParameters") or {}).items()
            for value in (values or [])
            if _unstorable_text(str(name)) or _unstorable_text(str(value))
        ]
        found += [
            ("query", name)
            for name, value in (event.get("queryStringParameters") or {}).items()
            if _unstorable_text(str(name)) or _unstorable_text(str(value))
        ]
        body = event.get("body")
        if isinstance(body, str) and body and not event.get("isBase64Encoded"):
            try:
                parsed = json.loads(body)
            except ValueError:
                return found  # malformed JSON: the resolver answers 400
            found += [("body", path) for path in _unstorable_paths(parsed, "")]
        return list(dict.fromkeys(found))

    def _resolve_json_only(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        headers = event.get("headers") or {}
        content_type = next(
            (str(value) for name, value in headers.items() if name.lower() == "content-type"), ""
        )
        media_type = content_type.split(";", 1)[0].strip().lower()
        if (
            event.get("body")
            and media_type
            and media_type != "application/json"
            and not media_type.endswith("+json")
        ):
            return raw_problem_response(
                "unsupported_media_type",
                f"send the body as JSON (Content-Type: application/json), not {media_type}",
                event=event,
                allow_origin=_allowed_origin(),
            )
        return super().resolve(event, context)


def _allowed_origin() -> str:
    # The staff frontend runs in a browser on another origin (ALLOWED_ORIGIN, "*" locally).
    return os.environ.get("ALLOWED_ORIGIN", "*")


def create_resolver(
    logger: Logger,
    *,
    access: AccessPolicy,
    idempotency: Callable[[], IdempotencyStore] | None = None,
) -> APIGatewayRestResolver:
    """`access`: the API's access policy (contracts/access.py), enforced on every route;
    `idempotency`: the service's key store, for the routes that declare `Idempotency-Key`."""
    cors = CORSConfig(
        allow_origin=_allowed_origin(),
        allow_headers=[
            "Content-Type",
            "Authorization",
            "X-Correlation-Id",
            "Idempotency-Key",
            "If-Match",
            "If-None-Match",
        ],
        expose_headers=["Location", "ETag", "Idempotent-Replayed"],
        max_age=600,
    )
    # debug=False: POWERTOOLS_DEV (readable logs, local only) must not make Powertools print whole
    # requests (bodies with names, bearer tokens) into the logs or let errors escape as tracebacks.
    app = PlatformRestResolver(access=access, enable_validation=True, cors=cors, debug=False)
    app.use([refuse_unknown_query_parameters, add_page_links, idempotent_creation(idempotency)])

    def event() -> Mapping[str, Any]:
        return app.current_event.raw_event

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid_request(error: RequestValidationError) -> Response[str]:
        return validation_error_response(error, event())

    @app.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
    def _unsupported_content_type(_: RequestUnsupportedContentType) -> Response[str]:
        return problem_response(
            "unsupported_media_type",
            "send the request body as JSON with Content-Type: application/json",
            event=event(),
        )

    @app.exception_handler(UnicodeDecodeError)  # type: ignore[untyped-decorator]
    def _undecodable_body(_: UnicodeDecodeError) -> Response[str]:
        return problem_response("malformed_json", "the request body is not valid UTF-8 JSON", event=event())

    @app.exception_handler(DomainError)  # type: ignore[untyped-decorator]
    def _domain_error(error: DomainError) -> Response[str]:
        kind = problem_type_of(error)
        if kind.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            logger.warning("dependency unavailable", extra={"error": error.message})
        return problem_response(kind, error.message, event=event(), errors=error.errors, **error.details)

    @app.not_found
    def _route_not_found(_: RouteNotFoundError) -> Response[str]:
        # The path stays out of `detail` (a mistyped path may hold a name); `instance` names it.
        method = app.current_event.http_method
        return problem_response(
            "route_not_found", f"no operation answers {method} on this path", event=event()
        )

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(error: Exception) -> Response[str]:
        # A bug, never bad input: log it with the stack trace, tell the caller nothing internal.
        logger.exception("unhandled error")
        return problem_response(
            "internal_error",
            "an unexpected error occurred; it has been logged",
            event=event(),
            request_id=app.lambda_context.aws_request_id if app.lambda_context else None,
        )

    return app
