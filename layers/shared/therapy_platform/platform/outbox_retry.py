"""What the relay does with an outbox row the bus refused (pure; the clock is passed in).

- A refusal of the row itself (the bus took the others, or named this entry's error) counts as
  a failed attempt: the row waits min(2^attempts minutes, 1 hour) before it is tried again, so
  one poison row costs one publish now and then instead of one in every run.
- After `max_attempts` failed attempts the row is *parked*: never tried again until staff
  re-queue it, its `last_error` saying why (a short technical reason, never the payload).
- A transient failure (the bus unreachable or throttling) is not the row's fault: it keeps its
  attempts and stays due, so an outage of the bus never parks anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from therapy_platform.platform.ports import FailedAttempt, OutboxRecord, PublishOutcome

MAX_REASON_LENGTH: Final = 300
DEFAULT_MAX_ATTEMPTS: Final = 10
DEFAULT_RETENTION: Final = timedelta(days=7)


def short_reason(error: str | None) -> str:
    """The bus's error class and message on one line, truncated: a reason staff can read."""
    # Blank or whitespace-only text from the bus says nothing: staff still get a reason.
    reason = " ".join((error or "").split()) or "unknown error"
    if len(reason) <= MAX_REASON_LENGTH:
        return reason
    return reason[: MAX_REASON_LENGTH - 1] + "…"


@dataclass(frozen=True)
class OutboxRetryPolicy:
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    first_delay: timedelta = timedelta(minutes=2)
    max_delay: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay_after(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: first_delay doubling, at most max_delay."""
        exponent = max(0, min(attempts - 1, 30))  # 2^30 minutes is far past any sensible cap
        return min(self.first_delay * (1 << exponent), self.max_delay)

    def after_failure(self, record: OutboxRecord, outcome: PublishOutcome, now: datetime) -> FailedAttempt:
        reason = short_reason(outcome.error)
        if outcome.transient:
            return FailedAttempt(record.id, record.attempts, reason, next_attempt_at=None, parked_at=None)
        attempts = record.attempts + 1
        if attempts >= self.max_attempts:
            return FailedAttempt(record.id, attempts, reason, next_attempt_at=None, parked_at=now)
        return FailedAttempt(
            record.id, attempts, reason, next_attempt_at=now + self.delay_after(attempts), parked_at=None
        )
