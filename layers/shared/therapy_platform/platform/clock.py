"""Time as the platform counts it: instants in UTC, calendar days in Germany."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PLATFORM_TIMEZONE: Final = "Europe/Berlin"


def utc_now() -> datetime:
    return datetime.now(UTC)


def platform_today(now: datetime) -> date:
    """The calendar day in Germany: cooling periods end at German midnight, not UTC's."""
    try:
        return now.astimezone(ZoneInfo(PLATFORM_TIMEZONE)).date()
    except ZoneInfoNotFoundError:  # a runtime without tz data: one hour off at worst
        return now.astimezone(UTC).date()
