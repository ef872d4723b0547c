"""Outgoing emails of the communication service: their life cycle and the rules of delivery.

Status machine (`ALLOWED_TRANSITIONS`; anything else is a 409 naming both states):

    draft -> queued -> sending -> sent
                 ^        |  \\-> failed
                 \\--------/   (a transient error puts it back in the queue with a delay)
    failed -> queued   (staff send it again by hand)

Delivery rules chosen here (tested in tests/unit/test_email_domain.py):
- **One copy per email.** A sender *claims* an email before handing it to the mail transport:
  the claim is a status change to `sending` with a random token and a lease. A second sender
  (a redelivered or duplicated queue message, a concurrent worker) finds the email `sending`
  with a live lease, or already `sent`, and sends nothing.
- A sender that dies after claiming leaves the lease to run out; the next delivery of the
  queue message claims the email again (`interrupted_attempts` + 1) and sends it with the
  same Message-ID. That is the one window in which a second copy is possible: a crash after
  the mail server accepted the message and before `sent` was committed. Mail clients that
  deduplicate by Message-ID collapse that copy; staff can see the email was interrupted.
- Transient errors (server unreachable, 4xx) count as an attempt and retry after
  `retry_delay_seconds` (exponential, capped); after `max_attempts` attempts, or at once on a
  permanent error (5xx: mailbox does not exist, address refused), the email is `failed`.
- Replies are matched by the Reply-To address, which carries the bundle reference
  (`antwort+B123@<reply domain>`), and by the Message-ID (`<B123.<email id>@<reply domain>>`)
  that replies quote in In-Reply-To / References.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from therapy_platform.contracts import communication as contract
from therapy_platform.contracts.communication import EmailStatusChanged
from therapy_platform.platform.errors import ConflictError

PRODUCER: Final = "communication-service"

DEFAULT_MAX_ATTEMPTS: Final = 8
MAX_ERROR_LENGTH: Final = 2000
BUNDLE_REFERENCE_PATTERN: Final = r"^B[1-9][0-9]{0,11}$"

BundleReference = Annotated[str, StringConstraints(pattern=BUNDLE_REFERENCE_PATTERN)]
EmailAddress = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=254, pattern=r"^[^@\s<>\",;]+@[^@\s<>\",;]+\.[^@\s<>\",;]+$"
    ),
]
# A display name travels in a header: no line breaks, ever.
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300, pattern=r"^[^\r\n]*$")]


def bundle_reference(bundle_number: int) -> str:
    """The reference staff, therapists and replies use for a bundle: `B<number>`."""
    if bundle_number < 1:
        raise ValueError("a bundle number is positive")
    return f"B{bundle_number}"


class EmailKind(StrEnum):
    BUNDLE_INQUIRY = "bundle_inquiry"
    BUNDLE_REMINDER = "bundle_reminder"
    WITHDRAWAL_NOTICE = "withdrawal_notice"
    PATIENT_SEARCH_STARTED = "patient_search_started"
    PATIENT_PLACE_FOUND = "patient_place_found"
    PATIENT_REGISTRATION_CONFIRMED = "patient_registration_confirmed"
    STAFF_CONFLICT_ALERT = "staff_conflict_alert"
    STAFF_UNKNOWN_LOCATION_ALERT = "staff_unknown_location_alert"
    STAFF_SEND_FAILED_ALERT = "staff_send_failed_alert"
    AD_HOC = "ad_hoc"


STAFF_ALERT_KINDS: Final = frozenset(
    {
        EmailKind.STAFF_CONFLICT_ALERT,
        EmailKind.STAFF_UNKNOWN_LOCATION_ALERT,
        EmailKind.STAFF_SEND_FAILED_ALERT,
    }
)


class RecipientType(StrEnum):
    THERAPIST = "therapist"
    PATIENT = "patient"
    STAFF = "staff"


class EmailStatus(StrEnum):
    DRAFT = "draft"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


ALLOWED_TRANSITIONS: Final[dict[EmailStatus, frozenset[EmailStatus]]] = {
    EmailStatus.DRAFT: frozenset({EmailStatus.QUEUED}),
    EmailStatus.QUEUED: frozenset({EmailStatus.SENDING}),
    EmailStatus.SENDING: frozenset({EmailStatus.SENT, EmailStatus.FAILED, EmailStatus.QUEUED}),
    EmailStatus.SENT: frozenset(),
    EmailStatus.FAILED: frozenset({EmailStatus.QUEUED}),
}


# The states a sender's successful send is recorded from: its own claim (`sending`), or
# `queued` when its lease ran out and another sender put the email back in the queue. From
# `sent` or `failed` (another sender finished it) nothing is recorded again.
DELIVERABLE_FROM: Final = frozenset({EmailStatus.SENDING, EmailStatus.QUEUED})


class EmailStatusConflictError(ConflictError):
    pass


def check_transition(current: EmailStatus, target: EmailStatus) -> None:
    if target not in ALLOWED_TRANSITIONS[current]:
        raise EmailStatusConflictError(
            f"an email cannot go from {current.value!r} to {target.value!r}",
            details={"current": current.value, "requested": target.value},
        )


def retry_delay_seconds(attempt: int, *, base: int, cap: int) -> int:
    """Wait before attempt `attempt + 1` after `attempt` failed: base, 2*base, 4*base ... <= cap."""
    exponent = max(0, min(attempt - 1, 30))
    return int(min(cap, base * (2**exponent)))


# --------------------------------------------------------------------------- reply matching


def reply_address(reply_domain: str, bundle_ref: str | None, *, local_part: str = "antwort") -> str:
    """Where replies go: `antwort+B123@domain` for a bundle's emails, else `antwort@domain`."""
    return f"{local_part}+{bundle_ref}@{reply_domain}" if bundle_ref else f"{local_part}@{reply_domain}"


