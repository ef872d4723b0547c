"""Composition root of the communication service: what each of its functions works with, as
deployed. A handler module calls its builder at import (= cold start), so a missing or invalid
variable fails naming it; each builder reads only the variables its functions get
(settings.py). Building is cheap: the engine, the SQS, SES and S3 clients and the bus client
are created on first use. Unit tests build the same contexts from in-memory fakes.

- `build_api`: the communication API (histories, the call list, call outcomes);
- `build_staff_emails`: the emails API (`StaffEmailContext`);
- `build_follow_up` + `events_consumer`: the event consumer and the reminder job
  (`CommunicationContext`; the bus consumer on the platform runtime);
- `build_sender` + `sender_consumer`: the email sender and its sweep (`SenderContext`; the
  email-queue consumer);
- `build_reply_intake`: reply intake.

Every deployed unit of work publishes the events it committed at once (after-commit hook,
`PublishNow`; the scheduled relay sends what that misses).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Final

from sqlalchemy import Engine

from therapy_platform.communication.adapters.aws import LazyClient
from therapy_platform.communication.adapters.email_queue import SqsEmailQueue
from therapy_platform.communication.adapters.mail import SesTransport, SmtpTransport
from therapy_platform.communication.adapters.patient_erasure import MaildirStoredMail, S3StoredMail
from therapy_platform.communication.adapters.reply_inbox import MaildirInbox, S3Inbox
from therapy_platform.communication.adapters.tables import COMMUNICATION_SCHEMA
from therapy_platform.communication.adapters.unit_of_work import SqlCommunicationUnitOfWork
from therapy_platform.communication.domain.emails import Addressing, SendRequest
from therapy_platform.communication.domain.phone_calls import WorkingCalendar
from therapy_platform.communication.domain.replies import ReplyPolicy
from therapy_platform.communication.ports import (
    CommunicationUnitOfWork,
    ContactDirectory,
    MailTransport,
    ReplyInbox,
    StoredMail,
)
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.settings import (
    ConsumerSettings,
    FollowUpSettings,
    MailSettings,
    ReplyInboxSettings,
    ReplyIntakeSettings,
    SenderSettings,
    WritingSettings,
)
from therapy_platform.communication.use_cases.emails import SenderContext
from therapy_platform.communication.use_cases.events import CommunicationContext, reaction_handlers
from therapy_platform.communication.use_cases.staff_emails import StaffEmailContext
from therapy_platform.platform.bootstrap import publish_after_commit, sqs_queues
from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.consumer import (
    BatchHandler,
    QueueConsumer,
    QueueControl,
    bus_consumer,
    json_body,
    once_per_event,
)
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.eventbridge import default_publisher
from therapy_platform.platform.events import BusMessage
from therapy_platform.platform.idempotency import SqlIdempotencyStore
from therapy_platform.platform.ports import EventPublisher

LOGGER = logging.getLogger(__name__)

EVENTS_CONSUMER: Final = "communication-events"  # its eventId claims in processed_events
SENDER_CONSUMER: Final = "email-sender"
SEND: Final = "send"  # the one kind of message on the email queue


def unit_of_work_factory(
    engine: Callable[[], Engine] = default_engine,
    publisher: Callable[[], EventPublisher] = default_publisher,
    contacts: Callable[[], ContactDirectory] | None = None,
) -> Callable[[], SqlCommunicationUnitOfWork]:
    """The deployed unit of work: the function's engine, committed events published at once,
    contacts looked up through the contacts functions (`contacts` replaces them in tests)."""
    publish = publish_after_commit(COMMUNICATION_SCHEMA, engine=engine, publisher=publisher)
    return lambda: SqlCommunicationUnitOfWork(engine(), publish=publish, contacts=contacts)


@cache
def queue_control() -> QueueControl:
    """SQS beyond the event-source mapping (dead letters, per-message backoff)."""
    return sqs_queues()


# --------------------------------------------------------------------------- the APIs


@dataclass(frozen=True)
class CommunicationService:
    """What the communication API works with (histories, the call list, call outcomes)."""

    unit_of_work: Callable[[], CommunicationUnitOfWork]
    clock: Callable[[], datetime] = utc_now


def build_api() -> CommunicationService:
    return CommunicationService(unit_of_work=unit_of_work_factory())


def _renderer(settings: WritingSettings) -> EmailRenderer:
    return EmailRenderer(settings.legal.notice())


def build_staff_emails(settings: WritingSettings | None = None) -> StaffEmailContext:
    settings = settings or WritingSettings.from_env()
    return StaffEmailContext(
        unit_of_work=unit_of_work_factory(),
        queue=SqsEmailQueue.from_url(settings.queue.queue_url),
        renderer=_renderer(settings),
        addressing=settings.mail.addressing(),
        clock=utc_now,
    )


# --------------------------------------------------------------------------- follow-up


def build_follow_up(
    settings: FollowUpSettings | None = None, *, stored_mail: StoredMail | None = None
) -> CommunicationContext:
    """The event reactions (with the stored reply mails a patient erasure deletes from) and
    the reminder job."""
    settings = settings or FollowUpSettings.from_env()
    calls = settings.calls.policy()
    return CommunicationContext(
        unit_of_work=unit_of_work_factory(),
        queue=SqsEmailQueue.from_url(settings.writing.queue.queue_url),
        renderer=_renderer(settings.writing),
        addressing=settings.writing.mail.addressing(),
        calls=calls,
        follow_up=settings.follow_up.policy(),
        calendar=WorkingCalendar.for_policy(calls),
        clock=utc_now,
        stored_mail=stored_mail,
    )


def stored_mail(settings: ReplyInboxSettings | None = None) -> StoredMail:
    """Where reply intake keeps the mails it took in: the reply bucket's processed prefix, or
    the local Maildir's `cur/`."""
    settings = settings or ReplyInboxSettings.from_env()
    if settings.inbox == "s3":
        assert settings.bucket is not None
        return S3StoredMail(LazyClient("s3"), settings.bucket, prefix=settings.processed_prefix)
    assert settings.maildir is not None
    return MaildirStoredMail(settings.maildir)


