"""The shared weekly time windows (domain/schedule.py): one rule for patients and therapists,
windows in minutes, and the overlap matching will use. Plus the shared language list."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from therapy_platform.contracts.languages import ISO_639_1, LANGUAGE_LABELS
from therapy_platform.contracts.schedule import (
    MINUTES_PER_DAY,
    Weekday,
    WeeklySchedule,
    Window,
    format_window,
    overlap_minutes,
    parse_window,
    total_minutes,
    windows_in_minutes,
)
from therapy_platform.patients.domain.patient import PatientDraft
from therapy_platform.therapists.domain.therapist import TherapistDraft

SCHEDULE = TypeAdapter(WeeklySchedule)
PATIENT: dict[str, Any] = {
    "first_name": "Jürgen",
    "last_name": "Weiß",
    "postcode": "01067",
    "symptoms": ["depression"],
}
THERAPIST: dict[str, Any] = {"first_name": "Jürgen", "last_name": "Weiß", "postcode": "01067"}


@st.composite
def day_windows(draw: st.DrawFn) -> list[Window]:
    """Sorted, disjoint windows of one day; neighbours may touch."""
    points = sorted(draw(st.lists(st.integers(0, MINUTES_PER_DAY), max_size=8)))
    return [(start, end) for start, end in zip(points[::2], points[1::2], strict=False) if start < end]


schedules = st.dictionaries(st.sampled_from(list(Weekday)), day_windows())


def _as_text(schedule: dict[Weekday, list[Window]]) -> dict[str, list[str]]:
    return {str(day): [format_window(*window) for window in windows] for day, windows in schedule.items()}


def _minutes_of(schedule: dict[Weekday, list[Window]], day: Weekday) -> set[int]:
    return {minute for start, end in schedule.get(day, []) for minute in range(start, end)}


# --- one rule for every schedule ---------------------------------------------------------------


def test_a_window_may_end_at_midnight_but_not_start_there() -> None:
    assert parse_window("20:00-24:00") == (1200, 1440)
    assert parse_window(" 14:00 - 18:00 ") == (840, 1080)
    en_dash, arabic_indic_digits = "08:00\u201309:00", "\u0660\u0668:00-09:00"
    for text in ("24:00-24:00", "24:00-01:00", "8:00-9:00", "08:00-24:01", en_dash, arabic_indic_digits):
        with pytest.raises(ValueError, match="not a time window"):
            parse_window(text)
    with pytest.raises(ValueError, match="start before it ends"):
        parse_window("10:00-09:00")


def test_overlaps_are_refused_naming_both_windows_and_touching_is_fine() -> None:
    with pytest.raises(ValidationError, match="windows 08:00-09:00 and 08:30-09:30 overlap"):
        SCHEDULE.validate_python({"mon": ["08:30 - 09:30", "08:00-09:00"]})
    touching = SCHEDULE.validate_python(
        {"sun": ["10:00-11:00", "09:00-10:00"], "mon": [], "tue": ["20:00-24:00"]}
    )
    assert touching == {"tue": ["20:00-24:00"], "sun": ["09:00-10:00", "10:00-11:00"]}
    assert list(touching) == ["tue", "sun"]


@given(
    st.one_of(
        st.text(max_size=15), st.from_regex(r"\s?2?[0-9]:[0-6][0-9] ?- ?2?[0-9]:[0-6]0\s?", fullmatch=True)
    )
)
def test_patients_and_therapists_accept_exactly_the_same_windows(text: str) -> None:
    def stored(model: type[PatientDraft] | type[TherapistDraft], base: dict[str, Any], name: str) -> Any:
        try:
            return getattr(model.model_validate({**base, name: {"wed": [text]}}), name)
        except ValidationError:
            return None

    patient = stored(PatientDraft, PATIENT, "availability")
    therapist = stored(TherapistDraft, THERAPIST, "working_hours")
    assert patient == therapist
    if patient is not None:
        assert patient == {"wed": [format_window(*parse_window(text))]}


def test_only_patients_are_capped_at_twelve_windows_a_day() -> None:
    day = [format_window(hour * 60, hour * 60 + 30) for hour in range(13)]
    with pytest.raises(ValidationError):
        PatientDraft.model_validate({**PATIENT, "availability": {"mon": day}})
    assert PatientDraft.model_validate({**PATIENT, "availability": {"mon": day[:12]}}).availability
    assert TherapistDraft.model_validate({**THERAPIST, "working_hours": {"mon": day}}).working_hours


# --- windows in minutes ------------------------------------------------------------------------


@given(schedules)
def test_a_validated_schedule_comes_back_as_its_minutes(schedule: dict[Weekday, list[Window]]) -> None:
    stored = SCHEDULE.validate_python(_as_text(schedule))
    assert windows_in_minutes(stored) == {day: schedule[day] for day in Weekday if schedule.get(day)}
    assert windows_in_minutes(_as_text(schedule)) == windows_in_minutes(stored)  # plain JSON keys too


def test_windows_in_minutes_refuses_what_is_not_a_schedule() -> None:
    with pytest.raises(ValueError):
        windows_in_minutes({"monday": ["08:00-09:00"]})
    with pytest.raises(ValueError):
        windows_in_minutes({"mon": ["8-9"]})


# --- overlap -----------------------------------------------------------------------------------


@given(schedules, schedules)
def test_the_overlap_holds_exactly_the_minutes_in_both(
    a: dict[Weekday, list[Window]], b: dict[Weekday, list[Window]]
) -> None:
    common = overlap_minutes(a, b)
    for day in Weekday:
        assert _minutes_of(common, day) == _minutes_of(a, day) & _minutes_of(b, day)
    for windows in common.values():
        assert windows and all(start < end for start, end in windows)
        assert all(earlier[1] <= later[0] for earlier, later in pairwise(windows))  # sorted, disjoint
    assert total_minutes(common) <= min(total_minutes(a), total_minutes(b))


@given(schedules, schedules)
def test_the_overlap_is_symmetric(a: dict[Weekday, list[Window]], b: dict[Weekday, list[Window]]) -> None:
    assert overlap_minutes(a, b) == overlap_minutes(b, a)


@given(schedules)
def test_a_schedule_overlaps_itself_entirely_and_nothing_else(schedule: dict[Weekday, list[Window]]) -> None:
    assert overlap_minutes(schedule, schedule) == {
        day: windows for day, windows in schedule.items() if windows
    }
    assert overlap_minutes(schedule, {}) == {}


def test_touching_windows_share_no_minute() -> None:
    patient = windows_in_minutes({"mon": ["08:00-10:00", "18:00-24:00"], "tue": ["08:00-09:00"]})
    therapist = windows_in_minutes({"mon": ["10:00-12:00", "13:00-19:30"], "tue": ["09:00-17:00"]})
    assert overlap_minutes(patient, therapist) == {Weekday.MON: [(18 * 60, 19 * 60 + 30)]}


# --- languages ---------------------------------------------------------------------------------


def test_one_language_list_for_patients_and_therapists() -> None:
    assert set(LANGUAGE_LABELS) <= ISO_639_1
    # A code without a German label is still a language either side can record.
    assert PatientDraft.model_validate({**PATIENT, "languages": ["sv", " DE"]}).languages == ["sv", "de"]
    assert TherapistDraft.model_validate({**THERAPIST, "languages": ["sv"]}).languages == ["sv"]
    for model, base in ((PatientDraft, PATIENT), (TherapistDraft, THERAPIST)):
        with pytest.raises(ValidationError, match="not an ISO 639-1 language code"):
            model.model_validate({**base, "languages": ["xx"]})
