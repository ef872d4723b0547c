"""The email queue on SQS: one message per email id, consumed by the sender function."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, Final

from therapy_platform.communication.adapters.aws import LazyClient
from therapy_platform.communication.domain.emails import SendRequest

SQS_BATCH_LIMIT: Final = 10


def message_body(email_id: uuid.UUID) -> str:
    return json.dumps(SendRequest(email_id=email_id).model_dump(mode="json"), separators=(",", ":"))


class EmailQueueError(RuntimeError):
    pass


class SqsEmailQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    @classmethod
    def from_url(cls, queue_url: str) -> SqsEmailQueue:
        """The deployed queue; the SQS client is created when the first email is queued."""
        return cls(LazyClient("sqs"), queue_url)

    def enqueue(self, email_ids: Sequence[uuid.UUID]) -> None:
        """Raises EmailQueueError naming the ids SQS did not take (the sweeper offers them again)."""
        refused: list[str] = []
        for start in range(0, len(email_ids), SQS_BATCH_LIMIT):
            chunk = email_ids[start : start + SQS_BATCH_LIMIT]
            response = self._client.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "MessageBody": message_body(email_id)}
                    for index, email_id in enumerate(chunk)
                ],
            )
            refused.extend(str(chunk[int(entry["Id"])]) for entry in response.get("Failed", []))
        if refused:
            raise EmailQueueError(f"SQS did not take emails {', '.join(refused)}")
