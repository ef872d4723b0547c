"""The one result shape of every use case: its value, and the events its transaction committed
(already in the outbox and handed to the unit of work's after-commit hook; callers only read
them, for logs and tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from therapy_platform.platform.events import EventEnvelope

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T
    events: tuple[EventEnvelope, ...] = ()
