"""The email sender function with in-memory fakes: partial batch failures, backoff through the
message's visibility (the platform's consumer runtime), one copy for a message delivered twice
in one batch, poison to the dead-letter queue."""

from __future__ import annotations

import json
import uuid
from types import ModuleType

import pytest

from communication_fakes import (
    ADDRESSING,
    QUEUE_ARN,
    World,
    permanent,
    sqs_event,
    sqs_record,
    transient,
    world,
)
from support import FakeLambdaContext, load_function
from therapy_platform.communication.domain.emails import EmailKind, EmailStatus, OutgoingEmail, RecipientType
from therapy_platform.communication.use_cases.emails import queue_email
from therapy_platform.platform.metrics import RecordingMetrics


class QueueControl:
    def __init__(self) -> None:
        self.delays: list[tuple[str, str, int]] = []
        self.dead_letters: list[tuple[str, str, str]] = []

    def delay_retry(self, queue_arn: str, receipt_handle: str, delay_seconds: int) -> None:
        self.delays.append((queue_arn, receipt_handle, delay_seconds))

    def send_to_dead_letter(self, dead_letter_queue_url: str, body: str, reason: str) -> None:
        self.dead_letters.append((dead_letter_queue_url, body, reason))


Sender = tuple[ModuleType, World, list[tuple[str, str, int]]]


@pytest.fixture
def queues() -> QueueControl:
    return QueueControl()


@pytest.fixture
def sender(monkeypatch: pytest.MonkeyPatch, queues: QueueControl) -> Sender:
    app = load_function("email_sender")
    w = world()
    monkeypatch.setattr(app, "service", w.context)
    monkeypatch.setattr(app.consumer, "queues", lambda: queues)
    monkeypatch.setattr(app, "metrics", RecordingMetrics())
    return app, w, queues.delays


def _queue(w: World, recipient: str = "praxis@example.org") -> uuid.UUID:
    outgoing = OutgoingEmail(
        kind=EmailKind.WITHDRAWAL_NOTICE,
        recipient=recipient,
        recipient_type=RecipientType.THERAPIST,
        subject="Aktualisierung (Ref: B9)",
        html="<p>Grüße</p>",
        text="Grüße",
        bundle_reference="B9",
    )
    return queue_email(w.context.unit_of_work, w.queue, outgoing, ADDRESSING, now=w.clock()).value.email.id


def test_a_batch_is_sent_and_the_connection_closed(sender: Sender) -> None:
    app, w, delays = sender
    ids = [_queue(w) for _ in range(3)]
    response = app.lambda_handler(sqs_event(ids), FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    assert [email.id for email in w.transport.delivered] == ids
    assert w.transport.closed == 1 and delays == []
    assert app.metrics.total("EmailsSent") == 3 and app.metrics.names() == {"EmailsSent"}


def test_an_email_refused_for_good_is_counted_as_failed(sender: Sender) -> None:
    app, w, _ = sender
    email_id = _queue(w, "unknown@example.org")
    w.transport.errors = [permanent()]
    assert app.lambda_handler(sqs_event([email_id]), FakeLambdaContext()) == {"batchItemFailures": []}
    assert w.database.emails[email_id].status is EmailStatus.FAILED
    assert app.metrics.total("EmailsFailed") == 1 and app.metrics.total("EmailsSent") == 0


def test_the_same_email_twice_in_one_batch_goes_out_once(sender: Sender) -> None:
    app, w, _ = sender
    email_id = _queue(w)
    response = app.lambda_handler(sqs_event([email_id, email_id]), FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    assert w.transport.copies_of(email_id) == 1


def test_a_transient_failure_is_reported_and_hidden_for_the_backoff(sender: Sender) -> None:
    app, w, delays = sender
    ok, flaky = _queue(w), _queue(w, "flaky@example.org")
    w.transport.errors = [transient()]
    event = sqs_event([flaky, ok])
    response = app.lambda_handler(event, FakeLambdaContext())
    failed_message = event["Records"][0]["messageId"]  # type: ignore[index]
    assert response == {"batchItemFailures": [{"itemIdentifier": failed_message}]}
    assert delays == [(QUEUE_ARN, f"receipt-{failed_message}", 10)]
    assert w.database.emails[flaky].status is EmailStatus.QUEUED
    assert w.database.emails[ok].status is EmailStatus.SENT
    # A retry is no failure: only the email that went out is counted.
    assert app.metrics.total("EmailsSent") == 1 and app.metrics.total("EmailsFailed") == 0


def test_a_batch_where_every_message_waits_is_not_an_error(sender: Sender) -> None:
    app, w, delays = sender
    email_id = _queue(w)
    w.transport.errors = [transient()]
    event = sqs_event([email_id])
    response = app.lambda_handler(event, FakeLambdaContext())
    assert len(response["batchItemFailures"]) == 1 and len(delays) == 1


def test_a_body_that_is_not_a_send_request_fails_until_the_dead_letter_queue(sender: Sender) -> None:
    app, _, delays = sender
    poison = sqs_record("not json", message_id="poison-1")
    wrong = sqs_record(json.dumps({"email": "x"}), message_id="poison-2")
    response = app.lambda_handler({"Records": [poison, wrong]}, FakeLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "poison-1"}, {"itemIdentifier": "poison-2"}]}
    assert delays == []


def test_a_message_for_an_unknown_email_is_dropped(sender: Sender) -> None:
    app, _, _ = sender
    assert app.lambda_handler(sqs_event([uuid.uuid4()]), FakeLambdaContext()) == {"batchItemFailures": []}


def test_the_sweep_offers_lost_messages_again(sender: Sender) -> None:
    app, w, _ = sender
    w.queue.down = True
    email_id = _queue(w)
    w.queue.down = False
    assert app.sweep_handler({}, FakeLambdaContext()) == {"offered": 1, "refused": False}
    assert w.queue.messages == [email_id]


def test_with_a_dead_letter_queue_poison_goes_there_at_once_naming_why(
    sender: Sender, queues: QueueControl, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _, delays = sender
    monkeypatch.setattr(app.consumer, "dead_letter_queue_url", "https://sqs/emails-dlq")
    poison = sqs_record(json.dumps({"email": "x"}), message_id="poison-1")
    assert app.lambda_handler({"Records": [poison]}, FakeLambdaContext()) == {"batchItemFailures": []}
    [(url, body, reason)] = queues.dead_letters
    assert (url, body) == ("https://sqs/emails-dlq", poison["body"]) and "email_id" in reason
    assert delays == []


def test_settings_fail_at_cold_start_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from therapy_platform.communication.bootstrap import build_sender
    from therapy_platform.platform.settings import SettingsError

    for name in ("MAIL_FROM", "REPLY_DOMAIN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsError, match="MAIL_FROM"):
        build_sender()
