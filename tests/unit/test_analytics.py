"""Analytics: the pure rules (bands, periods, figures, grouping, CSV) and the analytics API
handler with an in-memory `AnalyticsQueries` (roles, parameters named in 422s, JSON and CSV)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest

from support import FakeLambdaContext, api_event, assert_problem, load_function
from therapy_platform.matching.bootstrap import AnalyticsService
from therapy_platform.matching.domain.analytics import (
    MAX_PERIOD_DAYS,
    BundleCounts,
    BundleEfficiencyQuery,
    Dimension,
    FunnelCounts,
    OutcomeTally,
    PlacementQuery,
    PreferenceGrouping,
    PreferenceQuery,
    WaitingRow,
    age_band,
    bundle_efficiency,
    distance_band,
    efficiency_figures,
    period,
    placements,
    placements_csv,
    preference_groups,
    preferences_csv,
    to_csv,
)
from therapy_platform.matching.domain.models import TherapistCandidate
from therapy_platform.matching.domain.preferences import PresentedAnswers
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.validation import FieldValidationError

NOV = period(date(2026, 11, 1), date(2026, 11, 30))
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)

# ------------------------------------------------------------------ pure rules


@pytest.mark.parametrize(
    ("age", "band"),
    [(None, "unknown"), (-1, "unknown"), (0, "0-17"), (17, "0-17"), (18, "18-24"), (34, "25-34"),
     (35, "35-44"), (64, "55-64"), (65, "65+"), (104, "65+")],
)  # fmt: skip
def test_age_bands(age: int | None, band: str) -> None:
    assert age_band(age) == band


@pytest.mark.parametrize(
    ("km", "band"),
    [(None, "unknown"), (0.0, "up to 5 km"), (5.0, "up to 5 km"), (5.01, "5-10 km"), (10.0, "5-10 km"),
     (25.0, "10-25 km"), (25.1, "more than 25 km")],
)  # fmt: skip
def test_distance_bands_are_those_an_inquiry_names(km: float | None, band: str) -> None:
    assert distance_band(km) == band


def test_a_period_is_german_calendar_days() -> None:
    winter = period(date(2026, 11, 1), date(2026, 11, 30))
    assert winter.start == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # CET midnight
    assert winter.end == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    summer = period(date(2026, 7, 1), date(2026, 7, 1))
    assert (summer.start, summer.end) == (
        datetime(2026, 6, 30, 22, 0, tzinfo=UTC),
        datetime(2026, 7, 1, 22, 0, tzinfo=UTC),
    )


def test_a_period_ending_before_it_starts_or_too_long_names_to() -> None:
    with pytest.raises(FieldValidationError) as error:
        period(date(2026, 11, 2), date(2026, 11, 1))
    assert [(e.field, e.location, e.code) for e in error.value.errors] == [("to", "query", "too_early")]
    with pytest.raises(FieldValidationError) as error:
        period(date(2020, 1, 1), date(2020, 1, 1).replace(year=2024))
    assert [(e.field, e.code) for e in error.value.errors] == [("to", "too_large")]
    assert period(date(2026, 1, 1), date(2026, 1, 1)).date_to == date(2026, 1, 1)
    with pytest.raises(FieldValidationError) as error:  # no datetime overflow at the calendar's ends
        period(date(1, 1, 1), date(2026, 1, 1))
    assert [(e.field, e.code) for e in error.value.errors] == [("from", "too_far_in_past")]
    with pytest.raises(FieldValidationError) as error:
        period(date(9999, 12, 30), date(9999, 12, 31))
    assert [(e.field, e.code) for e in error.value.errors] == [("to", "too_far_ahead")]
    last_allowed = date.fromordinal(date(2024, 1, 1).toordinal() + MAX_PERIOD_DAYS - 1)
    assert period(date(2024, 1, 1), last_allowed).date_to == last_allowed


def test_efficiency_figures_are_ratios_of_the_counts() -> None:
    figures = efficiency_figures(
        BundleCounts(4, sent=8, answered=6, expired=1, members=32, accepted=5, placements=3,
                     rejected_unsuitable=4, answer_days_median=2.123456, answer_days_p90=9.0)
    )  # fmt: skip
    assert (figures.still_open, figures.response_rate) == (1, 0.75)
    assert (figures.acceptances_per_bundle, figures.placements_per_bundle) == (0.625, 0.375)
    assert (figures.rejected_unsuitable_share, figures.answer_days_median) == (0.125, 2.12)
    empty = efficiency_figures(BundleCounts(5))
    assert (empty.response_rate, empty.acceptances_per_bundle, empty.rejected_unsuitable_share) == (None,) * 3


def test_bundle_efficiency_lists_sizes_three_to_six_and_any_other_found() -> None:
    query = BundleEfficiencyQuery(NOV)
    answer = bundle_efficiency(
        query, [BundleCounts(None, sent=3), BundleCounts(1, sent=1), BundleCounts(4, sent=2)]
    )
    assert answer.total.bundles_sent == 3
    assert [(r.bundle_size, r.bundles_sent) for r in answer.by_size] == [
        (1, 1),
        (3, 0),
        (4, 2),
        (5, 0),
        (6, 0),
    ]
    only = bundle_efficiency(BundleEfficiencyQuery(NOV, bundle_size=5), [])
    assert [r.bundle_size for r in only.by_size] == [5] and only.total.bundles_sent == 0


def _tally(group: str, dimension: Dimension | None, value: str, *counts: int) -> OutcomeTally:
    return OutcomeTally(group, dimension, value, *counts)


def test_preference_groups_keep_the_page_order_and_sort_attributes() -> None:
    first, second = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    tallies = [
        _tally(first, Dimension.LANGUAGE, "de", 2, 1, 0, 1, 0, 0),
        _tally(first, None, "", 3, 1, 0, 1, 0, 0),
        _tally(first, Dimension.SYMPTOM, "trauma", 1, 0, 0, 0, 0, 1),
        _tally(second, None, "", 1, 0, 0, 0, 0, 0),
    ]
    [one, two] = preference_groups(PreferenceQuery(NOV), tallies)
    assert (one.therapist_id, one.region, two.therapist_id) == (uuid.UUID(int=1), None, uuid.UUID(int=2))
    assert (one.totals.offered, one.totals.declined, one.totals.declined_unsuitable, one.totals.open) == (
        3,
        1,
        1,
        1,
    )
    assert one.totals.acceptance_rate == 0.5
    assert [(a.dimension, a.value) for a in one.attributes] == [
        (Dimension.SYMPTOM, "trauma"), (Dimension.LANGUAGE, "de"),
    ]  # fmt: skip
    assert two.totals.acceptance_rate is None and two.attributes == []
    [region] = preference_groups(
        PreferenceQuery(NOV, grouping=PreferenceGrouping.REGION), [_tally("10", None, "", 1, 1, 0, 0, 0, 0)]
    )
    assert (region.region, region.therapist_id) == ("10", None)


def test_placements_put_the_total_apart_and_count_waiting_days() -> None:
    steps = {"search_to_placement": (6.0, 7.6)}
    funnel = [
        FunnelCounts("80", "2026-11", 1, 1, 1, 1, 1, 1, {}),
        FunnelCounts(None, None, 4, 4, 3, 2, 2, 3, steps),
        FunnelCounts("10", "2026-11", 3, 3, 2, 1, 1, 2, steps),
    ]
    waiting = [WaitingRow(uuid.UUID(int=7), "10", datetime(2026, 11, 1, 7, tzinfo=UTC), "active", 2, 1)]
    answer = placements(PlacementQuery(NOV), funnel, waiting, now=NOW)
    assert (answer.total.searches_started, answer.total.contacts_per_placement) == (4, 1.5)
    assert [(g.region, g.month) for g in answer.by_region_month] == [("10", "2026-11"), ("80", "2026-11")]
    days = {d.step: (d.median, d.p90) for d in answer.total.days}
    assert days["search_to_placement"] == (6.0, 7.6) and days["registration_to_search"] == (None, None)
    assert answer.waiting_longest[0].waiting_days == 22
    lines = placements_csv(answer).splitlines()
    assert lines[0].startswith("region,month,searches_started,") and len(lines) == 4
    assert lines[1].startswith(",,4,4,3,2,2,0.5,1.5,")
    nothing = placements(PlacementQuery(NOV), [], [], now=NOW)
    assert nothing.total.searches_started == 0 and nothing.total.placement_rate is None


def test_csv_quotes_and_defuses_formulas() -> None:
    text = to_csv(("a", "b"), [["x,y", "=HYPERLINK()"], [-1.5, None]])
    assert list(csv.reader(io.StringIO(text))) == [["a", "b"], ["x,y", "'=HYPERLINK()"], ["-1.5", ""]]
    assert text.endswith("\r\n")


def test_preferences_csv_has_a_totals_row_per_group() -> None:
    tallies = [
        _tally("10", None, "", 2, 1, 1, 0, 0, 0),
        _tally("10", Dimension.AGE_BAND, "65+", 2, 1, 1, 0, 0, 0),
    ]
    groups = preference_groups(PreferenceQuery(NOV, grouping=PreferenceGrouping.REGION), tallies)
    rows = list(csv.reader(io.StringIO(preferences_csv(groups))))
    assert rows[0][:6] == ["therapist_id", "region", "dimension", "value", "offered", "accepted"]
    assert [r[:7] for r in rows[1:]] == [
        ["", "10", "all", "", "2", "1", "1"],
        ["", "10", "age_band", "65+", "2", "1", "1"],
    ]


# ------------------------------------------------------------------ the API handler


@dataclass
class FakeAnalytics:
    """Answers fixed counts and remembers the queries it was asked."""

    asked: list[Any] = field(default_factory=list)
    answers: list[PresentedAnswers] = field(default_factory=list)

    def bundle_counts(self, query: BundleEfficiencyQuery) -> list[BundleCounts]:
        self.asked.append(query)
        return [
            BundleCounts(None, sent=2, answered=1, members=6, accepted=1),
            BundleCounts(3, sent=2, answered=1),
        ]

    def preference_tallies(self, query: PreferenceQuery) -> tuple[int, list[OutcomeTally]]:
        self.asked.append(query)
        group = "10" if query.grouping is PreferenceGrouping.REGION else str(uuid.UUID(int=5))
        return 7, [
            _tally(group, None, "", 2, 1, 1, 0, 0, 0),
            _tally(group, Dimension.SYMPTOM, "ocd", 1, 1, 0, 0, 0, 0),
        ]

    def funnel(self, query: PlacementQuery) -> list[FunnelCounts]:
        self.asked.append(query)
        return [FunnelCounts(None, None, 2, 2, 1, 1, 1, 3, {})]

    def waiting_longest(self, query: PlacementQuery) -> list[WaitingRow]:
        return []

    def preference_answers(self) -> list[PresentedAnswers]:
        return list(self.answers)


@dataclass
class Api:
    handler: Any
    queries: FakeAnalytics
    last: dict[str, Any] = field(default_factory=dict)

    def get(
        self, path: str, query: dict[str, str], roles: tuple[str, ...] = ("staff",)
    ) -> tuple[int, dict[str, str], str]:
        event = api_event("GET", f"/api/v2/analytics/{path}", query=query, roles=roles)
        response = self.handler(event, FakeLambdaContext())
        self.last = response
        headers = {k.lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers.setdefault(name.lower(), ",".join(map(str, values)))
        return int(response["statusCode"]), headers, response.get("body") or ""


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    module = load_function("analytics_api")
    queries = FakeAnalytics()
    monkeypatch.setattr(module, "service", AnalyticsService(queries=queries, clock=lambda: NOW))
    return Api(module.lambda_handler, queries)


PERIOD = {"from": "2026-11-01", "to": "2026-11-30"}


@pytest.mark.parametrize("path", ["bundle-efficiency", "therapist-preferences", "placements"])
def test_every_route_needs_the_staff_role(api: Api, path: str) -> None:
    status, _, body = api.get(path, PERIOD, roles=("auditor",))
    assert status == 403 and "staff" in body
    event = api_event("GET", f"/api/v2/analytics/{path}", query=PERIOD, user=None, roles=())
    assert api.handler(event, FakeLambdaContext())["statusCode"] == 401
    assert api.queries.asked == []


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("bundle-efficiency", {"to": "2026-11-30"}, "from"),
        ("bundle-efficiency", {"from": "2026-13-01", "to": "2026-11-30"}, "from"),
        ("bundle-efficiency", {**PERIOD, "to": "2026-10-01"}, "to"),
        ("bundle-efficiency", {**PERIOD, "region": "1O"}, "region"),
        ("bundle-efficiency", {**PERIOD, "bundle_size": "7"}, "bundle_size"),
        ("bundle-efficiency", {**PERIOD, "format": "xlsx"}, "format"),
        ("bundle-efficiency", {**PERIOD, "postcode": "10"}, "postcode"),
        ("therapist-preferences", {**PERIOD, "by": "practice"}, "by"),
        ("therapist-preferences", {**PERIOD, "therapist_id": "nope"}, "therapist_id"),
        ("therapist-preferences", {**PERIOD, "region_digits": "6"}, "region_digits"),
        ("placements", {**PERIOD, "longest": "1000"}, "longest"),
        ("placements", {"from": "2026-11-01"}, "to"),
        ("placements", {"from": "0001-01-01", "to": "2026-11-30"}, "from"),
        ("therapist-preferences", {"from": "2026-11-01", "to": "9999-12-31"}, "to"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(api: Api, path: str, query: dict[str, str], field: str) -> None:
    status, _, _ = api.get(path, query)
    problem = assert_problem(api.last)
    assert status == 422 and problem["code"] == "validation_failed"
    assert field in [error["field"] for error in problem["errors"]] and field in problem["detail"]
    assert api.queries.asked == []


def test_bundle_efficiency_as_json_and_csv(api: Api) -> None:
    status, headers, body = api.get("bundle-efficiency", {**PERIOD, "region": "10", "bundle_size": "3"})
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body)["total"]["bundles_sent"] == 2
    [query] = api.queries.asked
    assert (query.region, query.bundle_size, query.period.date_from) == ("10", 3, date(2026, 11, 1))
    status, headers, text = api.get("bundle-efficiency", {**PERIOD, "format": "csv"})
    assert status == 200 and headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:5] == ["date_from", "date_to", "region", "bundle_size", "bundles_sent"]
    assert rows[1][:5] == ["2026-11-01", "2026-11-30", "", "", "2"] and len(rows) == 1 + 1 + 4


def test_therapist_preferences_page_with_links(api: Api) -> None:
    status, _, body = api.get("therapist-preferences", {**PERIOD, "limit": "1", "page": "2", "by": "region"})
    answer = json.loads(body)
    assert status == 200 and (answer["total"], answer["page"], answer["limit"]) == (7, 2, 1)
    assert answer["items"][0]["region"] == "10" and answer["items"][0]["attributes"][0]["value"] == "ocd"
    assert "page=3" in answer["next"] and "page=1" in answer["prev"] and "by=region" in answer["next"]
    [query] = api.queries.asked
    assert (query.grouping, query.offset, query.region_digits) == (PreferenceGrouping.REGION, 1, 2)
    status, headers, text = api.get("therapist-preferences", {**PERIOD, "format": "csv"})
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert text.splitlines()[1].startswith(f"{uuid.UUID(int=5)},,all,,2,1,1")


def test_placements_json(api: Api) -> None:
    status, _, body = api.get("placements", {**PERIOD, "region": "8", "region_digits": "1", "longest": "0"})
    answer = json.loads(body)
    assert status == 200 and answer["total"]["contacts_per_placement"] == 3.0
    assert (answer["region"], answer["region_digits"], answer["waiting_longest"]) == ("8", 1, [])


def test_therapist_preferences_show_the_learned_posterior_beside_the_counts(api: Api) -> None:
    therapist = TherapistCandidate(
        id=uuid.UUID(int=5),
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        status="active",
        location=postcode_directory().centroid("10115"),
    )
    api.queries.answers = [
        PresentedAnswers(therapist, frozenset({"symptom:ocd"}), 2, 3),
        PresentedAnswers(therapist, frozenset({"symptom:depression"}), 0, 1),
    ]
    _, _, body = api.get("therapist-preferences", PERIOD)
    assert json.loads(body)["items"][0]["learned"] == []  # only when asked for
    status, _, body = api.get("therapist-preferences", {**PERIOD, "learned": "true"})
    [item] = json.loads(body)["items"]
    learned = {row["feature"]: row for row in item["learned"]}
    assert status == 200 and list(learned) == ["overall", "symptom:depression", "symptom:ocd"]
    ocd = learned["symptom:ocd"]
    assert (ocd["accepted"], ocd["answered"]) == (2, 3)
    # Three answers: shrunk towards the prior, between it and the raw 2/3.
    assert ocd["prior"] < ocd["posterior"] < 2 / 3
    status, _, text = api.get("therapist-preferences", {**PERIOD, "format": "csv", "learned": "true"})
    rows = list(csv.DictReader(io.StringIO(text)))
    [row] = [r for r in rows if r["dimension"] == "learned" and r["value"] == "symptom:ocd"]
    assert (row["accepted"], row["informative_answers"]) == ("2", "3")
    assert float(row["posterior"]) == ocd["posterior"] and float(row["prior"]) == ocd["prior"]
    # Grouped by region there is no learned part.
    _, _, body = api.get("therapist-preferences", {**PERIOD, "by": "region", "learned": "true"})
    assert json.loads(body)["items"][0]["learned"] == []
