"""The directory's week plan (directory/domain/week_plan.py): which region each night slot of the
one EventBridge Scheduler entry reads, and the scraper planning a run from a scheduled time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support import FakeLambdaContext, load_function
from therapy_platform.directory.domain.week_plan import (
    DAYS,
    DENSE_RADIUS_KM,
    FIRST_HOUR,
    SPACING_MINUTES,
    Slot,
    next_occurrence,
    region_due,
    regions_of,
    slot_at,
    slot_of,
    week_plan,
)
from therapy_platform.directory.use_cases import plan_scrape
from therapy_platform.platform.errors import InvalidInputError
from therapy_platform.platform.geography.postcodes import postcode_directory

BERLIN = ZoneInfo("Europe/Berlin")
POSTCODES = postcode_directory()
REGIONS = regions_of(POSTCODES.postcodes(locatable_only=True))
prefix_sets = st.sets(st.integers(0, 99).map(lambda n: f"{n:02d}"), min_size=1, max_size=100)
moments = st.datetimes(datetime(2026, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC))


@given(prefix_sets)
def test_every_region_gets_exactly_one_night_slot(prefixes: set[str]) -> None:
    plan = week_plan(prefixes)
    assert sorted(plan.values()) == sorted(prefixes)
    per_night = -(-len(prefixes) // len(DAYS))
    for slot in plan:
        assert 0 <= slot.weekday < len(DAYS) and slot.minute % SPACING_MINUTES == 0
        minutes = slot.hour * 60 + slot.minute - FIRST_HOUR * 60
        assert 0 <= minutes < per_night * SPACING_MINUTES  # runs 20 minutes apart from 01:00


@given(moments)
def test_the_next_occurrence_of_a_slot_is_that_slot_and_not_before(after: datetime) -> None:
    for slot in (Slot(0, 1, 0), Slot(6, 2, 20), Slot(3, 5, 20)):
        fires = next_occurrence(slot, after)
        # Within a week, or two when the switch to summer time removes that night's slot.
        assert fires >= after and fires - after < timedelta(days=15)
        assert slot_at(fires) == slot


def test_the_shipped_plan_reads_every_region_once_a_week_with_dense_cities_tiled_finer() -> None:
    plan = week_plan(REGIONS)
    assert len(plan) == len(REGIONS) >= 90
    assert slot_of(REGIONS, "01") == Slot(0, 1, 0)  # Monday 01:00, Dresden
    monday_night = datetime(2026, 12, 7, 3, 40, tzinfo=BERLIN)  # Berlin's slot, winter time
    assert region_due(REGIONS, monday_night.astimezone(UTC)) == {"prefix": "10", "radius_km": DENSE_RADIUS_KM}
    # Any second within the slot's 20 minutes (a late or retried firing) still reads that region.
    assert region_due(REGIONS, (monday_night + timedelta(minutes=19)).astimezone(UTC)) is not None
    assert region_due(REGIONS, datetime(2026, 12, 7, 5, 40, tzinfo=BERLIN)) is None  # a free slot
    assert region_due(REGIONS, datetime(2026, 12, 7, 12, 0, tzinfo=BERLIN)) is None


def test_slots_are_berlin_wall_clock_time_in_summer_and_winter() -> None:
    winter = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)  # 01:00 CET
    summer = datetime(2026, 6, 29, 23, 0, tzinfo=UTC)  # Tuesday 01:00 CEST
    assert slot_at(winter) == Slot(0, 1, 0)
    assert slot_at(summer) == Slot(1, 1, 0)
    with pytest.raises(ValueError, match="timezone"):
        slot_at(datetime(2026, 12, 7, 1, 0))


def test_a_slot_the_spring_forward_removes_waits_for_the_next_week() -> None:
    # 2027-03-28 is the last Sunday of March: 02:00-03:00 does not exist in Berlin that night.
    saturday = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)
    fires = next_occurrence(Slot(6, 2, 20), saturday)
    assert fires.astimezone(BERLIN).date().isoformat() == "2027-04-04"


def test_a_scheduled_time_plans_the_slots_region_or_nothing() -> None:
    monday_1_00 = {"scheduled_time": "2026-12-07T00:00:00Z", "trigger": "schedule"}
    plan = plan_scrape(monday_1_00, POSTCODES, tile_radius_km=10).value
    assert plan is not None and plan.region.prefix == "01" and plan.region.radius_km == DENSE_RADIUS_KM
    assert plan.trigger == "schedule" and plan.points
    free = {"scheduled_time": "2026-12-07T04:40:00Z"}  # Monday 05:40 Berlin time
    assert plan_scrape(free, POSTCODES, tile_radius_km=10).value is None


@pytest.mark.parametrize(
    ("request_", "named"),
    [
        ({"trigger": "schedule"}, "region or scheduled_time"),
        ({"region": "52", "scheduled_time": "2026-12-07T00:00:00Z"}, "region or scheduled_time"),
        ({"scheduled_time": "2026-12-07T00:00:00"}, "timezone"),
        ({"scheduled_time": "<aws.scheduler.scheduled-time>"}, "scheduled_time"),
    ],
)
def test_a_request_with_both_neither_or_a_bad_time_is_refused(request_: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidInputError, match=named):
        plan_scrape(request_, POSTCODES, tile_radius_km=10)


def test_the_scraper_answers_idle_for_a_free_slot_without_reading_anything() -> None:
    module = load_function("directory_scraper")
    result = module.lambda_handler(
        {"scheduled_time": "2026-12-07T04:40:00Z", "trigger": "schedule"}, FakeLambdaContext()
    )
    assert result == {"status": "idle", "scheduled_time": "2026-12-07T04:40:00Z"}
