"""The matching service's composition root: what its handlers use, wired from the environment.

`build()` is cheap (the engine, the bus client and the SQS client are created on first use), so
handler modules call it at import; unit tests build a `MatchingService` from in-memory fakes.
Deployed units of work publish the events they committed right after the commit (at most
`PUBLISH_NOW_LIMIT`: a national round's 40,000 are left to the scheduled relay).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from therapy_platform.matching.adapters.analytics import SqlAnalytics
from therapy_platform.matching.adapters.preference_answers import SqlPreferenceAnswers
from therapy_platform.matching.adapters.tables import MATCHING_SCHEMA
from therapy_platform.matching.adapters.unit_of_work import SqlMatchingUnitOfWork
from therapy_platform.matching.domain.models import MatchingConfig
from therapy_platform.matching.domain.monitoring import committed_event_measurements
from therapy_platform.matching.domain.read_models import PROFILE_EVENT_TYPES
from therapy_platform.matching.ports import AnalyticsQueries, MatchingUnitOfWork, PreferenceAnswers
from therapy_platform.matching.settings import MatchingSettings
from therapy_platform.matching.use_cases.bundles import BundleTimings
from therapy_platform.matching.use_cases.profile_events import apply_profile_event
from therapy_platform.platform.bootstrap import publish_after_commit, sqs_queues
from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.consumer import Handled, QueueConsumer, bus_consumer, once_per_event
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.events import BusMessage, EventEnvelope
from therapy_platform.platform.feature_flag_store import flags_from_env
from therapy_platform.platform.feature_flags import FlagEvaluator
from therapy_platform.platform.idempotency import SqlIdempotencyStore
from therapy_platform.platform.metrics import FlushedMetrics, RecordingMetrics, measured_after_commit
from therapy_platform.platform.metrics_emf import EmfMetrics

SETTINGS: Final = MatchingSettings.from_env()
PROFILE_CONSUMER: Final = "read-models"


@dataclass(frozen=True)
class MatchingService:
    unit_of_work: Callable[[], MatchingUnitOfWork]
    config: MatchingConfig = field(default_factory=MatchingConfig)
    timings: BundleTimings = field(default_factory=BundleTimings)
    clock: Callable[[], datetime] = utc_now
    send_round_immediately: bool = False  # what a scheduled round does with its bundles
    metrics: FlushedMetrics = field(default_factory=RecordingMetrics)  # handlers flush it
    # Feature flags the API's rounds and staff bundles ask (travel_time_reach); None: every
    # flag's fallback (the function has no flag store configured).
    flags: FlagEvaluator | None = None
    # The answers learned preferences are computed from (feature flag preference_aware_ordering).
    preferences: PreferenceAnswers | None = None


def matching_config(settings: MatchingSettings) -> MatchingConfig:
    return MatchingConfig(
        min_bundle_size=settings.min_bundle_size,
        max_bundle_size=settings.max_bundle_size,
        max_open_bundles_per_search=settings.max_open_bundles_per_search,
        cooling_days=settings.cooling_days,
    )


def build(settings: MatchingSettings = SETTINGS, *, pool_size: int = 1) -> MatchingService:
    """`pool_size` 2 for the round function: a national round reads its searches on a second
    connection while it decodes the therapists (adapters/round_inputs.py)."""
    metrics = EmfMetrics(MATCHING_SCHEMA)
    # Every committed bundle event is counted (sent, answered, expired, placements), whichever
    # function's use case wrote it; see docs/metrics.md.
    after_commit = measured_after_commit(
        publish_after_commit(MATCHING_SCHEMA), metrics, committed_event_measurements
    )

    def sql_unit_of_work() -> SqlMatchingUnitOfWork:
        return SqlMatchingUnitOfWork(default_engine(pool_size), publish=after_commit)

    return MatchingService(
        unit_of_work=sql_unit_of_work,
        metrics=metrics,
        config=matching_config(settings),
        timings=BundleTimings(
            reminder_after_days=settings.reminder_after_days, expire_after_days=settings.expire_after_days
        ),
        send_round_immediately=settings.send_round_immediately,
        flags=flags_from_env() if os.environ.get("FEATURE_FLAGS_STORE") else None,
        preferences=SqlPreferenceAnswers(default_engine),
    )


@dataclass(frozen=True)
class AnalyticsService:
    """What the analytics API function uses: read-only queries over the schema and a clock."""

    queries: AnalyticsQueries
    clock: Callable[[], datetime] = utc_now


def build_analytics() -> AnalyticsService:
    return AnalyticsService(queries=SqlAnalytics(default_engine))


def profile_event_consumer(
    service: MatchingService, settings: MatchingSettings = SETTINGS, *, logger: Any = None
) -> QueueConsumer[BusMessage]:
    """`patient.*` / `therapist.*` from the bus: each applied to the read models and reacted to in
    one transaction with the eventId claim (see use_cases/profile_events.py)."""

    def handle(uow: MatchingUnitOfWork, envelope: EventEnvelope) -> Handled:
        return apply_profile_event(uow, envelope, now=service.clock()).value

    handlers = once_per_event(
        PROFILE_CONSUMER,
        service.unit_of_work,
        dict.fromkeys(PROFILE_EVENT_TYPES, handle),
    )
    return bus_consumer(
        "matching-read-models",
        handlers,
        queues=sqs_queues,
        dead_letter_queue_url=settings.dead_letter_queue_url,
        **({"logger": logger} if logger is not None else {}),
    )


def idempotency_keys() -> SqlIdempotencyStore:
    """The `Idempotency-Key`s of this service's creating POSTs (table `idempotency_keys` in its schema)."""
    return SqlIdempotencyStore(default_engine, MATCHING_SCHEMA)
