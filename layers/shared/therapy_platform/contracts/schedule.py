"""Weekly time windows: when a patient can attend, when a therapist answers the phone or treats.

One rule for every weekly schedule (patients' availability, therapists' phone windows and
working hours), so that matching compares like with like:
- days `mon`..`sun`, each with a list of windows `HH:MM-HH:MM` from 00:00 to 24:00; a window
  may end at midnight (`20:00-24:00`) but not start there; spaces around the dash are accepted
  (`14:00 - 18:00`, as staff type it);
- a window starts before it ends; windows of one day must not overlap, touching ones
  (`09:00-10:00`, `10:00-11:00`) are fine;
- stored normalised: `HH:MM-HH:MM`, windows sorted, days in week order, empty days dropped.

Matching works in minutes after midnight: `windows_in_minutes` and `overlap_minutes`.

Schedules found in German text (the 116117 directory's calendar, practice websites) are read
with `weekday_from_german` and put together with `schedule_from_windows`, which joins windows
of one day that overlap or touch (the same weekday seen on several dated days).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from typing import Annotated, Final

from pydantic import AfterValidator, WithJsonSchema


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEKDAY_ORDER: Final = {day: index for index, day in enumerate(Weekday)}
MINUTES_PER_DAY: Final = 24 * 60

Window = tuple[int, int]  # (start, end) in minutes after midnight, start < end <= 24:00

_CLOCK = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
# ASCII digits only: int() would also read other scripts' digits, which no one means here.
_WINDOW = re.compile(rf"({_CLOCK})\s*-\s*({_CLOCK}|24:00)")
_CANONICAL_WINDOW = rf"^{_CLOCK}-(?:{_CLOCK}|24:00)$"


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@lru_cache(maxsize=8192)
def parse_window(text: str) -> Window:
    """ "HH:MM-HH:MM" -> (start, end) in minutes after midnight; start must be before end.
    (Cached: a bulk load validates the same few windows hundreds of thousands of times.)"""
    match = _WINDOW.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a time window HH:MM-HH:MM (00:00 to 24:00)")
    start, end = (_minutes(clock) for clock in match.groups())
    if start >= end:
        raise ValueError(f"{text!r}: the window must start before it ends")
    return start, end


@lru_cache(maxsize=8192)
def format_window(start: int, end: int) -> str:
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


@lru_cache(maxsize=8192)
def _normalised_window(text: str) -> str:
    return format_window(*parse_window(text))


def _sorted_disjoint(windows: list[str]) -> list[str]:
    return list(_sorted_disjoint_windows(tuple(windows)))


@lru_cache(maxsize=8192)
def _sorted_disjoint_windows(windows: tuple[str, ...]) -> tuple[str, ...]:
    # Cached: a bulk load validates the same few days' windows hundreds of thousands of times.
    spans = sorted(parse_window(window) for window in windows)
    for earlier, later in pairwise(spans):
        if later[0] < earlier[1]:
            raise ValueError(f"windows {format_window(*earlier)} and {format_window(*later)} overlap")
    return tuple(format_window(*span) for span in spans)


def in_week_order(schedule: dict[Weekday, list[str]]) -> dict[Weekday, list[str]]:
    """Days in week order, empty days dropped (an empty day says nothing)."""
    return {day: schedule[day] for day in sorted(schedule, key=WEEKDAY_ORDER.__getitem__) if schedule[day]}


TimeWindow = Annotated[
    str,
    AfterValidator(_normalised_window),
    # What is stored and sent; input may also have spaces around the dash.
    WithJsonSchema({"type": "string", "pattern": _CANONICAL_WINDOW, "examples": ["08:00-12:00"]}),
]
DayWindows = Annotated[list[TimeWindow], AfterValidator(_sorted_disjoint)]
WeeklySchedule = Annotated[dict[Weekday, DayWindows], AfterValidator(in_week_order)]


def windows_in_minutes(
    schedule: Mapping[Weekday, Sequence[str]] | Mapping[str, Sequence[str]],
) -> dict[Weekday, list[Window]]:
    """A stored schedule as minutes after midnight: days in week order, windows sorted, empty
    days dropped. Raises ValueError on a day or window that is not valid."""
    days = {
        Weekday(day): sorted(parse_window(window) for window in windows) for day, windows in schedule.items()
    }
    return {day: days[day] for day in Weekday if days.get(day)}


def overlap_minutes(
    a: Mapping[Weekday, Sequence[Window]], b: Mapping[Weekday, Sequence[Window]]
) -> dict[Weekday, list[Window]]:
    """The windows of the week that lie in both `a` and `b` (e.g. a patient's availability and
    a therapist's working hours), per day, sorted; days without a common minute are left out.
    Windows that only touch (one ends when the other starts) share no minute. The windows of
    each side are expected disjoint within a day, as `windows_in_minutes` gives them."""
    common: dict[Weekday, list[Window]] = {}
    for day in Weekday:
        shared = sorted(
            (max(first[0], second[0]), min(first[1], second[1]))
            for first in a.get(day, ())
            for second in b.get(day, ())
            if max(first[0], second[0]) < min(first[1], second[1])
        )
        if shared:
            common[day] = shared
    return common


def total_minutes(schedule: Mapping[Weekday, Sequence[Window]]) -> int:
    """How many minutes of the week a schedule in minutes covers."""
    return sum(end - start for windows in schedule.values() for start, end in windows)


# German weekday names and abbreviations, as the directory and practice websites write them.
GERMAN_WEEKDAYS: Final = {
    "mo": Weekday.MON,
    "montag": Weekday.MON,
    "di": Weekday.TUE,
    "dienstag": Weekday.TUE,
    "mi": Weekday.WED,
    "mittwoch": Weekday.WED,
    "do": Weekday.THU,
    "donnerstag": Weekday.THU,
    "fr": Weekday.FRI,
    "freitag": Weekday.FRI,
    "sa": Weekday.SAT,
    "samstag": Weekday.SAT,
    "sonnabend": Weekday.SAT,
    "so": Weekday.SUN,
    "sonntag": Weekday.SUN,
}


def weekday_from_german(word: str) -> Weekday | None:
    """`Mo`, `Mo.`, `montag`, `Sonnabend` ... as a Weekday; None for anything else."""
    return GERMAN_WEEKDAYS.get(word.strip().rstrip(".").casefold())


def merge_windows(windows: Iterable[Window]) -> list[Window]:
    """Overlapping or touching windows of one day joined, sorted: one disjoint list, as the
    schedule rule wants it."""
    merged: list[Window] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def schedule_from_windows(days: Mapping[Weekday, Iterable[Window]]) -> dict[str, list[str]]:
    """Windows in minutes per day in the stored form: days in week order, windows
    `HH:MM-HH:MM` (overlapping or touching ones joined), empty days dropped."""
    result: dict[str, list[str]] = {}
    for day in Weekday:
        windows = merge_windows(days.get(day, ()))
        if windows:
            result[day.value] = [format_window(start, end) for start, end in windows]
    return result
