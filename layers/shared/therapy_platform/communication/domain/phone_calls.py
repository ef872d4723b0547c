"""Phone-call tasks of the communication service: when staff call a therapist, and what came of it.

A therapist without an email address is called instead of written to (bundle inquiry,
reminder, withdrawal notice). Calls are planned in 5-minute slots (`plan_call`), rules chosen
where the domain is silent (tested with hypothesis in tests/unit/test_phone_slots.py):
- **One calling line**: a slot holds at most one scheduled call, whoever is called (a partial
  unique index on `phone_call_tasks.slot_start` is the database's guarantee). A cancelled or
  completed call frees its slot.
- **Phone window first**: the first free slot inside one of the therapist's phone windows
  (Europe/Berlin wall-clock time) that starts within `horizon_days` (7) from now. A window
  that is already running counts with the slots it has left; a slot must end inside its
  window (08:00-08:12 gives 08:00 and 08:05). Windows on public holidays are skipped (the
  practice is closed, and so is the team); weekend windows count, the therapist listed them.
- **Otherwise the next working day at 12:00** (`fallback_time`, config): the first free slot
  from 12:00 up to `day_end` (18:00) on the next working day after today, else on the working
  day after that. Working days are Monday to Friday without German public holidays
  (`holidays` package; nationwide ones, plus those of `holiday_subdivision`, e.g. "BY", when
  configured).
- Times that do not exist locally (the hour skipped when clocks go forward) are never planned;
  in the hour repeated when clocks go back a slot is planned once (its first occurrence).

Status machine: `scheduled -> completed | cancelled`; anything else is a 409 naming both states.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Annotated, Final, Self
from zoneinfo import ZoneInfo

import holidays
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from therapy_platform.contracts import communication as contract
from therapy_platform.contracts.schedule import Weekday, windows_in_minutes
from therapy_platform.platform.clock import PLATFORM_TIMEZONE
from therapy_platform.platform.errors import ConflictError

SLOT_MINUTES: Final = 5
SLOT: Final = timedelta(minutes=SLOT_MINUTES)
WEEKDAYS: Final = tuple(Weekday)  # date.weekday() 0..6 -> mon..sun

Notes = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class PhoneCallPurpose(StrEnum):
    INQUIRY = "inquiry"  # a bundle for a therapist without email
    REMINDER = "reminder"  # the one reminder after 7 days without an answer
    WITHDRAWAL = "withdrawal"  # a listed patient has been placed elsewhere
    FOLLOW_UP = "follow_up"  # anything else staff plan by hand


class PhoneCallStatus(StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class PhoneCallOutcome(StrEnum):
    """What staff record after a call (the answer per patient is recorded on the bundle)."""

    REACHED = "reached"  # spoke to the therapist or the practice
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"  # left a message
    CALL_BACK_REQUESTED = "call_back_requested"
    WRONG_NUMBER = "wrong_number"


class SlotRule(StrEnum):
    """Why a call got its slot."""

    PHONE_WINDOW = "phone_window"
    FALLBACK = "fallback"  # no free slot in a phone window within the horizon


_CALL_TRANSITIONS: Final[dict[PhoneCallStatus, frozenset[PhoneCallStatus]]] = {
    PhoneCallStatus.SCHEDULED: frozenset({PhoneCallStatus.COMPLETED, PhoneCallStatus.CANCELLED}),
    PhoneCallStatus.COMPLETED: frozenset(),
    PhoneCallStatus.CANCELLED: frozenset(),
}


def check_call_transition(current: PhoneCallStatus, new: PhoneCallStatus) -> None:
    if new not in _CALL_TRANSITIONS[current]:
        raise ConflictError(
            f"a phone call cannot go from {current.value} to {new.value}",
            details={"current_status": current.value, "requested_status": new.value},
        )


# --------------------------------------------------------------------------- planning


class CallPlanningPolicy(BaseModel):
    """How calls are planned (settings: PHONE_* and PUBLIC_HOLIDAY_SUBDIVISION)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_days: int = Field(default=7, ge=1, le=60)
    fallback_time: time = time(12, 0)
    day_end: time = Field(default=time(18, 0), description="No fallback call starts at or after this")
    holiday_subdivision: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    # How many days after today the fallback looks for a free slot before giving up.
    fallback_search_days: int = Field(default=90, ge=1, le=366)
    timezone: str = PLATFORM_TIMEZONE

    @model_validator(mode="after")
    def _on_slot_boundaries(self) -> Self:
        for name in ("fallback_time", "day_end"):
            value: time = getattr(self, name)
            if value.minute % SLOT_MINUTES or value.second or value.microsecond:
                raise ValueError(f"{name} must be on a {SLOT_MINUTES}-minute boundary")
        if self.fallback_time >= self.day_end:
            raise ValueError("fallback_time must be before day_end")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@cache
