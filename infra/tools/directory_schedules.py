"""Prints the EventBridge Scheduler entries of template.yaml that spread the directory regions
over the week: one schedule per 2-digit postcode prefix (every prefix with a locatable
postcode in the shipped table), about 14 a night between 01:00 and 05:20 Berlin time, 20
minutes apart so that runs (at most 15 minutes each) never overlap. Dense cities are tiled
with 5 km searches instead of 10 km, so no search point has more pages than a run allows.

    python -m tools.directory_schedules > schedules.yaml    (paste under Resources:)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Final

from therapy_platform.platform.geography.postcodes import postcode_directory

DAYS: Final = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
FIRST_START_MINUTES: Final = 60  # 01:00
SPACING_MINUTES: Final = 20
# Berlin, Hamburg, München, Köln, Frankfurt, Stuttgart, Düsseldorf, Leipzig, Dresden.
DENSE: Final = frozenset({"01", "04", "10", "12", "13", "20", "22", "40", "50", "51", "60", "70", "80", "81"})


def prefixes() -> list[str]:
    return sorted({code[:2] for code in postcode_directory().postcodes(locatable_only=True)})


def schedule_slots(regions: list[str]) -> Iterator[tuple[str, str, int, int]]:
    """(prefix, day, hour, minute): round-robin over the days, then the night's slots."""
    per_day = -(-len(regions) // len(DAYS))
    for index, prefix in enumerate(regions):
        day, slot = divmod(index, per_day)
        minutes = FIRST_START_MINUTES + slot * SPACING_MINUTES
        yield prefix, DAYS[day], minutes // 60, minutes % 60


def render(regions: list[str]) -> str:
    lines: list[str] = []
    for prefix, day, hour, minute in schedule_slots(regions):
        region: object = {"prefix": prefix, "radius_km": 5} if prefix in DENSE else prefix
        payload = json.dumps({"region": region, "trigger": "schedule"}, separators=(", ", ": "))
        lines += [
            f"  DirectorySchedule{prefix}:",
            "    Type: AWS::Scheduler::Schedule",
            "    Properties:",
            f"      Name: !Sub therapy-platform-${{Environment}}-directory-{prefix}",
            "      GroupName: !Ref DirectoryScheduleGroup",
            f"      Description: 116117 directory, postcodes {prefix}xxx",
            f"      ScheduleExpression: cron({minute} {hour} ? * {day} *)",
            "      ScheduleExpressionTimezone: Europe/Berlin",
            '      FlexibleTimeWindow: {Mode: "OFF"}',
            "      State: !Ref DirectoryScheduleState",
            "      Target:",
            "        Arn: !GetAtt DirectoryScraperFunction.Arn",
            "        RoleArn: !GetAtt DirectorySchedulerRole.Arn",
            f"        Input: '{payload}'",
            "        RetryPolicy: {MaximumRetryAttempts: 1, MaximumEventAgeInSeconds: 3600}",
            "        DeadLetterConfig: {Arn: !GetAtt DirectoryScheduleDeadLetterQueue.Arn}",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render(prefixes()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
