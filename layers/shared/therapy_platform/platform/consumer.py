"""The event-consumer runtime: every function fed by an SQS queue (bus events, the email queue,
directory files) hands its batch to one `QueueConsumer`, which

- decodes each message body (a body that can never be handled is *poison*: it goes to the
  dead-letter queue at once, with the reason as a message attribute, instead of being retried);
- dispatches it by type to a handler table (a type the table does not list is acknowledged and
  logged: the bus rule, not the function, decides what reaches the queue);
- runs the handler once per eventId when the consumer owns a database: the eventId is claimed in
  `<schema>.processed_events` in the same transaction as the handler's changes, so a redelivered
  event changes nothing and a failed attempt leaves nothing behind;
- reports partial batch failures (`batchItemFailures`): a failed message, and only it, is offered
  again, after an exponential backoff set through its visibility timeout (`RetryLater` may ask
  for a particular delay); after the queue's maxReceiveCount SQS moves it to the DLQ.

A consumer is a table of `type -> handler` plus the decoder of its messages; nothing about SQS,
batches, retries or dead letters is written again in a handler file.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from therapy_platform.platform.events import BusMessage, EventEnvelope
from therapy_platform.platform.ports import ProcessedEvents

LOGGER = logging.getLogger(__name__)

Message = TypeVar("Message")
UnitOfWorkT = TypeVar("UnitOfWorkT", bound="ConsumerUnitOfWork")

MAX_VISIBILITY_SECONDS: Final = 43_200  # SQS allows at most 12 hours


class PoisonMessageError(Exception):
    """This message can never be handled (unreadable, or refused by the rules): it goes to the
    dead-letter queue at once with `reason`, and the batch moves on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLaterError(Exception):
    """Not now (a dependency is down, a message arrived before what it refers to): offer the
    message again after `seconds` (None: the consumer's backoff for its receive count)."""

    def __init__(self, reason: str, *, seconds: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seconds = seconds


@dataclass(frozen=True)
class Delivery:
    """One SQS message as the event-source mapping hands it over."""

    message_id: str
    body: str
    receive_count: int
    receipt_handle: str
    queue_arn: str

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Delivery:
        attributes = record.get("attributes") or {}
        return cls(
            message_id=str(record["messageId"]),
            body=str(record.get("body") or ""),
            receive_count=int(attributes.get("ApproximateReceiveCount") or 1),
            receipt_handle=str(record.get("receiptHandle") or ""),
            queue_arn=str(record.get("eventSourceARN") or ""),
        )


class QueueControl(Protocol):
    """What the runtime asks of SQS beyond the event-source mapping (adapter: platform/sqs.py)."""

    def send_to_dead_letter(self, dead_letter_queue_url: str, body: str, reason: str) -> None: ...

    def delay_retry(self, queue_arn: str, receipt_handle: str, delay_seconds: int) -> None: ...


class ConsumerUnitOfWork(Protocol):
    """The transaction a handler runs in when the consumer deduplicates by eventId."""

    @property
    def processed_events(self) -> ProcessedEvents: ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: the first retry after `base_seconds`, doubling, at most `max_seconds`."""

    base_seconds: int = 2
    max_seconds: int = 300

    def delay_for(self, receive_count: int) -> int:
        exponent = max(0, min(receive_count - 1, 20))
        return int(min(self.max_seconds, self.base_seconds * (2**exponent), MAX_VISIBILITY_SECONDS))


@dataclass(frozen=True)
class Handled:
    """What the runtime tells the log about one message (never its body: it may hold names)."""

    message_id: str
    kind: str
    outcome: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class BatchReport:
    handled: list[Handled] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.handled if item.outcome == outcome)

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failures]}


# ---------------------------------------------------------------------------------- decoders


def decode_bus_message(body: str) -> BusMessage:
    """An EventBridge event (the bus rule's target is the queue) whose `detail` is a BusMessage."""
    try:
        event = json.loads(body)
    except json.JSONDecodeError as error:
        raise PoisonMessageError(f"body is not JSON: {error.msg}") from error
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        raise PoisonMessageError("body is not an EventBridge event with an object `detail`")
    try:
        return BusMessage.model_validate(event["detail"])
    except ValidationError as error:
        raise PoisonMessageError(
            f"detail is not a valid event envelope (fields: {_locations(error)})"
        ) from error


Model = TypeVar("Model", bound=BaseModel)


def json_body(model: type[Model]) -> Callable[[str], Model]:
    """A decoder for queues whose messages are one JSON model (the email queue, operator events)."""

    def decode(body: str) -> Model:
        try:
            return model.model_validate_json(body)
        except ValidationError as error:
            raise PoisonMessageError(
                f"body is not a {model.__name__} (fields: {_locations(error)})"
            ) from error

    return decode


def _locations(error: ValidationError) -> str:
    return ", ".join(".".join(str(part) for part in detail["loc"]) or "body" for detail in error.errors())


# ---------------------------------------------------------------------------------- runtime

Handler = Callable[[Message], Any]
BatchHandler = Callable[[Sequence[tuple[Delivery, Message]]], Mapping[str, Exception | None]]


@dataclass
class QueueConsumer(Generic[Message]):
    """Handles one SQS batch. `kind_of` names a message's type for dispatch and logs;
    `handlers` maps each type to its handler. `batch_handler`, when given, takes every decoded
    message at once (the Kafka bridge sends a batch in one round trip) and answers per message
    id with None (done) or the exception to apply (RetryLaterError, PoisonMessageError, other)."""

    name: str
    decode: Callable[[str], Message]
    kind_of: Callable[[Message], str]
    handlers: Mapping[str, Handler[Message]] = field(default_factory=dict)
    batch_handler: BatchHandler[Message] | None = None
    queues: Callable[[], QueueControl] | None = None
    dead_letter_queue_url: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    logger: logging.Logger | Any = LOGGER

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The Lambda entry point's whole body: `return consumer.handle(event)`."""
        return self.handle_batch(
            [Delivery.from_record(record) for record in event.get("Records") or []]
        ).response()

    def handle_batch(self, deliveries: Sequence[Delivery]) -> BatchReport:
        report = BatchReport()
        decoded: list[tuple[Delivery, Message]] = []
        for delivery in deliveries:
            try:
                decoded.append((delivery, self.decode(delivery.body)))
            except PoisonMessageError as error:
                self._settle(report, delivery, "undecodable", error)
        if self.batch_handler is not None:
            try:
                results = self.batch_handler(decoded) if decoded else {}
            except Exception as error:  # the whole batch failed: each message backs off alone
                results = {delivery.message_id: error for delivery, _ in decoded}
            for delivery, message in decoded:
                self._settle(report, delivery, self.kind_of(message), results.get(delivery.message_id))
        else:
            for delivery, message in decoded:
                kind = self.kind_of(message)
                handler = self.handlers.get(kind)
                if handler is None:
                    report.handled.append(Handled(delivery.message_id, kind, "ignored"))
                    self.logger.info("message type not handled here; acknowledged", extra={"kind": kind})
                    continue
                try:
                    detail = handler(message)
                except Exception as error:  # settled below: retry, dead letter or redelivery
                    self._settle(report, delivery, kind, error)
                else:
                    self._settle(report, delivery, kind, None, detail)
        order = {d.message_id: i for i, d in enumerate(deliveries)}
        report.failures.sort(key=lambda message_id: order.get(message_id, len(order)))
        self.logger.info(
            "batch handled",
            extra={
                "consumer": self.name,
                "messages": len(deliveries),
                "failed": len(report.failures),
                "outcomes": {o: report.count(o) for o in sorted({h.outcome for h in report.handled})},
            },
        )
        return report

    def _settle(
        self,
        report: BatchReport,
        delivery: Delivery,
        kind: str,
        error: Exception | None,
        detail: Any = None,
    ) -> None:
        message_id = delivery.message_id
        if error is None:
            outcome = detail.outcome if isinstance(detail, Handled) else "done"
            extra = dict(detail.detail) if isinstance(detail, Handled) else {}
            report.handled.append(Handled(message_id, kind, outcome, extra))
            self.logger.info("message handled", extra={"kind": kind, "outcome": outcome, **extra})
            return
        if isinstance(error, PoisonMessageError):
            if self._dead_letter(delivery, error.reason):
                report.handled.append(Handled(message_id, kind, "dead_lettered", {"reason": error.reason}))
                self.logger.error(
                    "poison message sent to the dead-letter queue",
                    extra={"message_id": message_id, "kind": kind, "reason": error.reason},
                )
                return
            self.logger.error(
                "poison message; no dead-letter queue took it, so the redrive policy will",
                extra={"message_id": message_id, "kind": kind, "reason": error.reason},
            )
            report.failures.append(message_id)
            report.handled.append(Handled(message_id, kind, "failed", {"reason": error.reason}))
            return
        seconds = self.retry.delay_for(delivery.receive_count)
        if isinstance(error, RetryLaterError):
            seconds = min(error.seconds, MAX_VISIBILITY_SECONDS) if error.seconds else seconds
            reason = error.reason
            self.logger.warning(
                "message to be tried again",
                extra={"message_id": message_id, "kind": kind, "reason": reason, "retry_in_s": seconds},
            )
        else:
            reason = type(error).__name__
            # A bug or an outage: the stack trace goes to the log (it names no personal data:
            # messages carry ids and codes only), the message is offered again after the backoff.
            self.logger.exception(
                "message failed; offered again after the backoff",
                extra={"message_id": message_id, "kind": kind, "retry_in_s": seconds},
            )
        self._delay(delivery, seconds)
        report.failures.append(message_id)
        report.handled.append(Handled(message_id, kind, "retry", {"reason": reason, "retry_in_s": seconds}))

    def _dead_letter(self, delivery: Delivery, reason: str) -> bool:
        if self.queues is None or not self.dead_letter_queue_url:
            return False  # no DLQ configured: fail it; the redrive policy moves it eventually
        try:
            self.queues().send_to_dead_letter(self.dead_letter_queue_url, delivery.body, reason)
        except Exception:
            self.logger.exception("could not dead-letter the message; leaving it to the redrive policy")
            return False
        return True

    def _delay(self, delivery: Delivery, seconds: int) -> None:
        if self.queues is None or not delivery.receipt_handle or not delivery.queue_arn:
            return
        try:
            self.queues().delay_retry(delivery.queue_arn, delivery.receipt_handle, seconds)
        except Exception:
            self.logger.warning("could not set the retry backoff", exc_info=True)


# ---------------------------------------------------------------------------------- bus events

EventHandler = Callable[[UnitOfWorkT, EventEnvelope], Any]


def bus_event_kind(message: BusMessage) -> str:
    return message.envelope.event_type


@dataclass
class OncePerEvent(Generic[UnitOfWorkT]):
    """Runs an event handler inside one transaction of its service, once per (consumer, eventId):
    the claim in `processed_events` commits together with the handler's changes."""

    consumer: str
    unit_of_work: Callable[[], UnitOfWorkT]
    handler: EventHandler[UnitOfWorkT]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __call__(self, message: BusMessage) -> Handled | Any:
        envelope = message.envelope
        with self.unit_of_work() as uow:
            if not uow.processed_events.first_time(envelope.event_id, self.consumer, self.clock()):
                return Handled("", envelope.event_type, "duplicate", {"event_id": str(envelope.event_id)})
            detail = self.handler(uow, envelope)
            uow.commit()
        return detail


def bus_consumer(
    name: str,
    handlers: Mapping[str, Handler[BusMessage]],
    *,
    queues: Callable[[], QueueControl] | None = None,
    dead_letter_queue_url: str | None = None,
    retry: RetryPolicy | None = None,
    logger: logging.Logger | Any = LOGGER,
) -> QueueConsumer[BusMessage]:
    """A consumer of bus events delivered through SQS, dispatching by event type."""
    return QueueConsumer(
        name=name,
        decode=decode_bus_message,
        kind_of=bus_event_kind,
        handlers=handlers,
        queues=queues,
        dead_letter_queue_url=dead_letter_queue_url,
        retry=retry or RetryPolicy(),
        logger=logger,
    )


def once_per_event(
    consumer: str,
    unit_of_work: Callable[[], UnitOfWorkT],
    handlers: Mapping[str, EventHandler[UnitOfWorkT]],
) -> dict[str, Handler[BusMessage]]:
    """The handler table of a consumer that deduplicates by eventId in its own schema."""
    return {
        event_type: OncePerEvent(consumer, unit_of_work, handler) for event_type, handler in handlers.items()
    }


def event_id_of(message: BusMessage) -> uuid.UUID:
    return message.envelope.event_id
