"""The matching service's analytics routes (GET /api/v2/analytics/...), served by the analytics
API function: bundle efficiency, therapist preferences and the placement funnel, each over the
matching service's own schema. JSON by default; `?format=csv` answers text/csv with a header row
for spreadsheets. Each route parses its query parameters (422 naming a bad one), calls one use
case and answers; what the figures mean: docs/analytics.md."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Final

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from therapy_platform.matching.domain.analytics import (
    MAX_BUNDLE_SIZE,
    AnalyticsFormat,
    BundleEfficiency,
    BundleEfficiencyQuery,
    PlacementQuery,
    Placements,
    PreferenceGroup,
    PreferenceGrouping,
    PreferenceQuery,
    bundle_efficiency_csv,
    period,
    placements_csv,
    preferences_csv,
)
from therapy_platform.matching.use_cases import analytics as cases
from therapy_platform.platform.rest.operations import RouteDocs, Tag, operation
from therapy_platform.platform.rest.pagination import MAX_LIMIT, MAX_PAGE, Page

if TYPE_CHECKING:
    from therapy_platform.matching.bootstrap import AnalyticsService

ANALYTICS: Final = "/api/v2/analytics"
CSV: Final = "text/csv; charset=utf-8"

DateFrom = Annotated[date, Query(alias="from", description="First day of the period (German calendar day)")]
DateTo = Annotated[date, Query(description="Last day of the period, inclusive (at most 1,100 days)")]
Region = Annotated[
    str | None, Query(pattern=r"^\d{1,5}$", description="1-5 leading digits of the postcode (PLZ)")
]
RegionDigits = Annotated[int, Query(ge=1, le=5, description="Postcode digits a region is grouped by")]
Format = Annotated[AnalyticsFormat, Query(description="json (default) or csv (text/csv with a header row)")]


def _documented(docs: RouteDocs, model: type[BaseModel]) -> RouteDocs:
    """The 200 answer in both forms: the model as JSON, or CSV text."""
    ok = docs["responses"][200]
    ok["content"] = {
        content_types.APPLICATION_JSON: {"model": model},
        "text/csv": {"schema": {"type": "string", "description": "Comma-separated, a header row first"}},
    }
    return docs


def _answer(model: BaseModel, form: AnalyticsFormat, as_csv: Callable[[], str]) -> Response[Any]:
    if form is AnalyticsFormat.CSV:
        return Response(status_code=200, content_type=CSV, body=as_csv())
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=model.model_dump(mode="json")
    )


def register_routes(app: APIGatewayRestResolver, service: Callable[[], AnalyticsService]) -> None:
    """`service` is asked on every request, so tests can swap the function's service."""

    @app.get(
        f"{ANALYTICS}/bundle-efficiency",
        **_documented(
            operation(
                "getBundleEfficiency",
                Tag.ANALYTICS,
                "Bundle efficiency by bundle size",
                "For bundles sent in the period (optionally to therapists of one postcode region, "
                "optionally of one size): how many were sent, answered and expired, the response rate, "
                "days to the answer (median, 90th percentile), acceptances and placements per bundle and "
                "the share of patients rejected as unsuitable; in total and by size (3-6 always listed).",
                ok="The figures (JSON, or CSV with format=csv)",
            ),
            BundleEfficiency,
        ),
    )
    def bundle_efficiency(
        date_from: DateFrom,
        to: DateTo,
        region: Region = None,
        bundle_size: Annotated[
            int | None, Query(ge=1, le=MAX_BUNDLE_SIZE, description="Only bundles of this many patients")
        ] = None,
        format: Format = AnalyticsFormat.JSON,
    ) -> Response[Any]:
        query = BundleEfficiencyQuery(period(date_from, to), region=region, bundle_size=bundle_size)
        answer = cases.bundle_efficiency_report(service().queries, query).value
        return _answer(answer, format, lambda: bundle_efficiency_csv(answer))

    @app.get(
        f"{ANALYTICS}/therapist-preferences",
        **_documented(
            operation(
                "getTherapistPreferences",
                Tag.ANALYTICS,
                "What therapists accept and decline",
                "Per therapist (`by=therapist`, one page of therapists) or per region of therapists "
                "(`by=region`): the patients offered in bundles sent in the period and what became of "
                "them (accepted, declined by reason, no response, open), as counts, by the patient's "
                "symptoms, age band, distance band, therapy procedures wanted, insurance type and "
                "languages. Patients as the matching read model holds them now.",
                ok="One page of therapists or regions (JSON, or CSV with format=csv)",
            ),
            Page[PreferenceGroup],
        ),
    )
    def therapist_preferences(
        date_from: DateFrom,
        to: DateTo,
        by: Annotated[PreferenceGrouping, Query(description="therapist (default) or region")] = (
            PreferenceGrouping.THERAPIST
        ),
        region: Region = None,
        region_digits: RegionDigits = 2,
        therapist_id: Annotated[uuid.UUID | None, Query(description="Only this therapist")] = None,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        format: Format = AnalyticsFormat.JSON,
        learned: Annotated[
            bool,
            Query(
                description="by=therapist: add each therapist's learned acceptance per feature "
                "(posterior, prior, counts) from every answer so far; slower (reads every answer)"
            ),
        ] = False,
    ) -> Response[Any]:
        query = PreferenceQuery(
            period(date_from, to),
            grouping=by,
            region=region,
            region_digits=region_digits,
            therapist_id=therapist_id,
            page=page,
            limit=limit,
            learned=learned,
        )
        answer = cases.therapist_preferences(service().queries, query).value
        return _answer(answer, format, lambda: preferences_csv(answer.items))

    @app.get(
        f"{ANALYTICS}/placements",
        **_documented(
            operation(
                "getPlacements",
                Tag.ANALYTICS,
                "The placement funnel",
                "For searches started in the period (optionally of patients in one postcode region): "
                "how many reached a first bundle, a first acceptance and a placement; median and 90th "
                "percentile days per step (registration -> search -> first bundle -> first acceptance -> "
                "placement); contacts per placement; per region and month and in total; and the "
                "unfinished searches waiting longest. CSV holds the funnel rows.",
                ok="The funnel (JSON, or CSV with format=csv)",
            ),
            Placements,
        ),
    )
    def placement_funnel(
        date_from: DateFrom,
        to: DateTo,
        region: Region = None,
        region_digits: RegionDigits = 2,
        longest: Annotated[int, Query(ge=0, le=100, description="How many waiting searches to list")] = 10,
        format: Format = AnalyticsFormat.JSON,
    ) -> Response[Any]:
        query = PlacementQuery(
            period(date_from, to), region=region, region_digits=region_digits, longest=longest
        )
        s = service()
        answer = cases.placement_report(s.queries, query, now=s.clock()).value
        return _answer(answer, format, lambda: placements_csv(answer))
