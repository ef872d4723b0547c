"""Daily reminder job (EventBridge schedule): one reminder per bundle unanswered for
REMINDER_AFTER_DAYS, by email or as a phone-call task (use_cases/reminders.py). Running it
twice, or twice at once, reminds nobody twice. With the feature flag `reminder_emails` off, email
reminders are held back (`held` in the answer); call-task reminders go on (docs/feature-flags.md)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.bootstrap import build_follow_up
from therapy_platform.communication.use_cases.reminders import send_due_reminders
from therapy_platform.platform.feature_flag_store import flags_from_env
from therapy_platform.platform.feature_flags import Flag, FlagEvaluator

logger = Logger(service="bundle-reminders")
service = build_follow_up()
flags: FlagEvaluator = flags_from_env()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    emails = flags.enabled(Flag.REMINDER_EMAILS)
    if not emails:
        logger.warning("feature flag reminder_emails is off: email reminders are held back")
    report = send_due_reminders(service, emails=emails).value
    if report.failed:
        logger.error("reminders that failed (tried again on the next run)", extra={"failed": report.failed})
    logger.info("reminder run done", extra=asdict(report))
    return asdict(report)
