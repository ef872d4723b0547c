"""Reply intake (EventBridge schedule): stores replies that arrived at the reply addresses
(antwort+B123@REPLY_DOMAIN) in `inbound_replies`, linked to their bundle, once per Message-ID
(logic/replies.py). The inbox is the local SMTP server's Maildir (REPLY_INBOX=maildir) or the
S3 prefix SES receiving writes to (REPLY_INBOX=s3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.adapters.reply_inbox import inbox_from_settings
from therapy_platform.communication.adapters.state import SqlCommunicationStateUnitOfWork
from therapy_platform.communication.domain.emails import Addressing
from therapy_platform.communication.mail_settings import MailSettings
from therapy_platform.communication.settings import ReplyInboxSettings
from therapy_platform.communication.state_ports import CommunicationStateUnitOfWork, ReplyInbox
from therapy_platform.communication.use_cases.replies import take_in_replies
from therapy_platform.platform.database import default_engine


@dataclass
class Dependencies:
    unit_of_work: Callable[[], CommunicationStateUnitOfWork]
    inbox: Callable[[], ReplyInbox]
    addressing: Callable[[], Addressing]
    clock: Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


logger = Logger(service="reply-intake")
dependencies = Dependencies(
    unit_of_work=lambda: SqlCommunicationStateUnitOfWork(default_engine()),
    inbox=cache(lambda: inbox_from_settings(ReplyInboxSettings.from_env())),
    addressing=cache(lambda: MailSettings.from_env().addressing()),
    clock=_now,
)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = take_in_replies(
        dependencies.unit_of_work, dependencies.inbox(), dependencies.addressing(), now=dependencies.clock()
    )
    if report.unreadable:
        logger.warning("messages no parser could read (left out)", extra={"unreadable": report.unreadable})
    logger.info("reply intake done", extra=asdict(report))
    return asdict(report)
