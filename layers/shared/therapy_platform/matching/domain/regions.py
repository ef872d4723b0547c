"""Automatic rounds per region (feature flag `automatic_rounds`, docs/feature-flags.md).

A region is the two-digit postcode prefix of a therapist's practice. A scheduled round sends
no inquiry to a therapist of a region whose flag is off: those therapists are left out before
planning, so their patients' searches stay free for therapists of regions that are on (a
patient near a regional border may still be offered to a therapist across it). Therapists
without a postcode belong to no region and are never paused by a region's flag. Each region is
asked once per round (at most 100 questions), not once per therapist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from therapy_platform.matching.domain.models import TherapistCandidate


@dataclass(frozen=True)
class RegionGate:
    therapists: list[TherapistCandidate]  # those of regions that are on (and those without a region)
    paused_regions: tuple[str, ...]  # sorted
    therapists_paused: int


def gate_regions(therapists: Sequence[TherapistCandidate], region_on: Callable[[str], bool]) -> RegionGate:
    regions = sorted({t.region for t in therapists if t.region is not None})
    paused = frozenset(region for region in regions if not region_on(region))
    kept = [t for t in therapists if t.region is None or t.region not in paused]
    return RegionGate(kept, tuple(sorted(paused)), len(therapists) - len(kept))
