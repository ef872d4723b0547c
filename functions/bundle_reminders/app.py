"""Daily reminder job (EventBridge schedule): one reminder per bundle unanswered for
REMINDER_AFTER_DAYS, by email or as a phone-call task (logic/reminders.py). Running it twice,
or twice at once, reminds nobody twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.bootstrap import default_context
from therapy_platform.communication.use_cases.events import CommunicationContext
from therapy_platform.communication.use_cases.reminders import send_due_reminders

logger = Logger(service="bundle-reminders")


@dataclass
class Dependencies:
    context: Callable[[], CommunicationContext]


dependencies = Dependencies(context=default_context)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = send_due_reminders(dependencies.context())
    if report.failed:
        logger.error("reminders that failed (tried again on the next run)", extra={"failed": report.failed})
    logger.info("reminder run done", extra=asdict(report))
    return asdict(report)
