"""Email use cases: compose an email from its content, queue it, and send one queued email.

Queueing stores the email and its `email.queued` event in one transaction, then puts the email
id on the queue. If the queue cannot take it, the email is still stored; the sweeper
(`requeue_stale_emails`, scheduled) offers it again, so nothing is lost between the two.

Sending (`send_email`) runs per queue message, at least once per message:
1. claim: lock the row, let the domain decide (`Email.claim_refusal`), store `sending` with a
   fresh token and lease, log the attempt, commit. A redelivered message or a concurrent
   sender now finds `sending` (or `sent`) and sends nothing;
2. hand the email to the transport (no transaction open);
3. record the outcome with its event: `sent` (email.sent), a retry with backoff, or `failed`
   (email.failed, plus a staff alert email queued in the same transaction).
See domain/emails.py for the one window in which a second copy is possible.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from therapy_platform.communication.domain.email_content import EmailContent, SendFailedAlert
from therapy_platform.communication.domain.emails import (
    EVENT_BY_STATUS,
    PRODUCER,
    STAFF_ALERT_KINDS,
    Addressing,
    ClaimRefusal,
    DeliveryPolicy,
    Email,
    EmailStatus,
    OutgoingEmail,
    RecipientType,
)
from therapy_platform.communication.ports import (
    CommunicationUnitOfWork,
    DeliveryError,
    EmailQueue,
    MailTransport,
)
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.publishing import record_event


def compose(
    renderer: EmailRenderer,
    content: EmailContent,
    *,
    recipient: str,
    recipient_type: RecipientType,
    recipient_name: str | None = None,
    recipient_id: uuid.UUID | None = None,
    bundle_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
) -> OutgoingEmail:
    """Render `content` into an email to one recipient. The bundle reference of bundle emails is
    taken from the content, so subject, Reply-To and Message-ID always agree."""
    rendered = renderer.render(content)
    bundle_ref = getattr(content, "bundle_reference", None)
    return OutgoingEmail(
        kind=content.kind,
        recipient=recipient,
        recipient_name=recipient_name,
        recipient_type=recipient_type,
        recipient_id=recipient_id,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        bundle_id=bundle_id,
        bundle_reference=bundle_ref if isinstance(bundle_ref, str) else None,
        idempotency_key=idempotency_key,
    )


def _record(uow: CommunicationUnitOfWork, email: Email) -> None:
    record_event(
        uow.outbox,
        EVENT_BY_STATUS[email.status],
        producer=PRODUCER,
        key=email.id,
        payload=email.event_payload(),
        now=email.updated_at,
    )


def _store_queued(
    uow: CommunicationUnitOfWork, outgoing: OutgoingEmail, addressing: Addressing, now: datetime
) -> tuple[Email, bool]:
    """Store a new queued email with its event (the caller commits). Returns the existing email
    and False when one with the same idempotency key was stored before."""
    email = Email.draft(outgoing, addressing, now=now).queued(now)
    if uow.emails.add(email):
        _record(uow, email)
        return email, True
    assert outgoing.idempotency_key is not None
    existing = uow.emails.find_by_idempotency_key(outgoing.idempotency_key)
    assert existing is not None
    return existing, False


def _offer(
    unit_of_work: Callable[[], CommunicationUnitOfWork],
    queue: EmailQueue,
    emails: Sequence[Email],
    now: datetime,
) -> bool:
    """Put queued emails on the queue. False if the queue refused: the sweeper tries again."""
    ids = [email.id for email in emails if email.status is EmailStatus.QUEUED]
    if not ids:
        return True
    try:
        queue.enqueue(ids)
    except Exception:  # any queue failure: the email is safe in the database
        return False
    with unit_of_work() as uow:
        uow.emails.mark_enqueued(ids, now)
        uow.commit()
    return True


def stage_email(
    uow: CommunicationUnitOfWork, outgoing: OutgoingEmail, addressing: Addressing, *, now: datetime
) -> tuple[Email, bool]:
    """`queue_email` inside the caller's open unit of work, for use cases that change more than
    the email (an event's effects commit together): stores the queued email and its
    `email.queued` event; the caller commits, then hands the emails to `offer_emails`. Returns
    the existing email and False when one with the same idempotency key was stored before."""
    return _store_queued(uow, outgoing, addressing, now)


def offer_emails(
    unit_of_work: Callable[[], CommunicationUnitOfWork],
    queue: EmailQueue,
    emails: Sequence[Email],
    *,
    now: datetime,
) -> bool:
    """Put committed queued emails on the queue. False if the queue refused: the sweeper
    offers them again."""
    return _offer(unit_of_work, queue, emails, now)


@dataclass(frozen=True)
class QueueResult:
    email: Email
    created: bool  # False: an email with this idempotency key existed already
    enqueued: bool  # False: stored, but the queue refused; the sweeper will offer it again


def queue_email(
    unit_of_work: Callable[[], CommunicationUnitOfWork],
    queue: EmailQueue,
    outgoing: OutgoingEmail,
    addressing: Addressing,
    *,
    now: datetime,
) -> QueueResult:
    with unit_of_work() as uow:
        email, created = _store_queued(uow, outgoing, addressing, now)
        uow.commit()
    # An existing email still queued is offered again: its first offer may have been lost.
    return QueueResult(email=email, created=created, enqueued=_offer(unit_of_work, queue, [email], now))


# --------------------------------------------------------------------------- sending


class SendResult(StrEnum):
    SENT = "sent"
    ALREADY_DONE = "already_done"  # sent or failed before: the message is simply acknowledged
    RETRY = "retry"  # try this message again in `retry_in_seconds`
    FAILED = "failed"  # given up now; staff alerted
    MISSING = "missing"  # no such email


@dataclass(frozen=True)
class SendOutcome:
    result: SendResult
    email_id: uuid.UUID
    retry_in_seconds: int | None = None
    error: str | None = None
    alert: Email | None = None


@dataclass
class SenderContext:
    """What sending needs; the handler builds it from settings, unit tests from fakes."""

    unit_of_work: Callable[[], CommunicationUnitOfWork]
    transport: MailTransport
    queue: EmailQueue
    renderer: EmailRenderer
    addressing: Addressing
    policy: DeliveryPolicy
    clock: Callable[[], datetime]
    sleep: Callable[[float], None] = field(default=time.sleep)
    # Pauses before re-trying to record an outcome when the database is briefly unreachable:
    # after a successful send, losing the `sent` mark would mean a second copy later.
    bookkeeping_pauses: tuple[float, ...] = (0.2, 1.0, 3.0)


def _claim(context: SenderContext, email_id: uuid.UUID, token: uuid.UUID) -> Email | SendOutcome:
    now = context.clock()
    with context.unit_of_work() as uow:
        email = uow.emails.get_for_update(email_id)
        if email is None:
            return SendOutcome(SendResult.MISSING, email_id)
        refusal = email.claim_refusal(now)
        if refusal in (ClaimRefusal.DONE, ClaimRefusal.NOT_QUEUED):
            return SendOutcome(SendResult.ALREADY_DONE, email_id)
        if refusal is not None:
            return SendOutcome(SendResult.RETRY, email_id, retry_in_seconds=email.wait_seconds(now))
        claimed = email.claimed(now, token, context.policy.lease_seconds)
        uow.emails.update(claimed)
        uow.attempts.started(email_id, claimed.attempts, token, now)
        uow.commit()
        return claimed


def _with_retries(context: SenderContext, step: Callable[[], SendOutcome]) -> SendOutcome:
    for pause in context.bookkeeping_pauses:
        try:
            return step()
        except DependencyUnavailableError:
            context.sleep(pause)
    return step()


def _mark_sent(
    context: SenderContext, token: uuid.UUID, email_id: uuid.UUID, provider_id: str | None
) -> SendOutcome:
    def step() -> SendOutcome:
        now = context.clock()
        with context.unit_of_work() as uow:
            email = uow.emails.get_for_update(email_id)
            assert email is not None
            uow.attempts.finished(token, "sent", now)
            # Another sender may have reclaimed it after our lease ran out (and sent it too, or
            # put it back in the queue); it is sent either way, and email.sent is recorded once.
            if email.status in (EmailStatus.SENDING, EmailStatus.QUEUED):
                sent = email.delivered(now, provider_id)
                uow.emails.update(sent)
                _record(uow, sent)
            uow.commit()
        return SendOutcome(SendResult.SENT, email_id)

    return _with_retries(context, step)


def _failure_alert(
    context: SenderContext, uow: CommunicationUnitOfWork, failed: Email, now: datetime
) -> Email | None:
    recipient = context.addressing.staff_alert_recipient
    # An alert about an alert would loop when the mail system itself is down.
    if recipient is None or failed.kind in STAFF_ALERT_KINDS:
        return None
    content = SendFailedAlert(
        email_id=failed.id,
        email_kind=failed.kind,
        recipient=failed.recipient,
        subject=failed.subject,
        attempts=failed.attempts,
        last_error=failed.last_error or "unbekannter Fehler",
        bundle_reference=failed.bundle_reference,
        failed_at=now,
    )
    outgoing = compose(
        context.renderer,
        content,
        recipient=recipient,
        recipient_type=RecipientType.STAFF,
        idempotency_key=f"send-failed:{failed.id}:{failed.attempts}",
    )
    alert, created = _store_queued(uow, outgoing, context.addressing, now)
    return alert if created else None


def _record_failure(
    context: SenderContext, token: uuid.UUID, email_id: uuid.UUID, error: DeliveryError
) -> SendOutcome:
    message = str(error) or type(error).__name__

    def step() -> SendOutcome:
        now = context.clock()
        with context.unit_of_work() as uow:
            email = uow.emails.get_for_update(email_id)
            assert email is not None
            if email.status is not EmailStatus.SENDING or email.claim_token != token:
                # Our lease ran out and another sender took over: its outcome counts.
                uow.attempts.finished(token, "retry", now, message)
                uow.commit()
                return SendOutcome(SendResult.ALREADY_DONE, email_id, error=message)
            if error.permanent or not email.attempts_left:
                failed = email.given_up(now, message)
                uow.emails.update(failed)
                uow.attempts.finished(token, "failed", now, message)
                _record(uow, failed)
                alert = _failure_alert(context, uow, failed, now)
                uow.commit()
                return SendOutcome(SendResult.FAILED, email_id, error=message, alert=alert)
            delay = context.policy.retry_delay(email.attempts)
            uow.emails.update(email.retry_later(now, message, delay))
            uow.attempts.finished(token, "retry", now, message)
            uow.commit()
            return SendOutcome(SendResult.RETRY, email_id, retry_in_seconds=delay, error=message)

    outcome = _with_retries(context, step)
    if outcome.alert is not None:
        _offer(context.unit_of_work, context.queue, [outcome.alert], context.clock())
    return outcome


def send_email(context: SenderContext, email_id: uuid.UUID) -> SendOutcome:
    """Deliver one queued email at most once per claim (see the module doc)."""
    token = uuid.uuid4()
    claimed = _claim(context, email_id, token)
    if isinstance(claimed, SendOutcome):
        return claimed
    try:
        provider_id = context.transport.send(claimed)
    except DeliveryError as error:
        return _record_failure(context, token, email_id, error)
    except Exception as error:  # an unexpected transport bug must not strand the claim
        return _record_failure(
            context, token, email_id, DeliveryError(f"{type(error).__name__}: {error}", permanent=False)
        )
    return _mark_sent(context, token, email_id, provider_id)


# --------------------------------------------------------------------------- sweeping


@dataclass(frozen=True)
class SweepReport:
    offered: int
    refused: bool


def requeue_stale_emails(
    unit_of_work: Callable[[], CommunicationUnitOfWork],
    queue: EmailQueue,
    policy: DeliveryPolicy,
    *,
    now: datetime,
    limit: int = 500,
) -> SweepReport:
    """Offer again the emails whose queue message may be lost: due, and not offered for
    `requeue_after_seconds`. A duplicate message costs nothing: the claim sends once."""
    with unit_of_work() as uow:
        ids = uow.emails.due_for_requeue(
            now=now, offered_before=now - timedelta(seconds=policy.requeue_after_seconds), limit=limit
        )
    if not ids:
        return SweepReport(offered=0, refused=False)
    try:
        queue.enqueue(ids)
    except Exception:
        return SweepReport(offered=0, refused=True)
    with unit_of_work() as uow:
        uow.emails.mark_enqueued(ids, now)
        uow.commit()
    return SweepReport(offered=len(ids), refused=False)