def german_holidays(year: int, subdivision: str | None = None) -> Mapping[date, str]:
    """The public holidays of one year (nationwide, plus the state's), as a plain mapping: built
    once per (year, state) and process, since planning asks about thousands of days and the
    `holidays` package's own lookup is slow."""
    calendar = holidays.country_holidays("DE", subdiv=subdivision, years=year)
    return MappingProxyType({day: str(name) for day, name in calendar.items() if day.year == year})


class WorkingCalendar:
    """German public holidays and working days (Monday to Friday, not a holiday)."""

    def __init__(self, subdivision: str | None = None) -> None:
        self.subdivision = subdivision

    def is_holiday(self, day: date) -> bool:
        return day in german_holidays(day.year, self.subdivision)

    def holiday_name(self, day: date) -> str | None:
        return german_holidays(day.year, self.subdivision).get(day)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and not self.is_holiday(day)

    @classmethod
    def for_policy(cls, policy: CallPlanningPolicy) -> WorkingCalendar:
        return cls(policy.holiday_subdivision)


def ceil_to_slot(moment: datetime) -> datetime:
    """The first slot boundary at or after `moment` (UTC; Berlin's offsets are whole hours, so
    slots are aligned the same in local time)."""
    utc = moment.astimezone(UTC)
    floored = utc.replace(second=0, microsecond=0, minute=utc.minute - utc.minute % SLOT_MINUTES)
    return floored if floored == utc else floored + SLOT


