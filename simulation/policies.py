"""Matching policies as configurations: what a simulated run changes, everything else equal.

A policy is the platform's own configuration (`MatchingConfig`: bundle sizes, cooling days, the
open-bundle limit), the contact budget a search starts with, on which weekdays the automatic
round runs, and whether there are automatic rounds at all: the upstream system's policy has
none; staff pick one therapist at a time and the six longest-waiting eligible patients go to
them (`UPSTREAM`). `learned_preferences` switches the learned soft filter on (part 2 of issue 17,
`therapy_platform.matching.domain.preferences`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from therapy_platform.matching.domain.models import MatchingConfig

MONDAY_TO_FRIDAY: Final = (0, 1, 2, 3, 4)  # date.weekday(): the platform's default schedule


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    config: MatchingConfig = field(default_factory=MatchingConfig)
    contact_budget: int = 10  # the platform's default `total_requested_contacts`
    # Contacts staff add (POST .../contact-requests) when a waiting search has used its budget:
    # the patient asks for more (0: never; the search then waits without further inquiries).
    top_up: int = 10
    round_weekdays: tuple[int, ...] = MONDAY_TO_FRIDAY  # empty: no automatic rounds
    # Upstream: staff choose therapists themselves; this many per working day (None: one per
    # twenty eligible practices, so every practice is asked about once a month, as with a
    # 28-day cooling period).
    staff_picks: bool = False
    staff_picks_per_day: int | None = None
    staff_bundle_size: int = 6
    learned_preferences: bool = False
    learned_threshold: float = 0.85  # keep a search unless its learned propensity is below this x baseline

    @property
    def automatic_rounds(self) -> bool:
        return bool(self.round_weekdays)


def _config(**changes: int) -> MatchingConfig:
    return replace(MatchingConfig(), **changes)


DEFAULT: Final = Policy(
    "platform",
    "the platform's defaults: bundles of 3-6, 28 days cooling, 10 contacts (+10 when used up), "
    "rounds Mon-Fri",
)
UPSTREAM: Final = Policy(
    "upstream",
    "staff pick one therapist at a time; the 6 longest-waiting eligible patients go to them; no rounds",
    round_weekdays=(),
    staff_picks=True,
)

POLICIES: Final[dict[str, Policy]] = {
    policy.name: policy
    for policy in (
        DEFAULT,
        Policy("bundle-3", "bundles of exactly 3", _config(max_bundle_size=3)),
        Policy("bundle-4", "bundles of 3-4", _config(max_bundle_size=4)),
        Policy("cooling-14", "14 days cooling", _config(cooling_days=14)),
        Policy("cooling-42", "42 days cooling", _config(cooling_days=42)),
        Policy(
            "budget-6", "6 contacts per search, 6 more each time they are used up", contact_budget=6, top_up=6
        ),
        Policy("budget-20", "20 contacts per search, 20 more each time", contact_budget=20, top_up=20),
        Policy("no-top-up", "10 contacts per search and never more", top_up=0),
        Policy("rounds-2", "rounds on Monday and Thursday", round_weekdays=(0, 3)),
        Policy("rounds-1", "a round on Mondays only", round_weekdays=(0,)),
        Policy(
            "learned",
            "the platform's defaults with learned therapist preferences (threshold 0.85)",
            learned_preferences=True,
        ),
        Policy(
            "learned-0.95",
            "learned therapist preferences, stricter (threshold 0.95)",
            learned_preferences=True,
            learned_threshold=0.95,
        ),
        UPSTREAM,
    )
}

DEFAULT_COMPARISON: Final = (
    "platform",
    "bundle-3",
    "bundle-4",
    "cooling-14",
    "cooling-42",
    "budget-6",
    "budget-20",
    "no-top-up",
    "rounds-2",
    "rounds-1",
    "upstream",
)


def policy(name: str) -> Policy:
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}") from None
