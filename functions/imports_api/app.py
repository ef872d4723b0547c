"""Therapist service: the directory import reports (/api/v2/imports).

GET /api/v2/imports               newest first: Page[ImportReportSummary]
GET /api/v2/imports/{import_id}   one report with one page of its items (skipped entries with
                                  their reasons, therapists that vanished from the directory
                                  and were marked for review, therapists back in it)
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.contracts.access import API_ACCESS_POLICY
from therapy_platform.platform.rest.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, Page
from therapy_platform.platform.rest.resolver import create_resolver
from therapy_platform.therapists.bootstrap import build_directory_import
from therapy_platform.therapists.imports import use_cases
from therapy_platform.therapists.imports.domain.reports import ImportReport, ImportReportSummary, ItemOutcome

logger = Logger(service="therapist-service")
app = create_resolver(logger, access=API_ACCESS_POLICY)
service = build_directory_import()

BASE: Final = "/api/v2/imports"
ImportId = Annotated[uuid.UUID, Path(description="Import report id (UUID)")]


@app.get(BASE)
def list_imports(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[ImportReportSummary]:
    items, total = use_cases.list_imports(service.reports(), page=page, limit=limit).value
    return Page[ImportReportSummary](items=list(items), total=total, page=page, limit=limit)


@app.get(f"{BASE}/<import_id>")
def read_import(
    import_id: ImportId,
    outcome: Annotated[
        ItemOutcome | None, Query(description="Only items with this outcome: skipped, vanished, reappeared")
    ] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page of the items")] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
) -> ImportReport:
    return use_cases.get_import(service.reports(), import_id, outcome=outcome, page=page, limit=limit).value


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return app.resolve(event, context)
