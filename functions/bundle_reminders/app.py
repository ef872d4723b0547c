"""Daily reminder job (EventBridge schedule): one reminder per bundle unanswered for
REMINDER_AFTER_DAYS, by email or as a phone-call task (use_cases/reminders.py). Running it
twice, or twice at once, reminds nobody twice."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.bootstrap import build_follow_up
from therapy_platform.communication.use_cases.reminders import send_due_reminders

logger = Logger(service="bundle-reminders")
service = build_follow_up()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = send_due_reminders(service).value
    if report.failed:
        logger.error("reminders that failed (tried again on the next run)", extra={"failed": report.failed})
    logger.info("reminder run done", extra=asdict(report))
    return asdict(report)