def events_consumer(
    context: Callable[[], CommunicationContext],
    *,
    settings: ConsumerSettings | None = None,
    queues: Callable[[], QueueControl] | None = queue_control,
    logger: logging.Logger | Any = LOGGER,
) -> QueueConsumer[BusMessage]:
    """Other services' events from the bus (through SQS): each handled type reacts once per
    eventId, in one transaction with its claim; a contact that has not arrived yet is retried
    after the backoff; an unreadable message goes to the dead-letter queue."""
    settings = settings or ConsumerSettings.from_env()

    def unit_of_work() -> CommunicationUnitOfWork:
        return context().unit_of_work()

    handlers = once_per_event(EVENTS_CONSUMER, unit_of_work, reaction_handlers(context))
    return bus_consumer(
        EVENTS_CONSUMER,
        handlers,
        queues=queues,
        dead_letter_queue_url=settings.dead_letter_queue_url,
        logger=logger,
    )


# --------------------------------------------------------------------------- sending


def mail_transport(settings: MailSettings) -> MailTransport:
    """SMTP or SES, by MAIL_TRANSPORT (connections open on the first email)."""
    if settings.transport == "ses":
        return SesTransport(LazyClient("sesv2"), configuration_set=settings.ses_configuration_set)
    return SmtpTransport(
        settings.smtp_host,
        settings.smtp_port,
        timeout_seconds=settings.smtp_timeout_seconds,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=settings.smtp_password,
    )


def build_sender(settings: SenderSettings | None = None) -> SenderContext:
    """One sender per warm environment; the handler closes its transport after each batch."""
    settings = settings or SenderSettings.from_env()
    writing = settings.writing
    return SenderContext(
        unit_of_work=unit_of_work_factory(),
        transport=mail_transport(writing.mail),
        queue=SqsEmailQueue.from_url(writing.queue.queue_url),
        renderer=_renderer(writing),
        addressing=writing.mail.addressing(),
        policy=settings.delivery.policy(),
        clock=utc_now,
    )


def sender_consumer(
    send: BatchHandler[SendRequest],
    *,
    settings: ConsumerSettings | None = None,
    queues: Callable[[], QueueControl] | None = queue_control,
    logger: logging.Logger | Any = LOGGER,
) -> QueueConsumer[SendRequest]:
    """The email queue: one `SendRequest` per message, the whole batch handed to `send` at once
    (one claim for the batch); a body that is none goes to the dead-letter queue; `send` answers
    RetryLaterError(seconds=...) for the message of an email to try later."""
    settings = settings or ConsumerSettings.from_env()
    return QueueConsumer(
        name=SENDER_CONSUMER,
        decode=json_body(SendRequest),
        kind_of=lambda _: SEND,
        batch_handler=send,
        queues=queues,
        dead_letter_queue_url=settings.dead_letter_queue_url,
        logger=logger,
    )


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class ReplyIntakeService:
    """What reply intake works with."""

    unit_of_work: Callable[[], CommunicationUnitOfWork]
    inbox: ReplyInbox
    addressing: Addressing
    clock: Callable[[], datetime] = utc_now
    policy: ReplyPolicy = field(default_factory=ReplyPolicy)


def reply_inbox(settings: ReplyInboxSettings) -> ReplyInbox:
    """The local SMTP server's Maildir, or the S3 prefix SES receiving writes to."""
    if settings.inbox == "s3":
        assert settings.bucket is not None
        return S3Inbox(
            LazyClient("s3"),
            settings.bucket,
            prefix=settings.prefix,
            processed_prefix=settings.processed_prefix,
        )
    assert settings.maildir is not None
    return MaildirInbox(settings.maildir)


def build_reply_intake(settings: ReplyIntakeSettings | None = None) -> ReplyIntakeService:
    settings = settings or ReplyIntakeSettings.from_env()
    return ReplyIntakeService(
        unit_of_work=unit_of_work_factory(),
        inbox=reply_inbox(settings.inbox),
        addressing=settings.mail.addressing(),
        policy=settings.inbox.policy(),
    )


def idempotency_keys() -> SqlIdempotencyStore:
    """The `Idempotency-Key`s of this service's creating POSTs (table `idempotency_keys` in its schema)."""
    return SqlIdempotencyStore(default_engine, COMMUNICATION_SCHEMA)
