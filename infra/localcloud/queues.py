"""The deployed stack's SQS queues for the operator: depths (`localcloud status`), finding a
dead-letter queue by its short name (`dlq peek`, `redrive`) and peeking at its messages without
taking them away.

The functions take an SQS client (boto3's, or a fake in the unit tests); formatting is pure."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DEAD_LETTER_SUFFIX = "-dlq"
PEEK_HOLD_S = 30  # long enough to collect a batch without seeing a message twice; given back at once


class UnknownQueueError(LookupError):
    """No dead-letter queue of the stack has that name; carries the names that exist."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"no dead-letter queue {name!r}; known: {', '.join(self.known) or '(none)'}")


@dataclass(frozen=True)
class QueueDepth:
    name: str
    url: str
    visible: int
    in_flight: int
    is_dead_letter: bool

    @property
    def depth(self) -> int:
        return self.visible + self.in_flight


@dataclass(frozen=True)
class PeekedMessage:
    message_id: str
    receive_count: int
    first_sent: datetime
    body: str


def _queue_urls(sqs: Any, prefix: str) -> list[str]:
    urls: list[str] = []
    kwargs: dict[str, Any] = {"QueueNamePrefix": prefix, "MaxResults": 1000}
    while True:
        page = sqs.list_queues(**kwargs)
        urls += page.get("QueueUrls", [])
        if not page.get("NextToken"):
            return sorted(urls)
        kwargs["NextToken"] = page["NextToken"]


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def queue_depths(sqs: Any, prefix: str) -> list[QueueDepth]:
    """Every queue whose name starts with `prefix` (the stack's name), with its approximate depth.
    A queue is a dead-letter queue when another queue's redrive policy names it, or by its name."""
    attributes = {
        url: sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "QueueArn",
                "RedrivePolicy",
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        for url in _queue_urls(sqs, prefix)
    }
    dead_letter_arns = {
        json.loads(found["RedrivePolicy"]).get("deadLetterTargetArn")
        for found in attributes.values()
        if found.get("RedrivePolicy")
    }
    return [
        QueueDepth(
            name=_name(url),
            url=url,
            visible=int(found.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(found.get("ApproximateNumberOfMessagesNotVisible", 0)),
            is_dead_letter=found.get("QueueArn") in dead_letter_arns
            or _name(url).endswith(DEAD_LETTER_SUFFIX),
        )
        for url, found in attributes.items()
    ]


def short_name(name: str, prefix: str) -> str:
    return name.removeprefix(prefix)


def format_depths(queues: list[QueueDepth], prefix: str) -> list[str]:
    """One line per queue: short name, depth (visible + in flight); dead-letter queues marked, and
    one that holds messages shouted at (it needs an operator: `localcloud dlq peek`)."""
    if not queues:
        return ["  queues      (none found; is the stack deployed?)"]
    width = max(len(short_name(queue.name, prefix)) for queue in queues)
    lines = []
    for queue in queues:
        label = short_name(queue.name, prefix).ljust(width)
        counts = f"{queue.depth:>6}  ({queue.visible} visible, {queue.in_flight} in flight)"
        kind = "DLQ" if queue.is_dead_letter else "   "
        alarm = "  <-- !! DEAD LETTERS: localcloud dlq peek " + short_name(queue.name, prefix)
        lines.append(f"  {kind} {label} {counts}{alarm if queue.is_dead_letter and queue.depth else ''}")
    return lines


def resolve_dead_letter_queue(sqs: Any, name: str, prefix: str) -> str:
    """The URL of the stack's dead-letter queue called `name`: a URL, the full name, or its short
    name (what follows the stack's prefix, with or without `-dlq`, e.g. `emails`)."""
    if name.startswith(("http://", "https://")):
        return name
    dead_letters = [queue for queue in queue_depths(sqs, prefix) if queue.is_dead_letter]
    for candidate in (name, prefix + name, prefix + name + DEAD_LETTER_SUFFIX):
        found = next((queue.url for queue in dead_letters if queue.name == candidate), None)
        if found:
            return found
    raise UnknownQueueError(name, (short_name(queue.name, prefix) for queue in dead_letters))


def peek(sqs: Any, url: str, *, max_messages: int = 10) -> list[PeekedMessage]:
    """Up to `max_messages` messages of the queue, left in it: each received message is made
    visible again right away (its receive count goes up by one, as in the console's poll)."""
    seen: dict[str, PeekedMessage] = {}
    handles: list[str] = []
    try:
        while len(seen) < max_messages:
            received = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, max_messages - len(seen)),
                VisibilityTimeout=PEEK_HOLD_S,
                WaitTimeSeconds=0,
                AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            ).get("Messages", [])
            if not received:
                break
            for message in received:
                handles.append(message["ReceiptHandle"])
                attributes = message.get("Attributes", {})
                sent_ms = int(attributes.get("SentTimestamp", 0))
                seen.setdefault(
                    message["MessageId"],
                    PeekedMessage(
                        message_id=message["MessageId"],
                        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
                        first_sent=datetime.fromtimestamp(sent_ms / 1000, UTC),
                        body=message.get("Body", ""),
                    ),
                )
    finally:
        _release(sqs, url, handles)
    return list(seen.values())[:max_messages]


def _release(sqs: Any, url: str, handles: list[str]) -> None:
    for start in range(0, len(handles), 10):
        batch = handles[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for index, handle in enumerate(batch)
            ],
        )


def readable_body(body: str) -> str:
    """A JSON body pretty-printed (bodies carry ids, never personal data); anything else as is."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def format_peeked(queue: str, messages: list[PeekedMessage]) -> list[str]:
    if not messages:
        return [f"{queue}: no messages"]
    lines = [f"{queue}: {len(messages)} message(s), left in the queue"]
    for message in messages:
        lines += [
            "",
            f"message id    : {message.message_id}",
            f"receive count : {message.receive_count} (this peek included)",
            f"first sent    : {message.first_sent.isoformat(timespec='seconds')}",
            "body          :",
            readable_body(message.body),
        ]
    return lines
