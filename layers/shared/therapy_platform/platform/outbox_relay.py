"""Relay: moves unpublished outbox rows to the event bus. At-least-once: a row is marked
published only after the bus accepted it, so a crash in between re-publishes it (consumers
deduplicate by eventId)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from therapy_platform.platform.ports import EventPublisher, OutboxStore


@dataclass(frozen=True)
class RelayReport:
    published: int
    failed: int
    errors: tuple[str, ...] = ()


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
