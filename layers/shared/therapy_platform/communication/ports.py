"""Ports of the communication service: its unit of work and repositories (emails and their
delivery attempts; bundles it tracks, phone-call tasks, contacts fed by events, replies, the
email history, the audit log), the email queue, the mail transport and the reply inbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from therapy_platform.communication.domain.email_content import TherapistContact
from therapy_platform.communication.domain.emails import Email, RecipientType
from therapy_platform.communication.domain.patient_erasure import ErasureReport, HeldValues
from therapy_platform.communication.domain.phone_calls import PhoneCallQuery, PhoneCallTask
from therapy_platform.communication.domain.replies import AnsweredEmail, InboundReply, ReviewedReply
from therapy_platform.communication.domain.staff_emails import EmailDetail, EmailQuery, EmailSummary
from therapy_platform.communication.domain.therapist_erasure import TherapistErasureCounts
from therapy_platform.communication.domain.tracking import (
    EmailHistoryItem,
    PatientContactState,
    TrackedBundle,
)
from therapy_platform.contracts.erasure import ErasureTerms
from therapy_platform.platform.ports import ProcessedEvents, UnitOfWork

AttemptOutcome = Literal["sent", "retry", "failed"]

# --------------------------------------------------------------------------- emails


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

    def get_many_for_update(self, email_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Email]:
        """Read and lock the rows of the emails that exist (in id order, so two senders over
        overlapping batches cannot deadlock), by id."""
        ...

    def update(self, email: Email) -> None: ...

    def update_many(self, emails: Sequence[Email]) -> None:
        """`update` for many emails at once (one statement)."""
        ...

    def store_delivered(self, sent: Email, claim_token: uuid.UUID) -> Email | None:
        """Record a successful send in one statement: finish the attempt of `claim_token` as
        sent, and store `sent` (the sender's claimed copy, delivered) if the stored email is
        still in one of `DELIVERABLE_FROM`. Returns `sent` with the attempt counts as stored,
        or None when another sender had finished the email meanwhile (nothing stored)."""
        ...

    def mark_enqueued(self, email_ids: Sequence[uuid.UUID], at: datetime) -> None:
        """Remember when an email was last offered to the queue (the sweeper skips recent ones)."""
        ...

    def due_for_requeue(self, *, now: datetime, offered_before: datetime, limit: int) -> list[uuid.UUID]:
        """Queued emails that are due (or `sending` ones whose lease ran out) and were not offered
        to the queue since `offered_before`: their queue message may be lost."""
        ...


@dataclass(frozen=True)
class StartedAttempt:
    email_id: uuid.UUID
    attempt: int
    claim_token: uuid.UUID
    at: datetime


class DeliveryAttemptLog(Protocol):
    """One row per attempt to hand an email to the transport (who, when, what came of it)."""

    def started(self, email_id: uuid.UUID, attempt: int, claim_token: uuid.UUID, at: datetime) -> None: ...

    def started_many(self, attempts: Sequence[StartedAttempt]) -> None:
        """`started` for many attempts at once (one statement)."""
        ...

    def finished(
        self, claim_token: uuid.UUID, outcome: AttemptOutcome, at: datetime, error: str | None = None
    ) -> None: ...


class EmailUnitOfWork(UnitOfWork, Protocol):
    """What storing and sending emails needs of a transaction."""

    @property
    def emails(self) -> EmailRepository: ...

    @property
    def attempts(self) -> DeliveryAttemptLog: ...


# --------------------------------------------------------------------------- follow-up


class TrackedBundles(Protocol):
    def get(self, bundle_id: uuid.UUID, *, for_update: bool = False) -> TrackedBundle | None: ...

    def by_reference(self, reference: str) -> TrackedBundle | None: ...

    def save(self, bundle: TrackedBundle) -> None:
        """Insert or replace the record."""
        ...

    def due_for_reminder(self, *, sent_before: datetime, limit: int) -> list[uuid.UUID]:
        """Sent no later than `sent_before`, neither answered nor expired, no reminder yet."""
        ...

    def with_member(self, therapist_id: uuid.UUID, search_id: uuid.UUID) -> TrackedBundle | None:
        """The newest bundle to this therapist that listed this search."""
        ...

    def latest_to(self, therapist_id: uuid.UUID) -> TrackedBundle | None:
        """The newest sent bundle to this therapist (its addressee data)."""
        ...


class PhoneCalls(Protocol):
    def lock_schedule(self) -> None:
        """Serialise slot planning until the unit of work ends (two planners never pick the
        same free slot; the unique index would refuse the second anyway)."""
        ...

    def taken_slots(self, start: datetime, end: datetime) -> set[datetime]: ...

    def add(self, task: PhoneCallTask) -> bool:
        """False (nothing written) when a task with the same idempotency key exists."""
        ...

    def find_by_idempotency_key(self, key: str) -> PhoneCallTask | None: ...

    def get(self, task_id: uuid.UUID, *, for_update: bool = False) -> PhoneCallTask | None: ...

    def update(self, task: PhoneCallTask) -> None: ...

    def cancel_scheduled_for_bundle(self, bundle_id: uuid.UUID, at: datetime) -> list[uuid.UUID]: ...

    def find(self, query: PhoneCallQuery) -> tuple[list[PhoneCallTask], int]: ...

    def for_bundle(self, reference: str, limit: int) -> list[PhoneCallTask]: ...

    def for_therapist(self, therapist_id: uuid.UUID, limit: int) -> tuple[list[PhoneCallTask], int]:
        """The newest `limit` calls to this therapist (by creation), and how many there are."""
        ...


class ContactDirectory(Protocol):
    """Contact data looked up when needed in the services that own it (adapters/
    contact_directory.py); the communication service keeps no copies fed by events."""

    def patient(self, patient_id: uuid.UUID) -> PatientContactState: ...

    def therapist(self, therapist_id: uuid.UUID) -> TherapistContact | None: ...

    def knows_therapist(self, therapist_id: uuid.UUID) -> bool:
        """Whether the therapist service knows this id (an erased therapist included)."""
        ...


class Replies(Protocol):
    def add(self, reply: InboundReply) -> bool:
        """False when a reply with this Message-ID is stored already."""
        ...

    def review(self, item: ReviewedReply) -> bool:
        """Put a message on the staff review list. False when the message at this inbox key is
        there already (taken in again after a crash)."""
        ...

    def reviews(self, *, page: int, limit: int) -> tuple[list[ReviewedReply], int]:
        """One page of the review list, newest first, and how many there are."""
        ...

    def for_bundle(self, reference: str, limit: int) -> list[InboundReply]: ...

    def for_person(
        self, recipient_type: RecipientType, person_id: uuid.UUID, limit: int
    ) -> tuple[list[InboundReply], int]:
        """The newest `limit` replies to this person's emails (for a therapist also replies
        naming one of their bundles), and how many there are."""
        ...


class EmailHistory(Protocol):
    def for_bundle(self, reference: str, limit: int) -> list[EmailHistoryItem]: ...

    def for_person(
        self, recipient_type: RecipientType, person_id: uuid.UUID, limit: int
    ) -> tuple[list[EmailHistoryItem], int]:
        """The newest `limit` emails to this person (no bodies), and how many there are."""
        ...

    def find(self, query: EmailQuery) -> tuple[list[EmailSummary], int]:
        """One page of the emails matching the filters, newest first, and how many match."""
        ...

    def detail(self, email_id: uuid.UUID) -> EmailDetail | None:
        """One email with its bodies and delivery attempts (oldest attempt first)."""
        ...

    def answered(self, message_ids: Sequence[str]) -> AnsweredEmail | None:
        """The email the first of these Message-IDs names, if it is one of ours."""
        ...

    def redact_patient(self, patient_id: uuid.UUID, at: datetime) -> int:
        """Erase address and content of the emails to an erased patient (kept: kind, status,
        times). Returns how many."""
        ...


class CommunicationAuditLog(Protocol):
    def record(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        entity_type: str,
        entity_id: uuid.UUID,
        detail: dict[str, Any] | None = None,
    ) -> None: ...


class CommunicationUnitOfWork(EmailUnitOfWork, Protocol):
    """The communication service's transaction: emails plus everything it keeps to follow up,
    and the eventId claims of its event consumer (`processed_events`, platform runtime)."""

    @property
    def processed_events(self) -> ProcessedEvents: ...

    @property
    def bundles(self) -> TrackedBundles: ...

    @property
    def calls(self) -> PhoneCalls: ...

    @property
    def contacts(self) -> ContactDirectory: ...

    @property
    def replies(self) -> Replies: ...

    @property
    def history(self) -> EmailHistory: ...

    @property
    def audit(self) -> CommunicationAuditLog: ...

    @property
    def patient_erasure(self) -> PatientErasure: ...

    @property
    def therapist_erasure(self) -> TherapistErasure: ...


class TherapistErasure(Protocol):
    """Scrubbing an erased therapist's data (communication/adapters/therapist_erasure.py)."""

    def erase(self, therapist_id: uuid.UUID, *, at: datetime) -> TherapistErasureCounts: ...

    def was_erased(self, therapist_id: uuid.UUID) -> bool:
        """Whether this service has erased the therapist (its audit log says so)."""
        ...


