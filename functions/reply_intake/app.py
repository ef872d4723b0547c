"""Reply intake (EventBridge schedule): takes in the messages that arrived at the reply addresses
(antwort+B123@REPLY_DOMAIN) one at a time: a trustworthy reply is stored in `inbound_replies`,
linked to its bundle, once per Message-ID; anything else (SES verdicts, a sender who is not the
bundle's therapist or practice, unknown bundles, oversized or unreadable messages) goes to the
staff review list (use_cases/replies.py). The inbox is the local SMTP server's Maildir
(REPLY_INBOX=maildir) or the S3 prefix SES receiving writes to (REPLY_INBOX=s3). The log holds
counts, reasons, inbox keys and bundle references, never addresses or text."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from therapy_platform.communication.bootstrap import build_reply_intake
from therapy_platform.communication.use_cases.replies import take_in_replies

logger = Logger(service="reply-intake")
service = build_reply_intake()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = take_in_replies(
        service.unit_of_work, service.inbox, service.addressing, now=service.clock(), policy=service.policy
    )
    if report.unreadable:
        logger.warning(
            "messages no parser could read (on the review list)", extra={"keys": report.unreadable}
        )
    logger.info("reply intake done", extra=asdict(report))
    return asdict(report)
