"""Email sender: consumes the email queue (SQS) in batches and delivers each email once
(use_cases/emails.py: claim, send, record). Two entry points:

- `lambda_handler` (SQS event source, ReportBatchItemFailures; bootstrap.sender_consumer): one
  `SendRequest` per message; the batch's emails are claimed in one transaction, then sent one
  by one over one connection, each recorded as sent before the next goes out. An email to be
  tried again later (transient error, not yet due, being sent by another worker right now) is
  reported failed and hidden for its wait
  (RetryLaterError with the seconds); a body that is no send request goes to the dead-letter
  queue. The mail transport's connection is opened per batch and closed at its end.
- `sweep_handler` (schedule): offers again emails whose queue message may have been lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.bootstrap import build_sender, sender_consumer
from therapy_platform.communication.domain.emails import SendRequest
from therapy_platform.communication.use_cases.emails import (
    SendOutcome,
    SendResult,
    requeue_stale_emails,
    send_emails,
)
from therapy_platform.platform.consumer import Delivery, RetryLaterError
from therapy_platform.platform.metrics import Unit
from therapy_platform.platform.metrics_emf import EmfMetrics, flushed

logger = Logger(service="email-sender")
service = build_sender()
metrics = EmfMetrics("communication_service")  # EmailsSent, EmailsFailed (docs/metrics.md)


MEASURED = {SendResult.SENT: "EmailsSent", SendResult.FAILED: "EmailsFailed"}


def _settled(outcome: SendOutcome) -> Exception | None:
    """Log and count one email's outcome; the exception its queue message settles with."""
    extra = {"email_id": str(outcome.email_id), "result": outcome.result.value}
    if outcome.result in MEASURED:
        metrics.add(MEASURED[outcome.result], Unit.COUNT, 1)
    if outcome.result is SendResult.RETRY:
        seconds = outcome.retry_in_seconds or 1
        logger.info("email to be tried again", extra={**extra, "retry_in_s": seconds, "error": outcome.error})
        return RetryLaterError(f"email {outcome.email_id} not sent yet", seconds=seconds)
    if outcome.result is SendResult.FAILED:
        alert_id = str(outcome.alert.id) if outcome.alert else None
        logger.error(
            "email failed for good; staff alerted",
            extra={**extra, "error": outcome.error, "alert_id": alert_id},
        )
    elif outcome.result is SendResult.MISSING:
        logger.error("queue message names an email that does not exist; dropped", extra=extra)
    return None


def send(batch: Sequence[tuple[Delivery, SendRequest]]) -> dict[str, Exception | None]:
    """The whole batch: one claim, then each email (an email named twice is sent once, and
    each of its messages settles with its outcome)."""
    outcomes = send_emails(service, [request.email_id for _, request in batch])
    settled = {email_id: _settled(outcome.value) for email_id, outcome in outcomes.items()}
    return {delivery.message_id: settled[request.email_id] for delivery, request in batch}


consumer = sender_consumer(send, logger=logger)


@logger.inject_lambda_context
@flushed(metrics)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return consumer.handle(event)
    finally:
        service.transport.close()


@logger.inject_lambda_context
def sweep_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = requeue_stale_emails(service.unit_of_work, service.queue, service.policy, now=service.clock())
    if report.refused:
        logger.warning("the email queue refused the sweep; next sweep tries again")
    else:
        logger.info("stale emails offered to the queue again", extra=asdict(report))
    return asdict(report)
