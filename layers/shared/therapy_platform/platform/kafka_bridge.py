"""Bridge from the event bus (delivered through SQS) to Kafka topics.

Each SQS message carries an EventBridge event whose `detail` is a BusMessage. Outcomes:
- delivered: the broker acknowledged the envelope;
- retry: the broker could not take it now (the message returns to the queue, with backoff);
- poison: the message can never be delivered (unparseable, unknown event type); it is sent to
  the dead-letter queue at once instead of being retried.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from therapy_platform.platform.events import BusMessage, UnknownEventTypeError, topic_for
from therapy_platform.platform.ports import EventSink


@dataclass(frozen=True)
class QueuedEvent:
    message_id: str
    body: str
    receive_count: int = 1


@dataclass
class BridgeReport:
    delivered: list[str] = field(default_factory=list)
    retry: list[tuple[str, str]] = field(default_factory=list)
    poison: list[tuple[str, str]] = field(default_factory=list)


def parse_bus_message(body: str) -> BusMessage:
    """Raises ValueError with a readable reason when the body is not a bridgeable event."""
    try:
        event = json.loads(body)
    except json.JSONDecodeError as error:
        raise ValueError(f"body is not JSON: {error}") from error
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        raise ValueError("body is not an EventBridge event with an object `detail`")
    try:
        message = BusMessage.model_validate(event["detail"])
    except ValidationError as error:
        fields = ", ".join(".".join(str(part) for part in e["loc"]) for e in error.errors())
        raise ValueError(f"detail is not a valid event envelope (fields: {fields})") from error
    topic_for(message.envelope.event_type)  # raises UnknownEventTypeError (a ValueError)
    return message


def bridge_batch(events: Sequence[QueuedEvent], sink: EventSink) -> BridgeReport:
    report = BridgeReport()
    sendable: list[tuple[str, tuple[str, str, bytes]]] = []
    for event in events:
        try:
            message = parse_bus_message(event.body)
        except (ValueError, UnknownEventTypeError) as error:
            report.poison.append((event.message_id, str(error)))
            continue
        value = json.dumps(message.envelope.to_wire(), separators=(",", ":")).encode()
        sendable.append((event.message_id, (topic_for(message.envelope.event_type), message.key, value)))
    send_errors = sink.send_all([triple for _, triple in sendable])
    for (message_id, _), send_error in zip(sendable, send_errors, strict=True):
        if send_error is None:
            report.delivered.append(message_id)
        else:
            report.retry.append((message_id, send_error))
    return report


def retry_delay_seconds(receive_count: int, *, base: int, cap: int) -> int:
    """Exponential backoff for messages the broker could not take (1st retry after `base`)."""
    exponent = max(0, min(receive_count - 1, 20))
    return int(min(cap, base * (2**exponent)))
