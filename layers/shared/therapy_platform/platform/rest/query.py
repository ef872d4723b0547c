"""Query-string checks the API routes share."""

from __future__ import annotations

from collections.abc import Iterable

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from therapy_platform.platform.validation import FieldValidationError


def refuse_unknown_parameters(app: APIGatewayRestResolver, allowed: Iterable[str] = ()) -> None:
    """422 naming every query parameter the route does not know: a mistyped filter (`?postcode=`
    for `?postcode_prefix=`) must never silently list everyone."""
    unknown = sorted(set(app.current_event.query_string_parameters or {}) - set(allowed))
    if unknown:
        fields = [
            {
                "field": name,
                "location": "query",
                "message": "unknown query parameter",
                "type": "extra_forbidden",
            }
            for name in unknown
        ]
        raise FieldValidationError(
            f"unknown query parameters: {', '.join(unknown)}", details={"fields": fields}
        )
