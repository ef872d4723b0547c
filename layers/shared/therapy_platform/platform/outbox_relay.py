"""Relay: moves unpublished outbox rows to the event bus. At-least-once: a row is marked
published only after the bus accepted it, so a crash in between re-publishes it (consumers
deduplicate by eventId). A row the bus refuses backs off and is parked after too many attempts
(platform/outbox_retry.py); published rows are purged after a retention."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.outbox_retry import DEFAULT_RETENTION, OutboxRetryPolicy
from therapy_platform.platform.ports import (
    EventPublisher,
    OutboxRecord,
    OutboxStore,
    OutboxUpkeep,
    ParkedRow,
    PublishOutcome,
)

LOGGER = logging.getLogger(__name__)
# A transaction that wrote more events than this (a national round) leaves them to the relay:
# publishing them at once would hold the function.
PUBLISH_NOW_LIMIT: Final = 500
PURGE_BATCH_SIZE: Final = 1000
# The scheduled relay sends nothing more with less than this left before its timeout: one slice
# in flight then still ends in time (a PutEvents call: 5 s read timeout, one retry), and the
# accepted rows are marked. A batch cut off would be published again by the next run.
RELAY_MIN_TIME_LEFT_S: Final = 15.0
# Rows sent between two looks at the clock: the publisher's parallel calls' worth (8 x 10).
PUBLISH_SLICE: Final = 80


@dataclass(frozen=True)
class RelayReport:
    published: int
    failed: int
    errors: tuple[str, ...] = ()
    parked: int = 0  # rows parked by this run


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
    policy: OutboxRetryPolicy | None = None,
    clock: Callable[[], datetime] = utc_now,
    time_left_s: Callable[[], float] | None = None,
    min_time_left_s: float = 0.0,
    slice_size: int = PUBLISH_SLICE,
) -> RelayReport:
    """Claim up to `batch_size` due rows at a time (one statement), publish them `slice_size` at
    a time, mark the accepted ones, for at most `max_batches` batches.

    With `time_left_s` (a Lambda's remaining time), once less than `min_time_left_s` is left no
    batch is claimed and no further slice of a claimed batch is sent: its unsent rows stay due,
    untouched, for the next run. A batch cut off by the timeout instead would be on the bus but
    not marked, and published again by the next run (duplicates downstream)."""
    policy = policy or OutboxRetryPolicy()
    published = failed = parked = 0
    errors: list[str] = []

    def out_of_time() -> bool:
        return time_left_s is not None and time_left_s() < min_time_left_s

    for _ in range(max_batches):
        if out_of_time():
            break
        now = clock()
        with store.claim(batch_size, due_at=now, event_ids=event_ids) as batch:
            if not batch.records:
                break
            sent: list[OutboxRecord] = []
            outcomes: dict[int, PublishOutcome] = {}
            for start in range(0, len(batch.records), max(1, slice_size)):
                if start and out_of_time():
                    break
                part = batch.records[start : start + max(1, slice_size)]
                outcomes.update((outcome.record_id, outcome) for outcome in publisher.publish(part))
                sent.extend(part)
            for record in sent:  # no answer for a row: try it again, no fault of its own
                outcomes.setdefault(record.id, PublishOutcome(record.id, "MissingResult", transient=True))
            accepted = [record.id for record in sent if outcomes[record.id].error is None]
            refused = [
                policy.after_failure(record, outcomes[record.id], now)
                for record in sent
                if outcomes[record.id].error is not None
            ]
            batch.mark_published(accepted, now)
            batch.record_failures(refused)
        published += len(accepted)
        failed += len(refused)
        parked += sum(1 for failure in refused if failure.parked_at is not None)
        errors.extend(failure.last_error for failure in refused[:3])
        # Nothing got through (the bus is in trouble), we only had specific events to send, or
        # the time ran out mid-batch: stop; the next run goes on. A refused row among accepted
        # ones waits out its backoff.
        if (refused and not accepted) or event_ids is not None or len(sent) < len(batch.records):
            break
    return RelayReport(published, failed, tuple(errors[:5]), parked)


def purge_published(
    store: OutboxUpkeep,
    *,
    retention: timedelta = DEFAULT_RETENTION,
    batch_size: int = PURGE_BATCH_SIZE,
    max_batches: int = 20,
    clock: Callable[[], datetime] = utc_now,
) -> int:
    """Delete rows published longer than `retention` ago, in batches (short transactions);
    unpublished and parked rows stay. Returns how many went."""
    before = clock() - retention
    purged = 0
    for _ in range(max_batches):
        deleted = store.purge_published(before, batch_size)
        purged += deleted
        if deleted < batch_size:
            break
    return purged


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
            # One claim for all of them (up to `limit`): PutEvents calls go out in parallel.
            report = relay_outbox(
                self.store(), self.publisher(), event_ids=[e.event_id for e in events], batch_size=len(events)
            )
        except Exception:
            self.logger.warning("immediate publish failed; the scheduled relay will retry", exc_info=True)
            return
        if report.failed:
            self.logger.warning("events left in the outbox for the relay", extra={"errors": report.errors})


def parked_rows_as_json(rows: Sequence[ParkedRow]) -> list[dict[str, Any]]:
    """Parked rows for an operator: ids, type, attempts and reason; never the payload."""
    return [
        {
            "id": row.id,
            "event_id": str(row.event_id),
            "event_type": row.event_type,
            "created_at": row.created_at.isoformat(),
            "attempts": row.attempts,
            "parked_at": row.parked_at.isoformat(),
            "last_error": row.last_error,
        }
        for row in rows
    ]
