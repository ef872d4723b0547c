"""Prints the directory's week plan: which region of the 116117 directory each night slot
reads (directory/domain/week_plan.py; template.yaml's one `DirectorySchedule` fires at every slot).

    python -m tools.directory_schedules
"""

from __future__ import annotations

import sys

from therapy_platform.directory.domain.week_plan import (
    SCHEDULE_EXPRESSION,
    region_request,
    regions_of,
    week_plan,
)
from therapy_platform.platform.geography.postcodes import postcode_directory


def prefixes() -> list[str]:
    """Every 2-digit postcode prefix with a locatable postcode in the shipped table."""
    return regions_of(postcode_directory().postcodes(locatable_only=True))


def render(regions: list[str]) -> str:
    lines = [f"{SCHEDULE_EXPRESSION} Europe/Berlin; {len(regions)} regions a week", ""]
    for slot, prefix in sorted(week_plan(regions).items()):
        lines.append(f"{slot.label()}  {prefix}xxx  {region_request(prefix)}")
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render(prefixes()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
