"""SQS operations the Kafka bridge needs beyond what the event-source mapping does."""

from __future__ import annotations

import logging
from typing import Any

LOGGER = logging.getLogger(__name__)


class SqsQueueAdapter:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._urls: dict[str, str] = {}

    @classmethod
    def from_env(cls) -> SqsQueueAdapter:
        import boto3

        return cls(boto3.client("sqs"))

    def _url_for_arn(self, queue_arn: str) -> str:
        if queue_arn not in self._urls:
            # arn:aws:sqs:<region>:<account>:<name>
            _, _, _, _, account, name = queue_arn.split(":", 5)
            self._urls[queue_arn] = self._client.get_queue_url(
                QueueName=name, QueueOwnerAWSAccountId=account
            )["QueueUrl"]
        return self._urls[queue_arn]

    def send_to_dead_letter(self, dead_letter_queue_url: str, body: str, reason: str) -> None:
        self._client.send_message(
            QueueUrl=dead_letter_queue_url,
            MessageBody=body,
            MessageAttributes={"dead_letter_reason": {"DataType": "String", "StringValue": reason[:1000]}},
        )

    def delay_retry(self, queue_arn: str, receipt_handle: str, delay_seconds: int) -> None:
        """Keep a message invisible for `delay_seconds` before SQS offers it again."""
        try:
            self._client.change_message_visibility(
                QueueUrl=self._url_for_arn(queue_arn),
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=delay_seconds,
            )
        except Exception:
            LOGGER.warning("could not set retry backoff", exc_info=True)
