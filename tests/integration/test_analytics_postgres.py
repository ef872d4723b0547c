"""The analytics figures against real PostgreSQL, derived by hand from a small known world.

The world is built through the matching service's own use cases (searches started, staff
bundles sent, responses recorded, a bundle expired, a place that fell through), at chosen
instants in November 2026; every expected number below is worked out from that story in the
comments, not from the code under test.

Story (UTC; region = postcode prefix, "10" Berlin, "80" Munich):
- patients P1..P6 in Berlin, P7 in Munich, each registered some whole days before their
  search; searches S1..S7 all start 2026-11-01 07:00.
- B1: T1 gets [S1, S2, S3] on 11-02 07:00; answers 11-04 07:00 (2 days): S1 accepted
  (placed), S2 rejected as unsuitable, S3 rejected for capacity.
- B2: T2 gets [S2, S3, S4, S5] on 11-03 07:00; answers 11-09 07:00 (6 days): S2 accepted
  (placed), S3 accepted (placed, but the place falls through on 11-12: search active again),
  S4 no response, S5 rejected (other).
- B3: T3 gets [S4, S5, S6] on 11-05 07:00; nobody answers: expired on 11-20 06:00.
- B5: T5 (Munich) gets [S7] on 11-06 07:00; answers 11-07 07:00 (1 day): S7 accepted (placed).
- B4: T4 gets [S3, S4, S6] on 11-20 07:00; still open.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from matching_world import World, reset_matching
from therapy_platform.matching.adapters.analytics import SqlAnalytics
from therapy_platform.matching.domain.analytics import (
    BundleEfficiencyQuery,
    Dimension,
    PlacementQuery,
    PreferenceGrouping,
    PreferenceQuery,
    bundle_efficiency_csv,
    period,
)
from therapy_platform.matching.domain.bundles import (
    BundleResponseRequest,
    MemberResponse,
    StaffBundleRequest,
)
from therapy_platform.matching.domain.responses import MemberOutcome
from therapy_platform.matching.domain.searches import SearchDraft, SearchPatch
from therapy_platform.matching.use_cases import analytics as cases
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.matching.use_cases import searches as search_cases

pytestmark = pytest.mark.integration

NOV = period(date(2026, 11, 1), date(2026, 11, 30))
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
START = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)


def at(day: int, hour: int = 7) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


@pytest.fixture
def world(admin_engine: Engine, service_url: Callable[[str], str]) -> Iterator[World]:
    reset_matching(admin_engine)
    engine = create_engine(service_url("matching_service"), pool_size=5)
    yield World(engine, now=NOW)
    engine.dispose()


class Story:
    """The world of the module docstring; ids by name."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.t = {
            name: world.therapist(postcode, email=f"{name.lower()}@praxis.example")
            for name, postcode in [(f"T{n}", "10115") for n in range(1, 5)] + [("T5", "80331")]
        }
        patients: dict[str, dict[str, Any]] = {
            # registered N days before the search: 10, 2, 1, 4, 7, 3, 1
            "S1": {"days": 10, "symptoms": ["depression"], "birth_date": date(1990, 1, 1),
                   "therapy_procedures": ["VT"], "insurance_type": "statutory", "languages": ["de"]},
            "S2": {"days": 2, "symptoms": ["anxiety"], "birth_date": date(2000, 6, 15),
                   "therapy_procedures": ["VT", "TP"], "insurance_type": "private",
                   "languages": ["de", "en"]},
            "S3": {"days": 1, "symptoms": ["depression", "anxiety"], "birth_date": date(1960, 3, 1),
                   "therapy_procedures": ["TP"], "insurance_type": "statutory", "languages": ["de"]},
            "S4": {"days": 4},
            "S5": {"days": 7},
            "S6": {"days": 3},
            "S7": {"days": 1, "postcode": "80331"},
        }  # fmt: skip
        self.s: dict[str, uuid.UUID] = {}
        for name, spec in patients.items():
            registered = START - timedelta(days=spec.pop("days"))
            patient = world.patient(
                spec.pop("postcode", "10117"), created_at=registered, updated_at=registered, **spec
            )
            draft = SearchDraft(patient_id=patient.id, total_requested_contacts=10)
            self.s[name] = search_cases.create_search(world.uow(), draft, actor="t", now=START).value.id
        self.bundles: dict[str, uuid.UUID] = {}
        self._send("B1", "T1", ["S1", "S2", "S3"], at(2))
        self._send("B2", "T2", ["S2", "S3", "S4", "S5"], at(3))
        self._respond("B1", {"S1": "accepted", "S2": "rejected_unsuitable", "S3": "rejected_capacity"}, at(4))
        self._send("B3", "T3", ["S4", "S5", "S6"], at(5))
        self._send("B5", "T5", ["S7"], at(6))
        self._respond("B5", {"S7": "accepted"}, at(7))
        self._respond(
            "B2", {"S2": "accepted", "S3": "accepted", "S4": "no_response", "S5": "rejected_other"}, at(9)
        )
        search_cases.change_search(
            world.uow(),
            self.s["S3"],
            SearchPatch(status="active", status_reason="place fell through"),
            actor="staff",
            now=at(12),
        )
        expired = bundle_cases.expire_bundles(world.uow(), now=at(20, 6)).value
        assert expired == [self.bundles["B3"]]
        self._send("B4", "T4", ["S3", "S4", "S6"], at(20))

    def _send(self, bundle: str, therapist: str, members: list[str], when: datetime) -> None:
        ids = [self.s[m] for m in members]
        request = StaffBundleRequest(size=len(ids), search_ids=ids, send_immediately=True)
        result = bundle_cases.staff_bundle(
            self.world.uow(), self.t[therapist].id, request, actor="staff", now=when
        ).value
        assert result.bundle is not None and result.bundle.bundle_id is not None
        assert sorted(m.search_id for m in result.bundle.members) == sorted(ids)
        self.bundles[bundle] = result.bundle.bundle_id

    def _respond(self, bundle: str, outcomes: dict[str, str], when: datetime) -> None:
        request = BundleResponseRequest(
            members=[
                MemberResponse(search_id=self.s[n], outcome=MemberOutcome(o)) for n, o in outcomes.items()
            ]
        )
        bundle_cases.record_response(self.world.uow(), self.bundles[bundle], request, actor="staff", now=when)


