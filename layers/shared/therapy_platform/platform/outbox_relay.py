"""Relay: moves unpublished outbox rows to the event bus. At-least-once: a row is marked
published only after the bus accepted it, so a crash in between re-publishes it (consumers
deduplicate by eventId)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.ports import EventPublisher, OutboxStore

LOGGER = logging.getLogger(__name__)
# A transaction that wrote more events than this (a national round) leaves them to the relay:
# publishing them at once would hold the function.
PUBLISH_NOW_LIMIT: Final = 500


@dataclass(frozen=True)
class RelayReport:
    published: int
    failed: int
    errors: tuple[str, ...] = ()


def outbox_lag_seconds(oldest_unpublished_at: datetime | None, now: datetime) -> float:
    """The age of the oldest unpublished row (0 when everything is published): the metric
    `OutboxLag` an operator alarms on, since the after-commit publish leaves rows only when the
    bus was unreachable or a transaction wrote a national round."""
    if oldest_unpublished_at is None:
        return 0.0
    return max(0.0, round((now - oldest_unpublished_at).total_seconds(), 3))


def relay_outbox(
    store: OutboxStore,
    publisher: EventPublisher,
    *,
    batch_size: int = 100,
    max_batches: int = 50,
    event_ids: Sequence[uuid.UUID] | None = None,
) -> RelayReport:
    published = failed = 0
    errors: list[str] = []
    for _ in range(max_batches):
        with store.claim(batch_size, event_ids=event_ids) as batch:
            if not batch.records:
                break
            outcomes = publisher.publish(batch.records)
            accepted = [outcome.record_id for outcome in outcomes if outcome.error is None]
            refused = [outcome for outcome in outcomes if outcome.error is not None]
            batch.mark_published(accepted)
            batch.record_failures(refused)
        published += len(accepted)
        failed += len(refused)
        errors.extend(outcome.error for outcome in refused[:3] if outcome.error)
        # The bus is in trouble or we only had specific events to send: stop; the next run retries.
        if refused or event_ids is not None:
            break
    return RelayReport(published, failed, tuple(errors[:5]))


@dataclass
class PublishNow:
    """The after-commit hook of a deployed unit of work: publishes the events a request (or job)
    just committed without waiting for the scheduled relay. Best effort: if the bus is unreachable
    the rows stay in the outbox for the relay, and the request still succeeds. More than `limit`
    events (a national round) would hold the function: the relay sweeps those."""

    store: Callable[[], OutboxStore]
    publisher: Callable[[], EventPublisher]
    limit: int = PUBLISH_NOW_LIMIT
    logger: logging.Logger = LOGGER

    def __call__(self, events: Sequence[EventEnvelope]) -> None:
        if not events or len(events) > self.limit:
            return
        try:
            report = relay_outbox(self.store(), self.publisher(), event_ids=[e.event_id for e in events])
        except Exception:
            self.logger.warning("immediate publish failed; the scheduled relay will retry", exc_info=True)
            return
        if report.failed:
            self.logger.warning("events left in the outbox for the relay", extra={"errors": report.errors})
