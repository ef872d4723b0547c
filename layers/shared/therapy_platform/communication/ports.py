"""Ports of the communication service: stored emails, the email queue and the mail transport."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol

from therapy_platform.communication.domain.emails import Email
from therapy_platform.platform.ports import UnitOfWork

AttemptOutcome = Literal["sent", "retry", "failed"]


class EmailRepository(Protocol):
    def add(self, email: Email) -> bool:
        """Store a new email. False (nothing written) when one with the same idempotency key
        exists already."""
        ...

    def get(self, email_id: uuid.UUID) -> Email | None: ...

    def get_for_update(self, email_id: uuid.UUID) -> Email | None:
        """Read and lock the row until the unit of work ends: a concurrent sender waits, then
        sees what this one decided."""
        ...

    def find_by_idempotency_key(self, key: str) -> Email | None: ...

    def update(self, email: Email) -> None: ...

    def mark_enqueued(self, email_ids: Sequence[uuid.UUID], at: datetime) -> None:
        """Remember when an email was last offered to the queue (the sweeper skips recent ones)."""
        ...

    def due_for_requeue(self, *, now: datetime, offered_before: datetime, limit: int) -> list[uuid.UUID]:
        """Queued emails that are due (or `sending` ones whose lease ran out) and were not offered
        to the queue since `offered_before`: their queue message may be lost."""
        ...


class DeliveryAttemptLog(Protocol):
    """One row per attempt to hand an email to the transport (who, when, what came of it)."""

    def started(self, email_id: uuid.UUID, attempt: int, claim_token: uuid.UUID, at: datetime) -> None: ...

    def finished(
        self, claim_token: uuid.UUID, outcome: AttemptOutcome, at: datetime, error: str | None = None
    ) -> None: ...


class CommunicationUnitOfWork(UnitOfWork, Protocol):
    @property
    def emails(self) -> EmailRepository: ...

    @property
    def attempts(self) -> DeliveryAttemptLog: ...


class EmailQueue(Protocol):
    """The queue the sender consumes (SQS): one message per email id."""

    def enqueue(self, email_ids: Sequence[uuid.UUID]) -> None: ...


class DeliveryError(Exception):
    """The transport did not deliver. `permanent`: retrying cannot help (address refused, mailbox
    unknown, message rejected); otherwise it may work later (server down, 4xx, throttling)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class MailTransport(Protocol):
    def send(self, email: Email) -> str | None:
        """Hand one email to the mail system. Returns the provider's message id if it has one;
        raises DeliveryError when it was not accepted."""
        ...

    def close(self) -> None:
        """Release connections (end of a batch)."""
        ...