@pytest.fixture
def story(world: World) -> Story:
    return Story(world)


def analytics(world: World) -> SqlAnalytics:
    return SqlAnalytics(lambda: world.engine)


# ------------------------------------------------------------------ bundle efficiency


def test_bundle_efficiency_in_total_and_by_size(world: World, story: Story) -> None:
    answer = cases.bundle_efficiency_report(analytics(world), BundleEfficiencyQuery(NOV)).value
    total = answer.total
    # sent B1..B5; answered B1, B2, B5; expired B3; open B4
    assert (total.bundles_sent, total.answered, total.expired, total.still_open) == (5, 3, 1, 1)
    assert total.response_rate == 0.6
    # answer days 2, 6, 1: median 2; p90 = 2 + 0.8 * (6 - 2) = 5.2 (linear interpolation)
    assert (total.answer_days_median, total.answer_days_p90) == (2.0, 5.2)
    # members 3 + 4 + 3 + 3 + 1; acceptances S1, S2, S3, S7; placements S1, S2, S7 (S3 fell through)
    assert (total.members, total.acceptances, total.placements) == (14, 4, 3)
    assert (total.acceptances_per_bundle, total.placements_per_bundle) == (0.8, 0.6)
    assert (total.rejected_unsuitable, total.rejected_unsuitable_share) == (1, round(1 / 14, 4))

    by_size = {row.bundle_size: row for row in answer.by_size}
    assert [row.bundle_size for row in answer.by_size] == [1, 3, 4, 5, 6]  # 3-6 always, 1: B5
    three = by_size[3]  # B1 (answered in 2 days), B3 (expired), B4 (open)
    assert (three.bundles_sent, three.answered, three.expired, three.still_open) == (3, 1, 1, 1)
    assert (three.answer_days_median, three.answer_days_p90) == (2.0, 2.0)
    assert (three.members, three.acceptances, three.placements, three.rejected_unsuitable) == (9, 1, 1, 1)
    assert three.rejected_unsuitable_share == round(1 / 9, 4)
    four = by_size[4]  # B2
    assert (four.bundles_sent, four.answered, four.answer_days_median, four.acceptances, four.placements) == (
        1, 1, 6.0, 2, 1,
    )  # fmt: skip
    assert by_size[5].bundles_sent == 0 and by_size[5].response_rate is None
    assert (by_size[1].bundles_sent, by_size[1].placements, by_size[1].answer_days_median) == (1, 1, 1.0)


