"""The email queue's side of the sender: a batch of `SendRequest` messages in, one outcome per
message out (the platform's QueueConsumer settles each message with it). The batch's emails
are handed to `send_emails` together (one claim for the batch); every outcome is logged (ids and
codes only) and counted, and an email to be tried later answers RetryLaterError with its wait,
which hides its message for that long."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from therapy_platform.communication.domain.emails import SendRequest
from therapy_platform.communication.use_cases.emails import (
    SenderContext,
    SendOutcome,
    SendResult,
    send_emails,
)
from therapy_platform.platform.consumer import Delivery, RetryLaterError
from therapy_platform.platform.metrics import MetricsSink, Unit

MEASURED: Final = {SendResult.SENT: "EmailsSent", SendResult.FAILED: "EmailsFailed"}


def settle(outcome: SendOutcome, *, metrics: MetricsSink, logger: logging.Logger | Any) -> Exception | None:
    """Log and count one email's outcome; the exception its queue messages settle with."""
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


def send_batch(
    context: SenderContext,
    batch: Sequence[tuple[Delivery, SendRequest]],
    *,
    metrics: MetricsSink,
    logger: logging.Logger | Any,
) -> dict[str, Exception | None]:
    """Per message id: None (done) or the exception to settle it with. An email named by two
    messages of the batch is sent (and counted) once; both messages settle with its outcome."""
    outcomes = send_emails(context, [request.email_id for _, request in batch])
    settled = {
        email_id: settle(outcome.value, metrics=metrics, logger=logger)
        for email_id, outcome in outcomes.items()
    }
    return {delivery.message_id: settled[request.email_id] for delivery, request in batch}
