"""Analytics use cases: ask the read-only `AnalyticsQueries` port for raw counts and shape them
into the answers staff read (`matching/domain/analytics.py`). Nothing is written or emitted."""

from __future__ import annotations

from datetime import datetime

from therapy_platform.matching.domain.analytics import (
    BundleEfficiency,
    BundleEfficiencyQuery,
    LearnedEstimate,
    PlacementQuery,
    Placements,
    PreferenceGroup,
    PreferenceGrouping,
    PreferenceQuery,
    bundle_efficiency,
    placements,
    preference_groups,
)
from therapy_platform.matching.domain.preferences import model_from_answers
from therapy_platform.matching.ports import AnalyticsQueries
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.rest.pagination import Page


def bundle_efficiency_report(
    queries: AnalyticsQueries, query: BundleEfficiencyQuery
) -> Outcome[BundleEfficiency]:
    return Outcome(bundle_efficiency(query, queries.bundle_counts(query)))


def therapist_preferences(
    queries: AnalyticsQueries, query: PreferenceQuery
) -> Outcome[Page[PreferenceGroup]]:
    total, tallies = queries.preference_tallies(query)
    groups = preference_groups(query, tallies)
    if query.learned and query.grouping is PreferenceGrouping.THERAPIST and groups:
        # The model over every answer so far, computed now (as a round computes it).
        model = model_from_answers(queries.preference_answers())
        groups = [
            group.model_copy(
                update={
                    "learned": [
                        LearnedEstimate(
                            feature=e.feature,
                            accepted=e.accepted,
                            answered=e.answered,
                            prior=round(e.prior, 4),
                            posterior=round(e.posterior, 4),
                        )
                        for e in model.estimates(group.therapist_id)
                    ]
                }
            )
            if group.therapist_id is not None
            else group
            for group in groups
        ]
    return Outcome(Page[PreferenceGroup](items=groups, total=total, page=query.page, limit=query.limit))


def placement_report(
    queries: AnalyticsQueries, query: PlacementQuery, *, now: datetime
) -> Outcome[Placements]:
    return Outcome(placements(query, queries.funnel(query), queries.waiting_longest(query), now=now))