def _local(day: date, minute_of_day: int, zone: ZoneInfo) -> datetime | None:
    """The instant of a local wall-clock time, or None when that time does not exist that day."""
    if minute_of_day >= 24 * 60:
        return None
    wall = datetime.combine(day, time(minute_of_day // 60, minute_of_day % 60), tzinfo=zone)
    instant = wall.astimezone(UTC)
    back = instant.astimezone(zone)
    if (back.date(), back.hour, back.minute) != (day, wall.hour, wall.minute):
        return None
    return instant


def window_slots(
    now: datetime,
    phone_windows: Mapping[Weekday, Sequence[str]] | Mapping[str, Sequence[str]],
    policy: CallPlanningPolicy,
    calendar: WorkingCalendar,
) -> Iterator[datetime]:
    """Every slot (UTC) inside a phone window, in time order, from now until the horizon."""
    zone = policy.zone
    earliest = ceil_to_slot(now)
    horizon = now + timedelta(days=policy.horizon_days)
    windows = windows_in_minutes(phone_windows)
    today = now.astimezone(zone).date()
    for offset in range(policy.horizon_days + 1):
        day = today + timedelta(days=offset)
        if calendar.is_holiday(day):
            continue
        for start, end in windows.get(WEEKDAYS[day.weekday()], ()):
            first = start + (-start) % SLOT_MINUTES
            for minute in range(first, end - SLOT_MINUTES + 1, SLOT_MINUTES):
                slot = _local(day, minute, zone)
                if slot is None or slot < earliest:
                    continue
                if slot >= horizon:
                    return
                yield slot


def fallback_slots(
    now: datetime, policy: CallPlanningPolicy, calendar: WorkingCalendar
) -> Iterator[datetime]:
    """Slots from `fallback_time` to `day_end` on each working day after today, in time order."""
    zone = policy.zone
    today = now.astimezone(zone).date()
    first = policy.fallback_time.hour * 60 + policy.fallback_time.minute
    last = policy.day_end.hour * 60 + policy.day_end.minute
    for offset in range(1, policy.fallback_search_days + 1):
        day = today + timedelta(days=offset)
        if not calendar.is_working_day(day):
            continue
        for minute in range(first, last, SLOT_MINUTES):
            slot = _local(day, minute, zone)
            if slot is not None:
                yield slot


class PlannedCall(BaseModel):
    model_config = ConfigDict(frozen=True)

    slot_start: datetime
    rule: SlotRule

    @property
    def slot_end(self) -> datetime:
        return self.slot_start + SLOT


class NoFreeSlotError(ConflictError):
    pass


def plan_call(
    now: datetime,
    phone_windows: Mapping[Weekday, Sequence[str]] | Mapping[str, Sequence[str]],
    taken: Collection[datetime],
    policy: CallPlanningPolicy,
    calendar: WorkingCalendar,
) -> PlannedCall:
    """The slot of a new call (see the module doc). `taken`: start times of scheduled calls."""
    busy = {slot.astimezone(UTC) for slot in taken}
    for slot in window_slots(now, phone_windows, policy, calendar):
        if slot not in busy:
            return PlannedCall(slot_start=slot, rule=SlotRule.PHONE_WINDOW)
    for slot in fallback_slots(now, policy, calendar):
        if slot not in busy:
            return PlannedCall(slot_start=slot, rule=SlotRule.FALLBACK)
    raise NoFreeSlotError(
        f"no free call slot in the next {policy.fallback_search_days} days",
        details={"fallback_search_days": policy.fallback_search_days},
    )


def planning_range(now: datetime, policy: CallPlanningPolicy) -> tuple[datetime, datetime]:
    """The span in which `plan_call` may choose a slot: read the taken slots of this span."""
    return ceil_to_slot(now), now + timedelta(days=max(policy.horizon_days, policy.fallback_search_days) + 2)


# --------------------------------------------------------------------------- the task


class PhoneCallTask(BaseModel):
    """A call staff are to make (the API's and the history's view of it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    purpose: PhoneCallPurpose
    therapist_id: uuid.UUID
    therapist_name: str
    phone: str | None = Field(default=None, description="None: no number known, staff must look it up")
    bundle_id: uuid.UUID | None = None
    bundle_reference: str | None = None
    slot_start: datetime
    slot_end: datetime
    scheduling_rule: SlotRule | None = None
    status: PhoneCallStatus
    outcome: PhoneCallOutcome | None = None
    outcome_notes: str | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    created_at: datetime
    updated_at: datetime
    idempotency_key: str | None = Field(default=None, exclude=True)

    @classmethod
    def schedule(
        cls,
        *,
        purpose: PhoneCallPurpose,
        therapist_id: uuid.UUID,
        therapist_name: str,
        phone: str | None,
        planned: PlannedCall,
        now: datetime,
        bundle_id: uuid.UUID | None = None,
        bundle_reference: str | None = None,
        idempotency_key: str | None = None,
        task_id: uuid.UUID | None = None,
    ) -> Self:
        return cls(
            id=task_id or uuid.uuid4(),
            purpose=purpose,
            therapist_id=therapist_id,
            therapist_name=therapist_name,
            phone=phone,
            bundle_id=bundle_id,
            bundle_reference=bundle_reference,
            slot_start=planned.slot_start,
            slot_end=planned.slot_end,
            scheduling_rule=planned.rule,
            status=PhoneCallStatus.SCHEDULED,
            created_at=now,
            updated_at=now,
            idempotency_key=idempotency_key,
        )

    def completed(self, outcome: PhoneCallOutcome, notes: str | None, *, actor: str, now: datetime) -> Self:
        check_call_transition(self.status, PhoneCallStatus.COMPLETED)
        return self.model_copy(
            update={
                "status": PhoneCallStatus.COMPLETED,
                "outcome": outcome,
                "outcome_notes": notes,
                "completed_at": now,
                "completed_by": actor,
                "updated_at": now,
            }
        )

    def scheduled_event(self) -> dict[str, object]:
        """Payload of `phone_call.scheduled` (the contract): no phone number, no notes, contact
        data stays in the communication service."""
        return contract.PhoneCallScheduled(
            task_id=self.id,
            purpose=contract.PhoneCallPurpose(self.purpose.value),
            therapist_id=self.therapist_id,
            bundle_id=self.bundle_id,
            bundle_reference=self.bundle_reference,
            slot_start=self.slot_start,
            slot_end=self.slot_end,
            scheduling_rule=contract.SlotRule((self.scheduling_rule or SlotRule.FALLBACK).value),
            has_phone_number=self.phone is not None,
            scheduled_at=self.created_at,
        ).model_dump(mode="json")

    def completed_event(self) -> dict[str, object]:
        """Payload of `phone_call.completed` (the contract; the notes stay here)."""
        assert self.outcome is not None and self.completed_at is not None and self.completed_by is not None
        return contract.PhoneCallCompleted(
            task_id=self.id,
            purpose=contract.PhoneCallPurpose(self.purpose.value),
            therapist_id=self.therapist_id,
            bundle_id=self.bundle_id,
            bundle_reference=self.bundle_reference,
            outcome=contract.PhoneCallOutcome(self.outcome.value),
            completed_at=self.completed_at,
            completed_by=self.completed_by,
        ).model_dump(mode="json")


class CallCompletion(BaseModel):
    """POST /api/v2/phone-calls/{id}/complete."""

    model_config = ConfigDict(extra="forbid")

    outcome: PhoneCallOutcome
    notes: Notes | None = None


class PhoneCallQuery(BaseModel):
    """GET /api/v2/phone-calls: `day` (query parameter `date`) is a calendar day in Germany
    (slot start)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    status: PhoneCallStatus | None = None
    day: date | None = Field(default=None, alias="date")
    therapist_id: uuid.UUID | None = None
    bundle_reference: Annotated[str, StringConstraints(pattern=r"^B[1-9][0-9]{0,11}$")] | None = None
    page: int = Field(default=1, ge=1)
    limit: int = Field(default=50, ge=1, le=200)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def day_bounds(self, timezone: str = PLATFORM_TIMEZONE) -> tuple[datetime, datetime] | None:
        """[start, end) of `day` in Germany as instants (23 or 25 hours on clock-change days)."""
        if self.day is None:
            return None
        zone = ZoneInfo(timezone)
        start = datetime.combine(self.day, time(0), tzinfo=zone)
        end = datetime.combine(self.day + timedelta(days=1), time(0), tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)
