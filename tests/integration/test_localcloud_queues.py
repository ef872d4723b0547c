"""`localcloud status` and `dlq peek` against LocalStack's SQS: real depths, a dead letter found by
its short name and peeked without leaving the queue."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from localcloud import queues
from localcloud.aws import client

pytestmark = pytest.mark.integration


@pytest.fixture
def queue_pair(localstack_server: None) -> Iterator[tuple[str, str, str]]:
    """A work queue and its DLQ under a prefix of their own (the deployed stack's are not touched)."""
    prefix = f"opsux-{uuid.uuid4().hex[:8]}-"
    sqs = client("sqs")
    dead_letter = sqs.create_queue(QueueName=f"{prefix}graveyard")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dead_letter, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})
    work = sqs.create_queue(QueueName=f"{prefix}work", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    yield prefix, work, dead_letter
    for url in (work, dead_letter):
        sqs.delete_queue(QueueUrl=url)


def test_depths_and_a_peek_that_leaves_the_dead_letters_in_their_queue(
    queue_pair: tuple[str, str, str],
) -> None:
    prefix, work, dead_letter = queue_pair
    sqs = client("sqs")
    sqs.send_message(QueueUrl=work, MessageBody="{}")
    for number in range(3):
        sqs.send_message(QueueUrl=dead_letter, MessageBody=json.dumps({"eventId": f"e-{number}"}))

    depths = {queue.name.removeprefix(prefix): queue for queue in queues.queue_depths(sqs, prefix)}
    assert {name: (q.depth, q.is_dead_letter) for name, q in depths.items()} == {
        "graveyard": (3, True),
        "work": (1, False),
    }
    assert any("!! DEAD LETTERS" in line for line in queues.format_depths(list(depths.values()), prefix))

    url = queues.resolve_dead_letter_queue(sqs, "graveyard", prefix)
    assert url == dead_letter
    peeked = queues.peek(sqs, url, max_messages=10)
    assert sorted(json.loads(m.body)["eventId"] for m in peeked) == ["e-0", "e-1", "e-2"]

    # Given back at once: a second peek sees every message again (no waiting for a timeout).
    again = queues.peek(sqs, url, max_messages=10)
    assert sorted(m.message_id for m in again) == sorted(m.message_id for m in peeked)
    assert all(m.receive_count == 2 for m in again)
