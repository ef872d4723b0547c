"""Domain errors. Each carries a stable `code` from the problem catalogue (platform/problems.py),
which gives its HTTP status, title and type URI; the REST resolver turns any of them into one
problem details answer (platform/rest/problems.py). `details` become extension members of that
answer (e.g. `current_status`), `errors` name the fields involved."""

from __future__ import annotations

from collections.abc import Sequence

from therapy_platform.platform.problems import FieldError


class DomainError(Exception):
    """Base class: a request the domain refuses, with a message developers can read (English;
    ids and states, never personal data: it becomes the answer's `detail`)."""

    code = "domain_error"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, object] | None = None,
        errors: Sequence[FieldError] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.errors: tuple[FieldError, ...] = tuple(errors)


class InternalCallError(DomainError):
    """Another function of the platform failed or answered nonsense (HTTP 502). The message names
    the function and the kind of failure, never the payload (it may hold personal data)."""

    code = "internal_call_failed"


class NotFoundError(DomainError):
    code = "not_found"


class GoneError(NotFoundError):
    """The record existed but is gone for good, e.g. erased under GDPR (HTTP 410)."""

    code = "gone"


class ConflictError(DomainError):
    """The request is valid but clashes with the current state (HTTP 409)."""

    code = "conflict"


class BadRequestError(DomainError):
    """The request contradicts what it refers to, e.g. a response that does not list exactly
    the bundle's members (HTTP 400)."""

    code = "bad_request"


class InvalidInputError(DomainError):
    """Input passed the schema but breaks a business rule (HTTP 422)."""

    code = "invalid_input"


class DependencyUnavailableError(DomainError):
    """A backing service (database, bus, broker) cannot be reached right now (HTTP 503)."""

    code = "dependency_unavailable"


class PreconditionFailedError(DomainError):
    """The client edited a version of the record that is no longer current (`If-Match` names
    another entity tag): someone changed it meanwhile (HTTP 412)."""

    code = "precondition_failed"


class PreconditionRequiredError(DomainError):
    """A write that must name the version it edits (`If-Match`) came without it (HTTP 428)."""

    code = "precondition_required"


class IdempotencyKeyReusedError(ConflictError):
    """An `Idempotency-Key` sent again with a different request body (HTTP 409)."""

    code = "idempotency_key_reused"


class IdempotencyKeyInUseError(ConflictError):
    """The first request with this `Idempotency-Key` is still running (HTTP 409; retry later)."""

    code = "idempotency_key_in_use"
