"""Learned therapist preferences in deployed rounds (issue 17 §2; the model:
`matching/domain/preferences.py`).

A round asks the feature flag `preference_aware_ordering` for each therapist it plans for
(subject: the therapist's id, region: their two-digit postcode region). When it is on for at
least one of them, the model is built from every answer given so far (`PreferenceAnswers`),
read when the round reads its inputs: each response event is reflected in the next round, and
there is no cache that could go stale. The predicate applies the learned soft filter to the
therapists whose flag is on and keeps every search for everyone else. It is a soft filter
only: it runs after every hard constraint, is dropped when fewer than the minimum bundle size
would remain, and never holds back a search waiting 60 days or longer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from therapy_platform.matching.domain.models import SearchCandidate, TherapistCandidate
from therapy_platform.matching.domain.preferences import PreferenceModel, model_from_answers
from therapy_platform.matching.domain.rules import LearnedPreference
from therapy_platform.matching.ports import PreferenceAnswers
from therapy_platform.platform.feature_flags import Flag, FlagEvaluator, FlagSubject

# The configuration the simulator measured as its `learned` policy (docs/simulation.md): keep a
# search unless its propensity is below 0.85 x the therapist's baseline; 60-day bound.
THRESHOLD: Final = 0.85


def deployed_model() -> PreferenceModel:
    return PreferenceModel(threshold=THRESHOLD)


@dataclass(frozen=True)
class LearnedForRound:
    preference: LearnedPreference | None  # None: the flag is off for every therapist
    therapist_ids: frozenset[uuid.UUID]  # whose flag is on (their bundles use the filter)


NOT_USED = LearnedForRound(None, frozenset())


def flagged_therapists(
    therapists: Sequence[TherapistCandidate], flags: FlagEvaluator | None
) -> frozenset[uuid.UUID]:
    """The therapists whose `preference_aware_ordering` flag is on (none without an evaluator:
    the flag's fallback is off)."""
    if flags is None:
        return frozenset()
    return frozenset(
        t.id
        for t in therapists
        if flags.enabled(Flag.PREFERENCE_AWARE_ORDERING, FlagSubject(subject=str(t.id), region=t.region))
    )


def learned_model(source: PreferenceAnswers, model: PreferenceModel | None = None) -> PreferenceModel:
    """The model over every answer given so far, computed now from the current data."""
    return model_from_answers(source.answers(), model if model is not None else deployed_model())


def learned_for_round(
    source: PreferenceAnswers | None,
    therapists: Sequence[TherapistCandidate],
    flags: FlagEvaluator | None,
    now: datetime,
) -> LearnedForRound:
    """The learned soft filter for a round, or NOT_USED (no source, or the flag is off for all)."""
    if source is None:
        return NOT_USED
    on = flagged_therapists(therapists, flags)
    if not on:
        return NOT_USED
    keeps = learned_model(source).preference(now)

    def preference(therapist: TherapistCandidate, search: SearchCandidate) -> bool:
        return therapist.id not in on or keeps(therapist, search)

    return LearnedForRound(preference, on)
