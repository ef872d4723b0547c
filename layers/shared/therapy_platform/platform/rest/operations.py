"""What a route says about itself in the OpenAPI document: a hand-chosen camelCase
`operationId`, one tag by domain, a summary and a description for a frontend developer, its
success answer (201 + Location for creations) and the errors its use case can raise. Every
route passes `operation(...)` to its Powertools decorator (`@app.post(path, **operation(...))`);
infra/tools/openapi.py merges the functions' parts into one document.

A route names only its own errors (404, 409, 410, ...). The answers the resolver gives on every
route are added by the tool, so they cannot be forgotten: 422 (invalid parameters or body, and
undeclared query parameters), 400 + 415 where a route takes a body, 401 + 403 from the access
policy, 503 when a backing service is down.

Every error answer is problem details (`application/problem+json`, the `Problem` schema of
platform/rest/problems.py): `errors` maps a status to when it happens; `error_response` renders
it and names the problem codes (platform/problems.py) that status can carry."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final, TypedDict

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from therapy_platform.platform.rest.problems import PROBLEM_JSON, problem_codes_by_status

# The error body every error answer shares (the tool defines the schema under this name,
# platform/rest/problems.py `problem_schemas`).
ERROR_SCHEMA_NAME: Final = "Problem"
ERROR_CONTENT: Final[dict[str, Any]] = {
    PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}
}


class Tag(StrEnum):
    """The document's tags: domains a frontend developer looks for, not Lambda functions."""

    PATIENTS = "Patients"
    THERAPISTS = "Therapists"
    SEARCHES = "Searches"
    BUNDLES = "Bundles"
    COMMUNICATION = "Communication"
    DIRECTORY = "Directory"
    GEOCODING = "Geocoding"
    ANALYTICS = "Analytics"
    ADMIN = "Admin"


TAG_DESCRIPTIONS: Final[dict[Tag, str]] = {
    Tag.PATIENTS: "Patients waiting for a therapy place: registration, records, GDPR erasure.",
    Tag.THERAPISTS: "Therapists and their practices: records, status (block, reactivate), cooling periods.",
    Tag.SEARCHES: "A patient's search for a therapy place: status, exclusions, contact budget.",
    Tag.BUNDLES: "Bundles (one inquiry to one therapist with 3-6 patients): rounds, sending, responses, "
    "the staff selection list and alerts.",
    Tag.COMMUNICATION: "Emails, phone calls and replies: histories per bundle and per person, ad-hoc emails.",
    Tag.DIRECTORY: "Imports of the public therapist directory (116117) and their reports.",
    Tag.GEOCODING: "Addresses to coordinates, postcodes, distances and travel times.",
    Tag.ANALYTICS: "Figures about waiting times and placements.",
    Tag.ADMIN: "Operating the platform: health, and the code catalogue (every code with its labels).",
}


class RouteDocs(TypedDict):
    """The Powertools route arguments `operation` fills."""

    operation_id: str
    summary: str
    description: str
    tags: list[str]
    responses: dict[int, OpenAPIResponse]


def error_response(status: int | str, when: str) -> OpenAPIResponse:
    """One error answer of a route as problem details; the description ends with the codes
    (x-problem-codes) a client can meet under this status."""
    codes = ", ".join(f"`{code}`" for code in problem_codes_by_status().get(int(status), []))
    description = f"{when.rstrip('.')}. Codes: {codes}." if codes else when
    return {"description": description, "content": dict(ERROR_CONTENT)}


def operation(
    operation_id: str,
    tag: Tag,
    summary: str,
    description: str,
    *,
    ok: str,
    status: int = 200,
    location: str | None = None,
    also: Mapping[int, str] | None = None,
    errors: Mapping[int, str] | None = None,
) -> RouteDocs:
    """`ok` describes the success answer (`status`); `location`: the Location header of a 201
    (what it names); `also`: other success answers with the same body (e.g. 200 for a dry run);
    `errors`: the statuses this route's use case can answer, each with when. The body schema of
    every success answer is the route's return type."""
    success: OpenAPIResponse = {"description": ok}
    if location is not None:
        success["headers"] = {
            "Location": {"description": location, "schema": {"type": "string", "format": "uri-reference"}}
        }
    responses: dict[int, OpenAPIResponse] = {status: success}
    responses.update({code: {"description": text} for code, text in (also or {}).items()})
    responses.update({code: error_response(code, text) for code, text in (errors or {}).items()})
    return {
        "operation_id": operation_id,
        "summary": summary,
        "description": description,
        "tags": [tag.value],
        "responses": responses,
    }
