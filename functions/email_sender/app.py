"""Email sender: consumes the email queue (SQS) in batches and delivers each email once
(use_cases/emails.py: claim, send, record). Two entry points:

- `lambda_handler` (SQS event source, ReportBatchItemFailures; bootstrap.sender_consumer): one
  `SendRequest` per message. An email to be tried again later (transient error, not yet due,
  being sent by another worker right now) is reported failed and hidden for its wait
  (RetryLaterError with the seconds); a body that is no send request goes to the dead-letter
  queue. The mail transport's connection is opened per batch and closed at its end.
- `sweep_handler` (schedule): offers again emails whose queue message may have been lost.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.bootstrap import SEND, build_sender, sender_consumer
from therapy_platform.communication.domain.emails import SendRequest
from therapy_platform.communication.use_cases.emails import SendResult, requeue_stale_emails, send_email
from therapy_platform.platform.consumer import Handled, RetryLaterError
from therapy_platform.platform.metrics import Unit
from therapy_platform.platform.metrics_emf import EmfMetrics, flushed

logger = Logger(service="email-sender")
service = build_sender()
metrics = EmfMetrics("communication_service")  # EmailsSent, EmailsFailed (docs/metrics.md)


MEASURED = {SendResult.SENT: "EmailsSent", SendResult.FAILED: "EmailsFailed"}


def send(request: SendRequest) -> Handled:
    outcome = send_email(service, request.email_id).value
    extra = {"email_id": str(outcome.email_id), "result": outcome.result.value}
    if outcome.result in MEASURED:
        metrics.add(MEASURED[outcome.result], Unit.COUNT, 1)
    if outcome.result is SendResult.RETRY:
        seconds = outcome.retry_in_seconds or 1
        logger.info("email to be tried again", extra={**extra, "retry_in_s": seconds, "error": outcome.error})
        raise RetryLaterError(f"email {outcome.email_id} not sent yet", seconds=seconds)
    if outcome.result is SendResult.FAILED:
        alert_id = str(outcome.alert.id) if outcome.alert else None
        logger.error(
            "email failed for good; staff alerted",
            extra={**extra, "error": outcome.error, "alert_id": alert_id},
        )
    elif outcome.result is SendResult.MISSING:
        logger.error("queue message names an email that does not exist; dropped", extra=extra)
    return Handled("", SEND, outcome.result.value, {"email_id": str(outcome.email_id)})


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
