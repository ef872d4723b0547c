"""In-memory implementations of the communication service's ports, for fast unit tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from fakes import InMemoryOutbox
from therapy_platform.communication.domain.email_content import LegalNotice
from therapy_platform.communication.domain.emails import (
    DELIVERABLE_FROM,
    Addressing,
    DeliveryPolicy,
    Email,
    EmailStatus,
)
from therapy_platform.communication.ports import AttemptOutcome, DeliveryError, StartedAttempt
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases.emails import SenderContext
from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.ports import AfterCommit
from therapy_platform.platform.unit_of_work import AfterCommitHooks, RecordingOutbox

LEGAL = LegalNotice(
    organisation="Therapieplatz-Vermittlung Test e. V.",
    street="Lindenstraße 1",
    postcode_city="10969 Berlin",
    email="team@vermittlung.test",
)
ADDRESSING = Addressing(
    sender="Therapieplatz-Vermittlung <team@vermittlung.test>",
    reply_domain="antwort.vermittlung.test",
    staff_alert_recipient="alarm@vermittlung.test",
)


@dataclass
class Attempt:
    email_id: uuid.UUID
    attempt: int
    started_at: datetime
    outcome: AttemptOutcome | None = None
    error: str | None = None


@dataclass
class CommunicationDatabase:
    emails: dict[uuid.UUID, Email] = field(default_factory=dict)
    enqueued_at: dict[uuid.UUID, datetime] = field(default_factory=dict)
    attempts: dict[uuid.UUID, Attempt] = field(default_factory=dict)
    events: list[tuple[str, EventEnvelope]] = field(default_factory=list)
    down: bool = False  # every unit of work fails to start (database unreachable)
    down_for_next: int = 0  # the next N units of work fail to start
    publish: AfterCommit | None = None  # the units of work's after-commit hook (PublishNow)

    def event_types(self) -> list[str]:
        return [envelope.event_type for _, envelope in self.events]


class InMemoryEmails:
    def __init__(self, unit: InMemoryCommunicationUnitOfWork) -> None:
        self._unit = unit

    def _all(self) -> dict[uuid.UUID, Email]:
        return {**self._unit.database.emails, **self._unit.staged}

    def add(self, email: Email) -> bool:
        if email.idempotency_key and self.find_by_idempotency_key(email.idempotency_key):
            return False
        self._unit.staged[email.id] = email
        return True

    def get(self, email_id: uuid.UUID) -> Email | None:
        return self._all().get(email_id)

    def get_for_update(self, email_id: uuid.UUID) -> Email | None:
        return self.get(email_id)

    def find_by_idempotency_key(self, key: str) -> Email | None:
        return next((email for email in self._all().values() if email.idempotency_key == key), None)

    def get_many_for_update(self, email_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Email]:
        found = self._all()
        return {email_id: found[email_id] for email_id in email_ids if email_id in found}

    def update(self, email: Email) -> None:
        self._unit.staged[email.id] = email

    def update_many(self, emails: Sequence[Email]) -> None:
        for email in emails:
            self.update(email)

    def store_delivered(self, sent: Email, claim_token: uuid.UUID) -> Email | None:
        self._unit.attempts.finished(claim_token, "sent", sent.updated_at)
        current = self._all()[sent.id]
        if current.status not in DELIVERABLE_FROM:
            return None
        stored = sent.model_copy(
            update={"attempts": current.attempts, "interrupted_attempts": current.interrupted_attempts}
        )
        self.update(stored)
        return stored

    def mark_enqueued(self, email_ids: Sequence[uuid.UUID], at: datetime) -> None:
        for email_id in email_ids:
            self._unit.staged_enqueued[email_id] = at

    def due_for_requeue(self, *, now: datetime, offered_before: datetime, limit: int) -> list[uuid.UUID]:
        database = self._unit.database
        due = [
            email
            for email in self._all().values()
            if (
                (email.status is EmailStatus.QUEUED and (email.next_attempt_at or now) <= now)
                or (
                    email.status is EmailStatus.SENDING
                    and email.lease_until is not None
                    and email.lease_until <= now
                )
            )
            and database.enqueued_at.get(email.id, datetime.min.replace(tzinfo=UTC)) < offered_before
        ]
        return [email.id for email in sorted(due, key=lambda email: (email.created_at, email.id))][:limit]


class InMemoryAttempts:
    def __init__(self, unit: InMemoryCommunicationUnitOfWork) -> None:
        self._unit = unit

    def started(self, email_id: uuid.UUID, attempt: int, claim_token: uuid.UUID, at: datetime) -> None:
        self._unit.staged_attempts[claim_token] = Attempt(email_id, attempt, at)

    def started_many(self, attempts: Sequence[StartedAttempt]) -> None:
        for attempt in attempts:
            self.started(attempt.email_id, attempt.attempt, attempt.claim_token, attempt.at)

    def finished(
        self, claim_token: uuid.UUID, outcome: AttemptOutcome, at: datetime, error: str | None = None
    ) -> None:
        current = self._unit.staged_attempts.get(claim_token) or self._unit.database.attempts[claim_token]
        self._unit.staged_attempts[claim_token] = Attempt(
            current.email_id, current.attempt, current.started_at, outcome, error
        )


class InMemoryCommunicationUnitOfWork(AfterCommitHooks):
    """Stages writes and applies them only on commit, like a database transaction; then, like
    the SQL unit of work, hands the committed events to `database.publish` and runs the
    callbacks registered with `on_commit`."""

    emails: InMemoryEmails
    attempts: InMemoryAttempts

    def __init__(self, database: CommunicationDatabase) -> None:
        self.database = database
        self.publish = database.publish

    def __enter__(self) -> Self:
        if self.database.down or self.database.down_for_next > 0:
            self.database.down_for_next = max(0, self.database.down_for_next - 1)
            raise DependencyUnavailableError("the database cannot be reached right now")
        self.staged: dict[uuid.UUID, Email] = {}
        self.staged_enqueued: dict[uuid.UUID, datetime] = {}
        self.staged_attempts: dict[uuid.UUID, Attempt] = {}
        self.staged_events: list[tuple[str, EventEnvelope]] = []
        self.emails = InMemoryEmails(self)
        self.attempts = InMemoryAttempts(self)
        self.outbox = RecordingOutbox(InMemoryOutbox(self.staged_events))
        self._reset_hooks()
        return self

    def commit(self) -> None:
        self._apply()
        self._after_commit()

    def _apply(self) -> None:
        self.database.emails.update(self.staged)
        self.database.enqueued_at.update(self.staged_enqueued)
        self.database.attempts.update(self.staged_attempts)
        self.database.events.extend(self.staged_events)
        self.staged, self.staged_enqueued, self.staged_attempts = {}, {}, {}
        self.staged_events.clear()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.staged = {}


class FakeQueue:
    def __init__(self) -> None:
        self.messages: list[uuid.UUID] = []
        self.down = False

    def enqueue(self, email_ids: Sequence[uuid.UUID]) -> None:
        if self.down:
            raise ConnectionError("queue unreachable")
        self.messages.extend(email_ids)


class FakeTransport:
    """Delivers into `delivered` unless told to fail (`errors` are raised in order, one per send)."""

    def __init__(self) -> None:
        self.delivered: list[Email] = []
        self.errors: list[Exception] = []
        self.closed = 0

    def send(self, email: Email) -> str | None:
        if self.errors:
            raise self.errors.pop(0)
        self.delivered.append(email)
        return f"provider-{len(self.delivered)}"

    def close(self) -> None:
        self.closed += 1

    def copies_of(self, email_id: uuid.UUID) -> int:
        return sum(1 for email in self.delivered if email.id == email_id)


def transient(message: str = "SMTP server unreachable") -> DeliveryError:
    return DeliveryError(message, permanent=False)


def permanent(message: str = "SMTP 550 mailbox unknown") -> DeliveryError:
    return DeliveryError(message, permanent=True)


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    database: CommunicationDatabase
    transport: FakeTransport
    queue: FakeQueue
    clock: Clock
    context: SenderContext
    sleeps: list[float]


def world(policy: DeliveryPolicy | None = None, *, addressing: Addressing = ADDRESSING) -> World:
    database = CommunicationDatabase()
    transport, queue, clock = FakeTransport(), FakeQueue(), Clock()
    sleeps: list[float] = []
    context = SenderContext(
        unit_of_work=lambda: InMemoryCommunicationUnitOfWork(database),
        transport=transport,
        queue=queue,
        renderer=EmailRenderer(LEGAL),
        addressing=addressing,
        policy=policy or DeliveryPolicy(lease_seconds=60, retry_base_seconds=10, retry_max_seconds=600),
        clock=clock,
        sleep=sleeps.append,
    )
    return World(database, transport, queue, clock, context, sleeps)


QUEUE_ARN = "arn:aws:sqs:eu-central-1:000000000000:therapy-platform-local-emails"


def sqs_record(body: str, *, message_id: str | None = None, receive_count: int = 1) -> dict[str, object]:
    message_id = message_id or str(uuid.uuid4())
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1795330800000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795330800001",
        },
        "messageAttributes": {},
        "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "eu-central-1",
    }


def sqs_event(email_ids: Sequence[uuid.UUID]) -> dict[str, object]:
    """An SQS batch as the event source mapping delivers it, one send request per id."""
    return {"Records": [sqs_record(json.dumps({"email_id": str(email_id)})) for email_id in email_ids]}
