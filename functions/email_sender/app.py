"""Email sender: consumes the email queue (SQS) in batches and delivers each email once
(logic/emails.py: claim, send, record). Two entry points:

- `lambda_handler` (SQS event source, ReportBatchItemFailures): one message per email id.
  Partial failures: a message whose email must be tried again later (transient error, not yet
  due, or being sent by another worker right now) is reported as failed and hidden for the
  backoff delay, so SQS offers it again then. Messages that are not a send request fail every
  time and reach the dead-letter queue after maxReceiveCount.
- `sweep_handler` (schedule): offers again emails whose queue message may have been lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.adapters.email_queue import SqsEmailQueue
from therapy_platform.communication.adapters.emails import SqlCommunicationUnitOfWork
from therapy_platform.communication.adapters.mail import transport_from_settings
from therapy_platform.communication.domain.emails import SendRequest
from therapy_platform.communication.mail_settings import (
    DeliverySettings,
    EmailQueueSettings,
    LegalSettings,
    MailSettings,
)
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases.emails import (
    SenderContext,
    SendResult,
    requeue_stale_emails,
    send_email,
)
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.sqs import SqsQueueAdapter

logger = Logger(service="email-sender")
# Failures are reported per message; a batch whose every message must wait is not an error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLaterError(Exception):
    """This message's email is to be tried again later (reported as a batch item failure)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@cache
def _queues() -> SqsQueueAdapter:
    return SqsQueueAdapter.from_env()


def _delay(queue_arn: str, receipt_handle: str, seconds: int) -> None:
    # SQS allows at most 12 hours of invisibility.
    _queues().delay_retry(queue_arn, receipt_handle, min(seconds, 43_200))


def default_sender() -> SenderContext:
    mail = MailSettings.from_env()
    return SenderContext(
        unit_of_work=lambda: SqlCommunicationUnitOfWork(default_engine()),
        transport=transport_from_settings(mail),
        queue=SqsEmailQueue.from_url(EmailQueueSettings.from_env().queue_url),
        renderer=EmailRenderer(LegalSettings.from_env().notice()),
        addressing=mail.addressing(),
        policy=DeliverySettings.from_env().policy(),
        clock=utc_now,
    )


@dataclass
class Dependencies:
    """What the handler uses; unit tests swap in fakes."""

    sender: Callable[[], SenderContext]
    delay: Callable[[str, str, int], None]


# One sender per warm environment: the transport's connection is opened per batch and closed
# at its end.
dependencies = Dependencies(sender=cache(default_sender), delay=_delay)


def _handle(sender: SenderContext, record: SQSRecord) -> None:
    # A body that is not a send request raises: the message fails on every receive and lands
    # in the dead-letter queue after maxReceiveCount.
    request = SendRequest.model_validate_json(record.body)
    outcome = send_email(sender, request.email_id)
    extra = {"email_id": str(outcome.email_id), "result": outcome.result.value}
    if outcome.result is SendResult.RETRY:
        delay = outcome.retry_in_seconds or 1
        dependencies.delay(record.event_source_arn, record.receipt_handle, delay)
        logger.info("email to be tried again", extra={**extra, "retry_in_s": delay, "error": outcome.error})
        raise RetryLaterError(f"email {outcome.email_id}: retry in {delay} s")
    if outcome.result is SendResult.FAILED:
        logger.error(
            "email failed for good; staff alerted",
            extra={
                **extra,
                "error": outcome.error,
                "alert_id": str(outcome.alert.id) if outcome.alert else None,
            },
        )
    elif outcome.result is SendResult.MISSING:
        logger.error("queue message names an email that does not exist; dropped", extra=extra)
    else:
        logger.info("email handled", extra=extra)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sender = dependencies.sender()
    try:
        response = process_partial_response(
            event=event,
            record_handler=lambda record: _handle(sender, record),
            processor=processor,
            context=context,
        )
    finally:
        sender.transport.close()
    return dict(response)


@logger.inject_lambda_context
def sweep_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sender = dependencies.sender()
    report = requeue_stale_emails(sender.unit_of_work, sender.queue, sender.policy, now=sender.clock())
    if report.refused:
        logger.warning("the email queue refused the sweep; next sweep tries again")
    else:
        logger.info("stale emails offered to the queue again", extra=asdict(report))
    return asdict(report)
