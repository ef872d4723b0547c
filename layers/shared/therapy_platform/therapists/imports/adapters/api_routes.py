"""The directory import reports' REST routes (/api/v2/imports; the imports function's resolver
registers them):

GET /api/v2/imports               newest first: Page[ImportReportSummary]
GET /api/v2/imports/{import_id}   one report with one page of its items (skipped entries with
                                  their reasons, therapists that vanished from the directory
                                  and were marked for review, therapists back in it)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Final

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from therapy_platform.platform.rest.operations import Tag, operation
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.therapists.imports import use_cases
from therapy_platform.therapists.imports.domain.reports import ImportReport, ImportReportSummary, ItemOutcome
from therapy_platform.therapists.imports.ports import ImportReportStore

BASE: Final = "/api/v2/imports"
ImportId = Annotated[uuid.UUID, Path(description="Import report id (UUID)")]


def register_routes(app: APIGatewayRestResolver, reports: Callable[[], ImportReportStore]) -> None:
    """`reports` is asked on every request, so tests can swap the function's service."""

    @app.get(
        BASE,
        **operation(
            "listImports",
            Tag.DIRECTORY,
            "List directory imports",
            "One report per imported directory file, newest first: counts of new, updated, "
            "unchanged and skipped entries, and the skip reasons.",
            ok="One page of import reports",
        ),
    )
    def list_imports(
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> Page[ImportReportSummary]:
        items, total = use_cases.list_imports(reports(), page=page, limit=limit).value
        return Page[ImportReportSummary](items=list(items), total=total, page=page, limit=limit)

    @app.get(
        f"{BASE}/<import_id>",
        **operation(
            "getImport",
            Tag.DIRECTORY,
            "Read one directory import",
            "The report with one page of its items: skipped entries with their reasons, therapists "
            "that vanished from the directory (marked for review) and therapists back in it.",
            ok="The import report",
            errors={404: "No import with this id"},
        ),
    )
    def read_import(
        import_id: ImportId,
        outcome: Annotated[
            ItemOutcome | None,
            Query(description="Only items with this outcome: skipped, vanished, reappeared"),
        ] = None,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page of the items")] = 1,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    ) -> ImportReport:
        return use_cases.get_import(reports(), import_id, outcome=outcome, page=page, limit=limit).value