# --------------------------------------------------------------------------- the outside world


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


@dataclass(frozen=True)
class InboxEntry:
    """A message waiting in the inbox, before it is read."""

    key: str
    size: int
    received_at: datetime


class ReplyInbox(Protocol):
    """Where replies arrive: locally the SMTP server's Maildir, in AWS SES receiving -> S3.
    Messages are listed first and read one at a time, never all at once."""

    def pending(self, limit: int) -> list[InboxEntry]:
        """Messages not yet taken in, oldest first (their size, not their content)."""
        ...

    def read(self, key: str, max_bytes: int) -> bytes | None:
        """The message's bytes, at most `max_bytes + 1` of them (more: it is over the cap);
        None when it is gone meanwhile (taken by a concurrent intake)."""
        ...

    def done(self, key: str, *, stored: bool) -> None:
        """The message was taken in (`stored`: it was a reply) or looked at and left out;
        either way it is not offered again."""
        ...


# --------------------------------------------------------------------------- patient erasure
# (domain/patient_erasure.py, adapters/patient_erasure.py)


class StoredMail(Protocol):
    """Raw reply mails the service keeps after taking them in (S3 `processed/`, locally the
    Maildir's `cur/`)."""

    def keys(self) -> Iterable[str]: ...

    def read(self, key: str) -> bytes | None:
        """The raw message; None when it is gone."""
        ...

    def delete(self, key: str) -> None: ...


class PatientErasure(Protocol):
    """Erases one patient from the service's own tables (inside the unit of work)."""

    def held_values(self, patient_id: uuid.UUID) -> HeldValues: ...

    def erase(
        self,
        patient_id: uuid.UUID,
        terms: ErasureTerms,
        *,
        at: datetime,
        search_ids: Sequence[uuid.UUID] = (),
    ) -> ErasureReport: ...
