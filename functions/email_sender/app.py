"""Email sender: consumes the email queue (SQS) in batches and delivers each email once
(use_cases/emails.py: claim, send, record). Two entry points:

- `lambda_handler` (SQS event source, ReportBatchItemFailures; bootstrap.sender_consumer): one
  `SendRequest` per message; the batch's emails are claimed in one transaction, then sent one
  by one over one connection, each recorded as sent before the next goes out
  (adapters/sender_queue.py). An email to be tried again later (transient error, not yet due,
  being sent by another worker right now) is reported failed and hidden for its wait
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

from therapy_platform.communication.adapters.sender_queue import send_batch
from therapy_platform.communication.bootstrap import build_sender, sender_consumer
from therapy_platform.communication.domain.emails import SendRequest
from therapy_platform.communication.use_cases.emails import requeue_stale_emails
from therapy_platform.platform.consumer import Delivery
from therapy_platform.platform.metrics_emf import EmfMetrics, flushed

logger = Logger(service="email-sender")
service = build_sender()
metrics = EmfMetrics("communication_service")  # EmailsSent, EmailsFailed (docs/metrics.md)


def send(batch: Sequence[tuple[Delivery, SendRequest]]) -> dict[str, Exception | None]:
    return send_batch(service, batch, metrics=metrics, logger=logger)


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
