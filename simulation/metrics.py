"""The figures of one run, from its log.

The measured cohort: searches that started after the warm-up and early enough to be followed
for `follow_up_days` (90 when at least four weeks of starts are left for the cohort, else half
of what is left after the warm-up). Searches waiting at the start (the initial list) are not
in the cohort: their waiting began before the simulation.

- `median_days`, `p90_days`: days from search start to placement, over the cohort's placed
  searches (withdrawn or still waiting ones are not in these two: see the shares);
- `placed_30d`, `placed_90d`: share of the whole cohort placed within 30 / 90 days (None when
  the follow-up is shorter);
- `placed_share`: share of the cohort placed by the end of its follow-up;
- `contacts_per_placement`: bundle memberships sent after the warm-up per placement after it
  (every search, the initial list's too);
- `inquiries_per_therapist_month`: bundles sent after the warm-up per active therapist per
  30 days (their burden); `max_inquiries_per_therapist_month`: the most any one therapist got;
- `fairness_rho`: Spearman's rank correlation between the order in which the cohort's placed
  searches started and the order in which they were placed (1: strictly first come, first
  served);
- `cooling_violations`, `invariant_violations`: must be 0.
"""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

from simulation.engine import Simulation
from therapy_platform.matching.domain.bundles import BundleKind
from therapy_platform.matching.domain.models import SoftFilter


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    try:
        return statistics.correlation(rx, ry)
    except statistics.StatisticsError:
        return None


def follow_up_days(simulation: Simulation) -> int:
    spec = simulation.world.spec
    measured = spec.days - spec.warmup_days
    return 90 if measured >= 90 + 28 else measured // 2


def measure(simulation: Simulation) -> dict[str, Any]:
    world, log = simulation.world, simulation.log
    spec = world.spec
    warmup_end = world.day_start(spec.warmup_days)
    follow = follow_up_days(simulation)
    cohort_end = world.end - timedelta(days=follow)
    cohort = [a for a in world.arrivals if not a.backlog and warmup_end <= a.at < cohort_end]
    waits: list[float] = []
    started: list[float] = []
    placed_order: list[float] = []
    within_30 = within_90 = placed_in_follow_up = withdrawn = 0
    for arrival in cohort:
        search_id = log.search_of_arrival[arrival.index]
        placed = log.placed_at.get(search_id)
        if search_id in log.withdrawn_at and (placed is None or log.withdrawn_at[search_id] < placed):
            withdrawn += log.withdrawn_at[search_id] < arrival.at + timedelta(days=follow)
        if placed is None:
            continue
        days = (placed - arrival.at).total_seconds() / 86_400
        if days <= follow:
            placed_in_follow_up += 1
        within_30 += days <= 30
        within_90 += days <= 90
        waits.append(days)
        started.append(arrival.at.timestamp())
        placed_order.append(placed.timestamp())
    n = len(cohort)
    after = [b for b in log.sent if b.sent_at >= warmup_end]
    placements_after = sum(1 for at in log.placed_at.values() if at >= warmup_end)
    months = max(spec.days - spec.warmup_days, 1) / 30
    active = sum(1 for t in world.therapists if t.active)
    per_therapist: dict[object, int] = {}
    for bundle in after:
        per_therapist[bundle.therapist_id] = per_therapist.get(bundle.therapist_id, 0) + 1
    contacts = sum(b.size for b in after)
    round_sizes = [b.size for b in after if b.kind is BundleKind.ROUND]
    violations = simulation.invariants.violations
    round_bundles = [b for b in simulation.store.bundles.values() if b.kind is BundleKind.ROUND]
    learned = sum(SoftFilter.LEARNED_PREFERENCES in b.applied_filters for b in round_bundles)
    return {
        "policy": simulation.policy.name,
        "cohort": n,
        "follow_up_days": follow,
        "placed": len(waits),
        "median_days": _round(_quantile(waits, 0.5)),
        "p90_days": _round(_quantile(waits, 0.9)),
        "placed_30d": _share(within_30, n),
        "placed_90d": _share(within_90, n) if follow >= 90 else None,
        "placed_share": _share(placed_in_follow_up, n),
        "withdrawn_share": _share(withdrawn, n),
        "contacts_per_placement": _round(contacts / placements_after) if placements_after else None,
        "inquiries_per_therapist_month": _round(len(after) / active / months, 3) if active else None,
        "max_inquiries_per_therapist_month": _round(max(per_therapist.values(), default=0) / months),
        "mean_bundle_size": _round(contacts / len(after)) if after else None,
        "mean_round_bundle_size": _round(statistics.fmean(round_sizes)) if round_sizes else None,
        "fairness_rho": _round(spearman(started, placed_order), 3),
        "placements_after_warmup": placements_after,
        "places_filled_share": _share(
            simulation.behaviour.filled_places,
            simulation.behaviour.places_opened(world.start, world.end),
        ),
        "bundles_sent": len(after),
        "expired_share": _share(log.expired, len(log.sent)),
        "conflicts": log.conflicts,
        "learned_filter_share": _share(learned, len(round_bundles)) if simulation.learning else None,
        "outcomes": dict(sorted(log.outcomes.items())),
        "cooling_violations": violations.get("cooling", 0),
        "invariant_violations": simulation.invariants.total,
        "invariant_examples": simulation.invariants.examples,
        "days_checked": simulation.invariants.checked_days,
        "waiting_at_end": len(simulation.store._active_searches),
    }


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _share(count: int, total: int) -> float | None:
    return round(count / total, 3) if total else None
