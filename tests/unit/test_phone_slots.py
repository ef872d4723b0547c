"""Phone-call slot planning (domain/phone_calls.py) against a brute-force oracle: every 5-minute
instant of the coming days checked one by one in Berlin wall-clock time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Final
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from therapy_platform.communication.domain.phone_calls import (
    SLOT,
    CallPlanningPolicy,
    NoFreeSlotError,
    SlotRule,
    WorkingCalendar,
    ceil_to_slot,
    plan_call,
)
from therapy_platform.contracts.schedule import Weekday, format_window, windows_in_minutes

BERLIN = ZoneInfo("Europe/Berlin")
POLICY = CallPlanningPolicy()
CALENDAR = WorkingCalendar()


def berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


# --------------------------------------------------------------------------- the oracle
# Brute force: every 5-minute instant in time order, judged on its own in Berlin wall-clock
# time. The windows are parsed once per example (not once per instant: that made this the
# slowest unit test), and the fallback instants are produced lazily, as many as a test needs.

WEEKDAY_OF: Final = tuple(Weekday)  # date.weekday() 0..6 -> mon..sun
Windows = Mapping[Weekday, Sequence[tuple[int, int]]]


def in_window(slot: datetime, windows: Windows) -> bool:
    """The slot lies wholly inside one of the windows of its (local) weekday, on a day that is
    not a public holiday; in the hour repeated in autumn only its first occurrence counts."""
    local = slot.astimezone(BERLIN)
    day_windows = windows.get(WEEKDAY_OF[local.weekday()])
    if not day_windows or local.fold:
        return False
    minute = local.hour * 60 + local.minute
    inside = any(start <= minute and minute + 5 <= end for start, end in day_windows)
    return inside and not CALENDAR.is_holiday(local.date())


def oracle_window_slots(now: datetime, windows: dict[str, list[str]]) -> list[datetime]:
    parsed = windows_in_minutes(windows)
    slots, slot = [], ceil_to_slot(now)
    while slot < now + timedelta(days=7):
        if in_window(slot, parsed):
            slots.append(slot)
        slot += SLOT
    return slots


def is_fallback_slot(slot: datetime, now: datetime) -> bool:
    local = slot.astimezone(BERLIN)
    return (
        local.date() > now.astimezone(BERLIN).date()
        and CALENDAR.is_working_day(local.date())
        and time(12, 0) <= local.time() < time(18, 0)
        and not local.fold
    )


def oracle_fallback_slots(now: datetime, days: int = 20) -> Iterator[datetime]:
    slot = ceil_to_slot(now)
    while slot < now + timedelta(days=days):
        if is_fallback_slot(slot, now):
            yield slot
        slot += SLOT


# --------------------------------------------------------------------------- strategies


@st.composite
def phone_windows(draw: st.DrawFn) -> dict[str, list[str]]:
    schedule: dict[str, list[str]] = {}
    for day in draw(st.sets(st.sampled_from(list(Weekday)), max_size=7)):
        # Sorted distinct minutes paired up: disjoint windows, any minute (not only slot starts).
        points = sorted(draw(st.sets(st.integers(0, 24 * 60), min_size=2, max_size=6)))
        pairs = [(points[i], points[i + 1]) for i in range(0, len(points) - 1, 2)]
        windows = [format_window(start, end) for start, end in pairs if end - start <= 240]
        if windows:
            schedule[day.value] = windows
    return schedule


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
# Days around clock changes and holidays, where mistakes hide.
special_days = st.sampled_from(
    [
        datetime(2026, 3, 28, 20, tzinfo=UTC),  # the night clocks go forward
        datetime(2026, 10, 24, 20, tzinfo=UTC),  # the night clocks go back
        datetime(2026, 4, 1, 10, tzinfo=UTC),  # before Easter
        datetime(2026, 12, 22, 9, tzinfo=UTC),  # Christmas
        datetime(2026, 12, 31, 16, tzinfo=UTC),  # New Year
        datetime(2027, 5, 12, 7, tzinfo=UTC),  # Ascension Day
    ]
)
nows = st.one_of(
    moments,
    st.tuples(special_days, st.integers(0, 24 * 60 * 60)).map(
        lambda pair: pair[0] + timedelta(seconds=pair[1])
    ),
)


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(now=nows, windows=phone_windows(), data=st.data())
def test_a_call_gets_the_first_free_window_slot_else_the_first_free_fallback_slot(
    now: datetime, windows: dict[str, list[str]], data: st.DataObject
) -> None:
    window_slots = oracle_window_slots(now, windows)
    candidates = window_slots[:40] + list(islice(oracle_fallback_slots(now), 20))
    taken = data.draw(
        st.sets(st.sampled_from(candidates), max_size=len(candidates)) if candidates else st.just(set())
    )

    planned = plan_call(now, windows, taken, POLICY, CALENDAR)

    assert planned.slot_start not in taken
    assert planned.slot_start >= now and planned.slot_start == ceil_to_slot(planned.slot_start)
    free_window_slots = [slot for slot in window_slots if slot not in taken]
    if free_window_slots:
        assert planned.rule is SlotRule.PHONE_WINDOW
        assert planned.slot_start == free_window_slots[0]
        assert in_window(planned.slot_start, windows_in_minutes(windows))
        assert planned.slot_start < now + timedelta(days=7)
    else:
        assert planned.rule is SlotRule.FALLBACK
        assert planned.slot_start == next(slot for slot in oracle_fallback_slots(now) if slot not in taken)
        assert is_fallback_slot(planned.slot_start, now)


@settings(max_examples=60, deadline=None)
@given(now=nows, windows=phone_windows(), count=st.integers(1, 120))
def test_many_calls_never_share_a_slot(now: datetime, windows: dict[str, list[str]], count: int) -> None:
    parsed = windows_in_minutes(windows)
    taken: set[datetime] = set()
    for _ in range(count):
        planned = plan_call(now, windows, taken, POLICY, CALENDAR)
        assert planned.slot_start not in taken
        if planned.rule is SlotRule.PHONE_WINDOW:
            assert in_window(planned.slot_start, parsed)
        else:
            assert is_fallback_slot(planned.slot_start, now)
        taken.add(planned.slot_start)
    assert len(taken) == count


@settings(max_examples=100, deadline=None)
@given(day=st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)), hour=st.integers(0, 23))
def test_the_fallback_is_never_a_weekend_or_a_public_holiday(day: date, hour: int) -> None:
    now = datetime.combine(day, time(hour), tzinfo=BERLIN)
    planned = plan_call(now, {}, set(), POLICY, CALENDAR)
    local = planned.slot_start.astimezone(BERLIN)
    assert planned.rule is SlotRule.FALLBACK
    assert local.time() == time(12, 0)
    assert local.weekday() < 5 and not CALENDAR.is_holiday(local.date())
    # ... and it is the NEXT working day: every day in between is a weekend day or a holiday.
    between = [day + timedelta(days=n) for n in range(1, (local.date() - day).days)]
    assert all(not CALENDAR.is_working_day(d) for d in between)


# --------------------------------------------------------------------------- examples


def test_the_window_start_when_it_is_free() -> None:
    now = berlin(2026, 11, 23, 7, 0)  # Monday morning, bundle round
    planned = plan_call(now, {"tue": ["08:00-09:00"]}, set(), POLICY, CALENDAR)
    assert planned.slot_start == berlin(2026, 11, 24, 8, 0)
    assert planned.rule is SlotRule.PHONE_WINDOW


def test_a_taken_window_start_moves_to_the_next_slot_in_that_window() -> None:
    now = berlin(2026, 11, 23, 7, 0)
    taken = {berlin(2026, 11, 24, 8, 0), berlin(2026, 11, 24, 8, 5)}
    planned = plan_call(now, {"tue": ["08:00-09:00"]}, taken, POLICY, CALENDAR)
    assert planned.slot_start == berlin(2026, 11, 24, 8, 10)


def test_a_running_window_offers_what_it_has_left_and_a_slot_must_end_inside_it() -> None:
    now = berlin(2026, 11, 24, 8, 1)
    planned = plan_call(now, {"tue": ["08:00-08:12"]}, set(), POLICY, CALENDAR)
    assert planned.slot_start == berlin(2026, 11, 24, 8, 5)
    planned = plan_call(now, {"tue": ["08:00-08:12"]}, {berlin(2026, 11, 24, 8, 5)}, POLICY, CALENDAR)
    # 08:10 would end after the window: next week's window is within 7 days.
    assert planned.slot_start == berlin(2026, 12, 1, 8, 0)


def test_no_window_within_seven_days_means_the_next_working_day_at_noon() -> None:
    now = berlin(2026, 11, 23, 7, 0)  # Monday
    assert plan_call(now, {}, set(), POLICY, CALENDAR).slot_start == berlin(2026, 11, 24, 12, 0)
    full = {berlin(2026, 11, 24, 12, 0), berlin(2026, 11, 24, 12, 5)}
    assert plan_call(now, {}, full, POLICY, CALENDAR).slot_start == berlin(2026, 11, 24, 12, 10)


def test_holidays_and_weekends_are_skipped() -> None:
    # Thursday before Good Friday: Friday and Easter Monday are holidays.
    planned = plan_call(berlin(2026, 4, 2, 15, 0), {}, set(), POLICY, CALENDAR)
    assert planned.slot_start == berlin(2026, 4, 7, 12, 0)
    # Phone windows on Good Friday and Easter Monday are not used; Tuesday's is.
    windows = {"fri": ["09:00-10:00"], "mon": ["09:00-10:00"], "tue": ["09:00-10:00"]}
    planned = plan_call(berlin(2026, 4, 2, 15, 0), windows, set(), POLICY, CALENDAR)
    assert planned.slot_start == berlin(2026, 4, 7, 9, 0)
    assert planned.rule is SlotRule.PHONE_WINDOW


def test_a_state_holiday_counts_when_configured() -> None:
    bavaria = CallPlanningPolicy(holiday_subdivision="BY")
    now = berlin(2026, 1, 5, 15, 0)  # Monday; Epiphany (6 Jan) is a holiday in Bavaria only
    assert plan_call(now, {}, set(), POLICY, CALENDAR).slot_start == berlin(2026, 1, 6, 12, 0)
    planned = plan_call(now, {}, set(), bavaria, WorkingCalendar.for_policy(bavaria))
    assert planned.slot_start == berlin(2026, 1, 7, 12, 0)


def test_the_fallback_time_is_configurable() -> None:
    policy = CallPlanningPolicy(fallback_time=time(9, 30), day_end=time(11, 0))
    planned = plan_call(berlin(2026, 11, 23, 7, 0), {}, set(), policy, CALENDAR)
    assert planned.slot_start == berlin(2026, 11, 24, 9, 30)


def test_the_hour_skipped_in_spring_is_never_planned() -> None:
    now = berlin(2026, 3, 28, 12, 0)  # Saturday; clocks go forward on Sunday 02:00 -> 03:00
    planned = plan_call(now, {"sun": ["02:00-04:00"]}, set(), POLICY, CALENDAR)
    assert planned.slot_start == berlin(2026, 3, 29, 3, 0)


def test_a_full_calendar_is_an_error_naming_the_span() -> None:
    policy = CallPlanningPolicy(fallback_search_days=3, fallback_time=time(12, 0), day_end=time(12, 5))
    now = berlin(2026, 11, 23, 7, 0)
    taken = {berlin(2026, 11, day, 12, 0) for day in (24, 25, 26)}
    with pytest.raises(NoFreeSlotError, match="3 days"):
        plan_call(now, {}, taken, policy, CALENDAR)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fallback_time": "12:03"}, "boundary"),
        ({"fallback_time": "18:00", "day_end": "12:00"}, "before day_end"),
    ],
)
def test_a_policy_refuses_times_that_are_not_slots(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CallPlanningPolicy.model_validate(changes)
