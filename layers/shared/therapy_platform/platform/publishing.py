"""Getting a service's events out. A use case writes each event into its service's outbox in
the same transaction as the change it describes (`record_event`); once that transaction has
committed, the unit of work's after-commit hook publishes it at once (platform/unit_of_work.py,
`PublishNow`), and the scheduled relay sends whatever that missed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from therapy_platform.platform.events import EventEnvelope, new_envelope
from therapy_platform.platform.ports import Outbox


def record_event(
    outbox: Outbox,
    event_type: str,
    *,
    producer: str,
    key: uuid.UUID,
    payload: dict[str, Any],
    now: datetime,
) -> EventEnvelope:
    """Write `event_type` about entity `key` into the outbox of the open unit of work; it is
    published only if that unit of work commits."""
    event = new_envelope(event_type, producer, payload, now=now)
    outbox.add(str(key), event)
    return event