_REPLY_TAG = re.compile(r"^[^@+]+\+(B[1-9][0-9]{0,11})@", re.IGNORECASE)
_MESSAGE_ID_TAG = re.compile(r"<(B[1-9][0-9]{0,11})\.[0-9a-f-]{36}@", re.IGNORECASE)


def bundle_reference_in_address(address: str) -> str | None:
    """The bundle reference a reply address carries (`antwort+B123@...` -> `B123`), if any."""
    match = _REPLY_TAG.match(address.strip())
    return match[1].upper() if match else None


def bundle_reference_in_message_ids(header: str) -> str | None:
    """The first bundle reference in a Message-ID list (In-Reply-To / References of a reply)."""
    match = _MESSAGE_ID_TAG.search(header)
    return match[1].upper() if match else None


def message_id_for(email_id: uuid.UUID, domain: str, bundle_ref: str | None) -> str:
    """A Message-ID fixed when the email is queued, so every retry carries the same one."""
    return f"<{bundle_ref}.{email_id}@{domain}>" if bundle_ref else f"<{email_id}@{domain}>"


# --------------------------------------------------------------------------- the email


class OutgoingEmail(BaseModel):
    """A rendered email about to be stored: who gets it, what it says, what it belongs to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: EmailKind
    recipient: EmailAddress
    recipient_name: DisplayName | None = None
    recipient_type: RecipientType
    recipient_id: uuid.UUID | None = None
    subject: Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=r"^[^\r\n]*$")]
    html: str
    text: str
    bundle_id: uuid.UUID | None = None
    bundle_reference: BundleReference | None = None
    # Callers that may run twice for one cause (a redelivered event) pass a key: the second
    # call finds the first email instead of writing another one.
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1, le=50)


class Addressing(BaseModel):
    """Who our emails come from, where replies go, who hears about failures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sender: Annotated[str, StringConstraints(min_length=3, max_length=400, pattern=r"^[^\r\n]+@[^\r\n]+$")]
    reply_domain: Annotated[
        str, StringConstraints(min_length=3, max_length=200, pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
    ]
    reply_local_part: Annotated[str, StringConstraints(pattern=r"^[a-z0-9._-]{1,40}$")] = "antwort"
    staff_alert_recipient: EmailAddress | None = None


class DeliveryPolicy(BaseModel):
    """How hard the sender tries (settings: EMAIL_* variables)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Longer than one attempt can take (the transport's timeout), shorter than the queue's
    # visibility timeout, so a redelivered message finds the lease of a dead sender expired.
    lease_seconds: int = Field(default=120, ge=1, le=3600)
    retry_base_seconds: int = Field(default=30, ge=1, le=3600)
    retry_max_seconds: int = Field(default=3600, ge=1, le=43200)
    # A queued email not offered to the queue for this long is offered again by the sweeper.
    requeue_after_seconds: int = Field(default=900, ge=60, le=86400)

    def retry_delay(self, attempt: int) -> int:
        return retry_delay_seconds(attempt, base=self.retry_base_seconds, cap=self.retry_max_seconds)


class ClaimRefusal(StrEnum):
    """Why a sender must not send an email now."""

    DONE = "done"  # sent or failed: nothing to do, ever
    IN_PROGRESS = "in_progress"  # another sender holds a live lease
    NOT_DUE = "not_due"  # waiting for its retry time
    NOT_QUEUED = "not_queued"  # still a draft


class Email(BaseModel):
    """A stored email and its delivery state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    kind: EmailKind
    recipient: str
    recipient_name: str | None = None
    recipient_type: RecipientType
    recipient_id: uuid.UUID | None = None
    sender: str
    subject: str
    html: str
    text: str
    status: EmailStatus
    attempts: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    interrupted_attempts: int = 0
    last_error: str | None = None
    message_id: str
    reply_to: str | None = None
    provider_message_id: str | None = None
    bundle_id: uuid.UUID | None = None
    bundle_reference: str | None = None
    idempotency_key: str | None = None
    claim_token: uuid.UUID | None = None
    lease_until: datetime | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime
    queued_at: datetime | None = None
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    updated_at: datetime

    @classmethod
    def draft(
        cls,
        outgoing: OutgoingEmail,
        addressing: Addressing,
        *,
        now: datetime,
        email_id: uuid.UUID | None = None,
    ) -> Self:
        email_id = email_id or uuid.uuid4()
        bundle_ref = outgoing.bundle_reference
        return cls(
            id=email_id,
            **outgoing.model_dump(),
            sender=addressing.sender,
            status=EmailStatus.DRAFT,
            message_id=message_id_for(email_id, addressing.reply_domain, bundle_ref),
            reply_to=reply_address(
                addressing.reply_domain, bundle_ref, local_part=addressing.reply_local_part
            ),
            created_at=now,
            updated_at=now,
        )

    def _to(self, status: EmailStatus, now: datetime, **changes: object) -> Self:
        check_transition(self.status, status)
        return self.model_copy(update={"status": status, "updated_at": now, **changes})

    def queued(self, now: datetime) -> Self:
        """Ready for the sender (from a draft, or a failed email staff send again)."""
        return self._to(
            EmailStatus.QUEUED,
            now,
            queued_at=now,
            next_attempt_at=None,
            failed_at=None,
            attempts=0 if self.status is EmailStatus.FAILED else self.attempts,
        )

    def claim_refusal(self, now: datetime) -> ClaimRefusal | None:
        """None when a sender may claim the email now; otherwise why not."""
        if self.status in (EmailStatus.SENT, EmailStatus.FAILED):
            return ClaimRefusal.DONE
        if self.status is EmailStatus.DRAFT:
            return ClaimRefusal.NOT_QUEUED
        if self.status is EmailStatus.SENDING:
            assert self.lease_until is not None
            return ClaimRefusal.IN_PROGRESS if self.lease_until > now else None
        if self.next_attempt_at is not None and self.next_attempt_at > now:
            return ClaimRefusal.NOT_DUE
        return None

    def wait_seconds(self, now: datetime) -> int:
        """How long a refused sender should wait before looking again (at least 1 s)."""
        until = self.lease_until if self.status is EmailStatus.SENDING else self.next_attempt_at
        if until is None:
            return 1
        return max(1, int((until - now).total_seconds()) + 1)

    def claimed(self, now: datetime, token: uuid.UUID, lease_seconds: int) -> Self:
        """Taken by one sender for one attempt. Raises ConflictError if it may not be taken."""
        refusal = self.claim_refusal(now)
        if refusal is not None:
            raise EmailStatusConflictError(
                f"email {self.id} cannot be claimed: {refusal.value}", details={"reason": refusal.value}
            )
        # A claim whose lease ran out means the previous sender died mid-attempt.
        interrupted = self.status is EmailStatus.SENDING
        updated = self.model_copy(
            update={
                "status": EmailStatus.QUEUED,
                "interrupted_attempts": self.interrupted_attempts + (1 if interrupted else 0),
            }
        )
        return updated._to(
            EmailStatus.SENDING,
            now,
            attempts=self.attempts + 1,
            claim_token=token,
            lease_until=now + timedelta(seconds=lease_seconds),
            next_attempt_at=None,
        )

    def delivered(self, now: datetime, provider_message_id: str | None) -> Self:
        """Accepted by the mail system. Also from `queued`: a sender whose lease ran out reports
        success after another sender had put the email back in the queue; it did go out."""
        current = self
        if self.status is EmailStatus.QUEUED:
            current = self.model_copy(update={"status": EmailStatus.SENDING})
        return current._to(
            EmailStatus.SENT,
            now,
            sent_at=now,
            provider_message_id=provider_message_id,
            last_error=None,
            claim_token=None,
            lease_until=None,
        )

    @property
    def attempts_left(self) -> bool:
        return self.attempts < self.max_attempts

    def retry_later(self, now: datetime, error: str, delay_seconds: int) -> Self:
        return self._to(
            EmailStatus.QUEUED,
            now,
            last_error=error[:MAX_ERROR_LENGTH],
            next_attempt_at=now + timedelta(seconds=delay_seconds),
            claim_token=None,
            lease_until=None,
        )

    def given_up(self, now: datetime, error: str) -> Self:
        return self._to(
            EmailStatus.FAILED,
            now,
            failed_at=now,
            last_error=error[:MAX_ERROR_LENGTH],
            claim_token=None,
            lease_until=None,
        )

    def event_payload(self) -> dict[str, object]:
        """What `email.*` events say (the contract `EmailStatusChanged`): never the address, the
        subject or the body (personal data stays in the communication service)."""
        return EmailStatusChanged(
            email_id=self.id,
            kind=contract.EmailKind(self.kind.value),
            status=contract.EmailStatus(self.status.value),
            recipient_type=contract.RecipientType(self.recipient_type.value),
            recipient_id=self.recipient_id,
            bundle_id=self.bundle_id,
            bundle_reference=self.bundle_reference,
            message_id=self.message_id,
            attempts=self.attempts,
            error=self.last_error if self.status is EmailStatus.FAILED else None,
            at=self.updated_at,
        ).model_dump(mode="json")


EVENT_BY_STATUS: Final = {
    EmailStatus.QUEUED: "email.queued",
    EmailStatus.SENT: "email.sent",
    EmailStatus.FAILED: "email.failed",
}


class SendRequest(BaseModel):
    """The body of a message on the email queue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email_id: uuid.UUID
