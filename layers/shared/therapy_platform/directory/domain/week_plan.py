"""When each region of the 116117 directory is read: the week plan.

Every 2-digit postcode prefix with a locatable postcode is read once a week, at night, Berlin
time: about 14 regions a night between 01:00 and 05:20, 20 minutes apart, so that runs (at most
15 minutes each) never overlap. Dense cities are tiled with 5 km searches instead of the
configured radius, so no search point has more pages than a run allows.

One EventBridge Scheduler entry (template.yaml's `DirectorySchedule`, SCHEDULE_EXPRESSION) fires
at every possible slot and hands the scraper its scheduled time; the plan below says which region
that slot reads, or none. The plan lives here, not as one schedule per region in the template, so
the template holds no pasted repetition and a change of the plan is a change of code with tests.
Pure rules: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from therapy_platform.platform.clock import PLATFORM_TIMEZONE

FIRST_HOUR: Final = 1  # the first run starts 01:00 Berlin time
LAST_HOUR: Final = 5  # the schedule fires up to 05:40 (the plan uses up to 05:20)
SPACING_MINUTES: Final = 20
SLOTS_PER_NIGHT: Final = (LAST_HOUR - FIRST_HOUR + 1) * 60 // SPACING_MINUTES
# EventBridge Scheduler's cron (minutes hours day-of-month month day-of-week year), in Europe/Berlin.
SCHEDULE_EXPRESSION: Final = f"cron(0/{SPACING_MINUTES} {FIRST_HOUR}-{LAST_HOUR} ? * * *)"
DAYS: Final = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
DENSE_RADIUS_KM: Final = 5
# Berlin, Hamburg, München, Köln, Frankfurt, Stuttgart, Düsseldorf, Leipzig, Dresden.
DENSE: Final = frozenset({"01", "04", "10", "12", "13", "20", "22", "40", "50", "51", "60", "70", "80", "81"})


@dataclass(frozen=True, order=True)
class Slot:
    """A start time in the week, Berlin wall-clock time (weekday 0 is Monday)."""

    weekday: int
    hour: int
    minute: int

    def label(self) -> str:
        return f"{DAYS[self.weekday]} {self.hour:02d}:{self.minute:02d}"


def regions_of(postcodes: Iterable[str]) -> list[str]:
    """The regions the plan covers: every 2-digit prefix of the given (locatable) postcodes."""
    return sorted({code[:2] for code in postcodes})


def region_request(prefix: str) -> str | dict[str, Any]:
    """What the scraper is asked for one prefix (the `region` of its request)."""
    return {"prefix": prefix, "radius_km": DENSE_RADIUS_KM} if prefix in DENSE else prefix


def week_plan(prefixes: Iterable[str]) -> dict[Slot, str]:
    """Slot -> prefix: round-robin over the nights (as many regions each night as the busiest
    needs), each night's regions one slot after another from FIRST_HOUR."""
    regions = sorted(set(prefixes))
    if not regions:
        return {}
    per_night = -(-len(regions) // len(DAYS))
    if per_night > SLOTS_PER_NIGHT:
        raise ValueError(
            f"{len(regions)} regions need {per_night} slots a night; the schedule has {SLOTS_PER_NIGHT}"
        )
    plan: dict[Slot, str] = {}
    for index, prefix in enumerate(regions):
        night, position = divmod(index, per_night)
        minutes = FIRST_HOUR * 60 + position * SPACING_MINUTES
        plan[Slot(night, minutes // 60, minutes % 60)] = prefix
    return plan


def slot_at(moment: datetime) -> Slot:
    """The slot a (timezone-aware) scheduled time falls in, in Berlin wall-clock time."""
    if moment.tzinfo is None:
        raise ValueError("the scheduled time must carry its timezone")
    local = moment.astimezone(ZoneInfo(PLATFORM_TIMEZONE))
    return Slot(local.weekday(), local.hour, local.minute - local.minute % SPACING_MINUTES)


def region_due(prefixes: Iterable[str], scheduled_time: datetime) -> str | dict[str, Any] | None:
    """The region the schedule's firing at `scheduled_time` reads, or None (a slot left free)."""
    prefix = week_plan(prefixes).get(slot_at(scheduled_time))
    return None if prefix is None else region_request(prefix)


def slot_of(prefixes: Iterable[str], prefix: str) -> Slot:
    """The slot that reads `prefix` (KeyError when the plan has no such region)."""
    for slot, planned in week_plan(prefixes).items():
        if planned == prefix:
            return slot
    raise KeyError(prefix)


def next_occurrence(slot: Slot, after: datetime) -> datetime:
    """The first time at or after `after` (timezone-aware) that the schedule fires for `slot`
    (UTC). Skips a slot that the switch to summer time removes that night."""
    berlin = ZoneInfo(PLATFORM_TIMEZONE)
    local = after.astimezone(berlin)
    day = local.date()
    for offset in range(15):
        candidate_day = day.fromordinal(day.toordinal() + offset)
        if candidate_day.weekday() != slot.weekday:
            continue
        naive = datetime(candidate_day.year, candidate_day.month, candidate_day.day, slot.hour, slot.minute)
        candidate = naive.replace(tzinfo=berlin)
        # A wall-clock time that does not exist (spring forward) does not round-trip through UTC.
        if candidate.astimezone(UTC).astimezone(berlin).replace(tzinfo=None) != naive:
            continue
        if candidate >= local:
            return candidate.astimezone(UTC)
    raise ValueError(f"no occurrence of {slot.label()} within two weeks")