def test_bundle_efficiency_by_region_size_and_period_bounds(world: World, story: Story) -> None:
    reader = analytics(world)
    berlin = cases.bundle_efficiency_report(reader, BundleEfficiencyQuery(NOV, region="10")).value.total
    # B1..B4: answer days 2 and 6 -> median 4, p90 2 + 0.9 * 4 = 5.6
    assert (berlin.bundles_sent, berlin.answered, berlin.acceptances, berlin.placements) == (4, 2, 3, 2)
    assert (berlin.answer_days_median, berlin.answer_days_p90) == (4.0, 5.6)
    munich = cases.bundle_efficiency_report(reader, BundleEfficiencyQuery(NOV, region="80")).value.total
    assert (munich.bundles_sent, munich.placements) == (1, 1)
    fours = cases.bundle_efficiency_report(reader, BundleEfficiencyQuery(NOV, bundle_size=4)).value
    assert fours.total.bundles_sent == 1 and [r.bundle_size for r in fours.by_size] == [4]

    # B1 was sent 11-02 07:00 UTC (08:00 in Berlin): inside 11-01..11-02, outside 11-03..11-30
    def sent(first: int, last: int) -> int:
        query = BundleEfficiencyQuery(period(date(2026, 11, first), date(2026, 11, last)))
        return cases.bundle_efficiency_report(reader, query).value.total.bundles_sent

    assert (sent(1, 2), sent(3, 30)) == (1, 4)
    october = period(date(2026, 10, 1), date(2026, 10, 31))
    empty = cases.bundle_efficiency_report(reader, BundleEfficiencyQuery(october)).value
    assert empty.total.bundles_sent == 0 and empty.total.response_rate is None


def test_bundle_efficiency_csv_has_a_header_and_one_row_per_size(world: World, story: Story) -> None:
    answer = cases.bundle_efficiency_report(analytics(world), BundleEfficiencyQuery(NOV)).value
    lines = bundle_efficiency_csv(answer).splitlines()
    assert lines[0].startswith("date_from,date_to,region,bundle_size,bundles_sent,answered")
    assert lines[1].startswith("2026-11-01,2026-11-30,,,5,3,1,1,0.6,2.0,5.2,14,4,0.8,3,0.6,1,")
    assert len(lines) == 1 + 1 + 5


# ------------------------------------------------------------------ therapist preferences


def _counts(row: Any) -> tuple[int, int, int, int]:
    return row.offered, row.accepted, row.declined, row.no_response


def test_preferences_of_one_therapist_count_each_attribute_value(world: World, story: Story) -> None:
    t1 = story.t["T1"].id
    query = PreferenceQuery(NOV, therapist_id=t1)
    page = cases.therapist_preferences(analytics(world), query).value
    assert page.total == 1
    [group] = page.items
    assert group.therapist_id == t1 and group.region is None
    # B1: S1 accepted; S2 unsuitable; S3 capacity
    assert _counts(group.totals) == (3, 1, 2, 0)
    assert (group.totals.declined_unsuitable, group.totals.declined_capacity, group.totals.open) == (1, 1, 0)
    by = {(a.dimension, a.value): a for a in group.attributes}
    # symptoms: S1 depression (accepted), S2 anxiety (declined), S3 both (declined)
    assert _counts(by[Dimension.SYMPTOM, "depression"]) == (2, 1, 1, 0)
    assert _counts(by[Dimension.SYMPTOM, "anxiety"]) == (2, 0, 2, 0)
    # ages on 2026-11-02: 36, 26, 66
    assert _counts(by[Dimension.AGE_BAND, "35-44"]) == (1, 1, 0, 0)
    assert _counts(by[Dimension.AGE_BAND, "25-34"]) == (1, 0, 1, 0)
    assert _counts(by[Dimension.AGE_BAND, "65+"]) == (1, 0, 1, 0)
    assert _counts(by[Dimension.PROCEDURE, "VT"]) == (2, 1, 1, 0)
    assert _counts(by[Dimension.PROCEDURE, "TP"]) == (2, 0, 2, 0)
    assert _counts(by[Dimension.INSURANCE_TYPE, "statutory"]) == (2, 1, 1, 0)
    assert _counts(by[Dimension.INSURANCE_TYPE, "private"]) == (1, 0, 1, 0)
    assert _counts(by[Dimension.LANGUAGE, "de"]) == (3, 1, 2, 0)
    assert _counts(by[Dimension.LANGUAGE, "en"]) == (1, 0, 1, 0)
    # 10117 and 10115 centroids lie about 1 km apart
    assert _counts(by[Dimension.DISTANCE_BAND, "up to 5 km"]) == (3, 1, 2, 0)
    assert {d for d, _ in by} == set(Dimension)


