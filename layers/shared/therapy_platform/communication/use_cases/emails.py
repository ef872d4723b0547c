"""Email use cases: compose an email from its content, queue it, and send one queued email.

Queueing stores the email and its `email.queued` event in one transaction; once that commits
(an after-commit step of the unit of work, `offer_after_commit`) the email id goes on the
queue. If the queue cannot take it, the email is still stored; the sweeper
(`requeue_stale_emails`, scheduled) offers it again, so nothing is lost between the two.
Use cases that change more than the email (an event's reaction, a reminder, an ad-hoc email
with its audit record) store it with `stage_email` in their own transaction and offer it the
same way. Every use case returns an `Outcome`: its value and the events it committed.

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
    DeliveryError,
    EmailQueue,
    EmailUnitOfWork,
    MailTransport,
    StartedAttempt,
)
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.ports import UnitOfWork
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


def _record(uow: EmailUnitOfWork, email: Email) -> EventEnvelope:
    return record_event(
        uow.outbox,
        EVENT_BY_STATUS[email.status],
        producer=PRODUCER,
        key=email.id,
        payload=email.event_payload(),
        now=email.updated_at,
    )


@dataclass(frozen=True)
class StoredEmail:
    email: Email
    created: bool  # False: an email with this idempotency key existed already


def stage_email(
    uow: EmailUnitOfWork, outgoing: OutgoingEmail, addressing: Addressing, *, now: datetime
) -> Outcome[StoredEmail]:
    """Store a new queued email with its `email.queued` event in the caller's open unit of work
    (the caller commits, and offers it to the queue after commit: `offer_after_commit`). An
    email with the same idempotency key stored before is returned instead (`created` False)."""
    email = Email.draft(outgoing, addressing, now=now).queued(now)
    if uow.emails.add(email):
        return Outcome(StoredEmail(email, created=True), events=(_record(uow, email),))
    assert outgoing.idempotency_key is not None
    existing = uow.emails.find_by_idempotency_key(outgoing.idempotency_key)
    assert existing is not None
    return Outcome(StoredEmail(existing, created=False))


def _offer(
    unit_of_work: Callable[[], EmailUnitOfWork],
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


class PendingOffer:
    """Queued emails to put on the queue once the transaction that stored them has committed
    (never if it rolls back). `enqueued` says afterwards whether the queue took them; if not,
    the sweeper offers them again."""

    def __init__(
        self,
        unit_of_work: Callable[[], EmailUnitOfWork],
        queue: EmailQueue,
        emails: Sequence[Email],
        now: datetime,
    ) -> None:
        self._unit_of_work, self._queue, self._emails, self._now = unit_of_work, queue, emails, now
        self.enqueued = False

    def __call__(self) -> None:
        self.enqueued = _offer(self._unit_of_work, self._queue, self._emails, self._now)


def offer_after_commit(
    uow: UnitOfWork,
    unit_of_work: Callable[[], EmailUnitOfWork],
    queue: EmailQueue,
    emails: Sequence[Email],
    *,
    now: datetime,
) -> PendingOffer:
    """Offer `emails` to the queue once `uow` commits (an after-commit step of the unit of work)."""
    offer = PendingOffer(unit_of_work, queue, list(emails), now)
    uow.on_commit(offer)
    return offer


@dataclass(frozen=True)
class QueueResult:
    email: Email
    created: bool  # False: an email with this idempotency key existed already
    enqueued: bool  # False: stored, but the queue refused; the sweeper will offer it again


def queue_email(
    unit_of_work: Callable[[], EmailUnitOfWork],
    queue: EmailQueue,
    outgoing: OutgoingEmail,
    addressing: Addressing,
    *,
    now: datetime,
) -> Outcome[QueueResult]:
    with unit_of_work() as uow:
        stored = stage_email(uow, outgoing, addressing, now=now)
        # An existing email still queued is offered again: its first offer may have been lost.
        offer = offer_after_commit(uow, unit_of_work, queue, [stored.value.email], now=now)
        uow.commit()
    result = QueueResult(stored.value.email, stored.value.created, enqueued=offer.enqueued)
    return Outcome(result, events=stored.events)


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
    """What sending needs; bootstrap.py builds it from settings, unit tests from fakes."""

    unit_of_work: Callable[[], EmailUnitOfWork]
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


def _claim(
    context: SenderContext, email_ids: Sequence[uuid.UUID]
) -> tuple[list[tuple[Email, uuid.UUID]], dict[uuid.UUID, SendOutcome]]:
    """Claim every email of a batch in one transaction (rows locked in id order, so two senders
    over overlapping batches never deadlock): the claimed emails with their tokens, and the
    outcome of each email that may not be sent now."""
    now = context.clock()
    claimed: list[tuple[Email, uuid.UUID]] = []
    refused: dict[uuid.UUID, SendOutcome] = {}
    with context.unit_of_work() as uow:
        found = uow.emails.get_many_for_update(email_ids)
        for email_id in email_ids:
            email = found.get(email_id)
            if email is None:
                refused[email_id] = SendOutcome(SendResult.MISSING, email_id)
                continue
            refusal = email.claim_refusal(now)
            if refusal in (ClaimRefusal.DONE, ClaimRefusal.NOT_QUEUED):
                refused[email_id] = SendOutcome(SendResult.ALREADY_DONE, email_id)
            elif refusal is not None:
                refused[email_id] = SendOutcome(
                    SendResult.RETRY, email_id, retry_in_seconds=email.wait_seconds(now)
                )
            else:
                token = uuid.uuid4()
                claimed.append((email.claimed(now, token, context.policy.lease_seconds), token))
        if claimed:
            uow.emails.update_many([email for email, _ in claimed])
            uow.attempts.started_many(
                [StartedAttempt(email.id, email.attempts, token, now) for email, token in claimed]
            )
            uow.commit()
    return claimed, refused


Step = Callable[[], Outcome[SendOutcome]]


def _with_retries(context: SenderContext, step: Step) -> Outcome[SendOutcome]:
    for pause in context.bookkeeping_pauses:
        try:
            return step()
        except DependencyUnavailableError:
            context.sleep(pause)
    return step()


def _mark_sent(
    context: SenderContext, token: uuid.UUID, claimed: Email, provider_id: str | None
) -> Outcome[SendOutcome]:
    """One short transaction right after the send (the at-least-once window stays one email):
    the attempt finished and the email `sent` in one statement, its email.sent event beside it.
    Another sender may have reclaimed the email after our lease ran out (and sent it too, or put
    it back in the queue); it is sent either way, and email.sent is recorded once."""

    def step() -> Outcome[SendOutcome]:
        sent = claimed.delivered(context.clock(), provider_id)
        events: tuple[EventEnvelope, ...] = ()
        with context.unit_of_work() as uow:
            stored = uow.emails.store_delivered(sent, token)
            if stored is not None:
                events = (_record(uow, stored),)
            uow.commit()
        return Outcome(SendOutcome(SendResult.SENT, claimed.id), events=events)

    return _with_retries(context, step)


def _failure_alert(
    context: SenderContext, uow: EmailUnitOfWork, failed: Email, now: datetime
) -> Outcome[StoredEmail] | None:
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
    alert = stage_email(uow, outgoing, context.addressing, now=now)
    return alert if alert.value.created else None


def _record_failure(
    context: SenderContext, token: uuid.UUID, email_id: uuid.UUID, error: DeliveryError
) -> Outcome[SendOutcome]:
    message = str(error) or type(error).__name__

    def step() -> Outcome[SendOutcome]:
        now = context.clock()
        with context.unit_of_work() as uow:
            email = uow.emails.get_for_update(email_id)
            assert email is not None
            if email.status is not EmailStatus.SENDING or email.claim_token != token:
                # Our lease ran out and another sender took over: its outcome counts.
                uow.attempts.finished(token, "retry", now, message)
                uow.commit()
                return Outcome(SendOutcome(SendResult.ALREADY_DONE, email_id, error=message))
            if error.permanent or not email.attempts_left:
                failed = email.given_up(now, message)
                uow.emails.update(failed)
                uow.attempts.finished(token, "failed", now, message)
                events: tuple[EventEnvelope, ...] = (_record(uow, failed),)
                alert = _failure_alert(context, uow, failed, now)
                if alert is not None:
                    events += alert.events
                    offer_after_commit(uow, context.unit_of_work, context.queue, [alert.value.email], now=now)
                uow.commit()
                outcome = SendOutcome(
                    SendResult.FAILED, email_id, error=message, alert=alert.value.email if alert else None
                )
                return Outcome(outcome, events=events)
            delay = context.policy.retry_delay(email.attempts)
            uow.emails.update(email.retry_later(now, message, delay))
            uow.attempts.finished(token, "retry", now, message)
            uow.commit()
            return Outcome(SendOutcome(SendResult.RETRY, email_id, retry_in_seconds=delay, error=message))

    return _with_retries(context, step)


def _deliver(context: SenderContext, email: Email, token: uuid.UUID) -> Outcome[SendOutcome]:
    try:
        provider_id = context.transport.send(email)
    except DeliveryError as error:
        return _record_failure(context, token, email.id, error)
    except Exception as error:  # an unexpected transport bug must not strand the claim
        return _record_failure(
            context, token, email.id, DeliveryError(f"{type(error).__name__}: {error}", permanent=False)
        )
    return _mark_sent(context, token, email, provider_id)


def send_emails(
    context: SenderContext, email_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Outcome[SendOutcome]]:
    """Deliver a batch of queued emails, each at most once per claim (see the module doc): one
    transaction claims them all, then each goes to the transport and its outcome is recorded at
    once, before the next is sent. An id named twice is handled once. Answers per email id."""
    unique = list(dict.fromkeys(email_ids))
    claimed, refused = _claim(context, unique)
    outcomes: dict[uuid.UUID, Outcome[SendOutcome]] = {
        email_id: Outcome(outcome) for email_id, outcome in refused.items()
    }
    for email, token in claimed:
        outcomes[email.id] = _deliver(context, email, token)
    return {email_id: outcomes[email_id] for email_id in unique}


def send_email(context: SenderContext, email_id: uuid.UUID) -> Outcome[SendOutcome]:
    """Deliver one queued email at most once per claim (a batch of one)."""
    return send_emails(context, [email_id])[email_id]


# --------------------------------------------------------------------------- sweeping


@dataclass(frozen=True)
class SweepReport:
    offered: int
    refused: bool


def requeue_stale_emails(
    unit_of_work: Callable[[], EmailUnitOfWork],
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