def test_preferences_by_region_and_therapist_pages(world: World, story: Story) -> None:
    reader = analytics(world)
    by_regions = PreferenceQuery(NOV, grouping=PreferenceGrouping.REGION)
    regions = cases.therapist_preferences(reader, by_regions).value
    by_region = {g.region: g.totals for g in regions.items}
    assert regions.total == 2 and set(by_region) == {"10", "80"}
    berlin = by_region["10"]
    # B1..B4: 13 offered; accepted S1, S2, S3; declined S2/T1, S3/T1, S5/T2;
    # no response S4/T2 + the three of expired B3; open: the three of B4
    assert _counts(berlin) == (13, 3, 3, 4)
    declined = (berlin.declined_capacity, berlin.declined_unsuitable, berlin.declined_other)
    assert (declined, berlin.open) == ((1, 1, 1), 3)
    assert berlin.acceptance_rate == 0.5
    assert _counts(by_region["80"]) == (1, 1, 0, 0)
    first = cases.therapist_preferences(reader, PreferenceQuery(NOV, limit=2)).value
    last = cases.therapist_preferences(reader, PreferenceQuery(NOV, limit=2, page=3)).value
    assert (first.total, len(first.items), len(last.items)) == (5, 2, 1)
    everyone = sorted(str(t.id) for t in story.t.values())
    assert [str(g.therapist_id) for g in first.items] == everyone[:2]
    munich_only = cases.therapist_preferences(reader, PreferenceQuery(NOV, region="80")).value
    assert [g.therapist_id for g in munich_only.items] == [story.t["T5"].id]


# ------------------------------------------------------------------ placements


def test_placement_funnel_counts_and_days(world: World, story: Story) -> None:
    answer = cases.placement_report(analytics(world), PlacementQuery(NOV), now=NOW).value
    total = answer.total
    assert (total.searches_started, total.registration_known, total.reached_first_bundle) == (7, 7, 7)
    assert (total.reached_first_acceptance, total.placed) == (4, 3)  # S1 S2 S3 S7; S1 S2 S7
    assert total.placement_rate == round(3 / 7, 4)
    # contacts of the placed: S1 1 (B1), S2 2 (B1, B2), S7 1 (B5)
    assert total.contacts_per_placement == round(4 / 3, 4)
    days = {d.step: (d.median, d.p90) for d in total.days}
    # registration -> search: 10 2 1 4 7 3 1 -> [1 1 2 3 4 7 10]: median 3, p90 7 + 0.4 * 3
    assert days["registration_to_search"] == (3.0, 8.2)
    # search -> first bundle: 1 1 1 2 2 4 5: median 2, p90 4 + 0.4 * 1
    assert days["search_to_first_bundle"] == (2.0, 4.4)
    # first bundle -> first acceptance: S1 2, S2 7, S3 7, S7 1 -> [1 2 7 7]: median 4.5, p90 7
    assert days["first_bundle_to_first_acceptance"] == (4.5, 7.0)
    assert days["first_acceptance_to_placement"] == (0.0, 0.0)  # placed when accepted
    # search -> placement: S1 3, S2 8, S7 6 -> median 6, p90 6 + 0.8 * 2
    assert days["search_to_placement"] == (6.0, 7.6)
    groups = {(g.region, g.month): g for g in answer.by_region_month}
    assert set(groups) == {("10", "2026-11"), ("80", "2026-11")}
    assert (groups["10", "2026-11"].searches_started, groups["10", "2026-11"].placed) == (6, 2)
    assert (groups["80", "2026-11"].searches_started, groups["80", "2026-11"].placed) == (1, 1)


def test_searches_waiting_longest_and_region_filter(world: World, story: Story) -> None:
    answer = cases.placement_report(analytics(world), PlacementQuery(NOV, longest=10), now=NOW).value
    waiting = {w.search_id: w for w in answer.waiting_longest}
    unfinished = [story.s[n] for n in ("S3", "S4", "S5", "S6")]
    # all started at the same instant: ties by id
    assert [w.search_id for w in answer.waiting_longest] == sorted(unfinished)
    # contacts: S3 B1 B2 B4; S4 B2 B3 B4; S5 B2 B3; S6 B3 B4 - open: those in B4
    assert [(waiting[s].contacts_used, waiting[s].open_bundles) for s in unfinished] == [
        (3, 1), (3, 1), (2, 0), (2, 1),
    ]  # fmt: skip
    assert {(w.waiting_days, w.region) for w in waiting.values()} == {(22, "10")}
    munich = cases.placement_report(analytics(world), PlacementQuery(NOV, region="80"), now=NOW).value
    assert (munich.total.searches_started, munich.total.placed, munich.waiting_longest) == (1, 1, [])
