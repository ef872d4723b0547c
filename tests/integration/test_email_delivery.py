"""Email delivery against real servers: PostgreSQL (the communication service's own role) and
the local SMTP server (localcloud.smtp, a Maildir). One copy per email when a message is
delivered twice, when two senders race, and when a sender is killed mid-batch."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Engine, text

from communication_fakes import ADDRESSING, LEGAL, FakeQueue, sqs_event
from communication_state_fakes import InMemoryContactDirectory
from localcloud import smtp
from localcloud.process import read_pid
from support import FakeLambdaContext, load_function
from therapy_platform.communication.adapters.mail import SmtpTransport
from therapy_platform.communication.adapters.unit_of_work import SqlCommunicationUnitOfWork
from therapy_platform.communication.domain.email_content import (
    BundleInquiry,
    BundlePatient,
    DistanceBand,
    Person,
)
from therapy_platform.communication.domain.emails import (
    DeliveryPolicy,
    Email,
    EmailKind,
    EmailStatus,
    RecipientType,
)
from therapy_platform.communication.ports import StartedAttempt
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases.emails import (
    SenderContext,
    SendResult,
    compose,
    queue_email,
    send_email,
    send_emails,
)
from therapy_platform.contracts.symptoms import Symptom
from therapy_platform.contracts.therapy import Gender
from therapy_platform.platform.database import make_engine

pytestmark = pytest.mark.integration

SCHEMA = "communication_service"
LEASE_SECONDS = 2
DEAD_SENDER_LEASE_SECONDS = 10
CHILD = Path(__file__).with_name("email_sender_child.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[None]:
    started_here = not (read_pid(smtp.SERVICE) is not None and smtp.is_healthy())
    if started_here:
        smtp.start()
    yield
    if started_here:
        smtp.stop()


@pytest.fixture
def mailbox(smtp_server: None) -> Iterator[Callable[[], list[EmailMessage]]]:
    if not smtp.is_healthy():  # a test stopped it
        smtp.start()
    smtp.clear()
    yield smtp.read_messages


@pytest.fixture(scope="module")
def database_url(service_url: Callable[[str], str]) -> str:
    return service_url(SCHEMA)


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=4)
    yield engine
    engine.dispose()


def _context(engine: Engine, **policy: int) -> SenderContext:
    return SenderContext(
        unit_of_work=lambda: SqlCommunicationUnitOfWork(engine, contacts=InMemoryContactDirectory),
        transport=SmtpTransport("127.0.0.1", smtp.port(), timeout_seconds=5, starttls=False),
        queue=FakeQueue(),
        renderer=EmailRenderer(LEGAL),
        addressing=ADDRESSING,
        policy=DeliveryPolicy(
            lease_seconds=LEASE_SECONDS, retry_base_seconds=1, retry_max_seconds=4, **policy
        ),
        clock=lambda: datetime.now(UTC),
    )


def _queue(context: SenderContext, bundle_number: int, **changes: object) -> uuid.UUID:
    reference = f"B{bundle_number}"
    content = BundleInquiry(
        bundle_reference=reference,
        therapist=Person(gender=Gender.MALE, title="Dr. med.", first_name="Jörg", last_name="Müller"),
        patients=[
            BundlePatient(
                reference=f"{reference}-1",
                age=35,
                gender=Gender.FEMALE,
                symptoms=[Symptom.ANXIETY, Symptom.SLEEP],
                insurer="AOK Nordost",
                distance_band=DistanceBand.UP_TO_10,
            )
        ],
        sent_on=date(2026, 11, 23),
    )
    outgoing = compose(
        context.renderer,
        content,
        recipient=f"praxis{bundle_number}@example.org",
        recipient_name="Dr. Jörg Müller",
        recipient_type=RecipientType.THERAPIST,
    ).model_copy(update=changes)
    return queue_email(
        context.unit_of_work, context.queue, outgoing, context.addressing, now=context.clock()
    ).value.email.id


def _copies(messages: list[EmailMessage]) -> Counter[str]:
    return Counter(str(message["X-Email-Id"]) for message in messages)


def _status(engine: Engine, email_id: uuid.UUID) -> tuple[str, int, int]:
    with engine.connect() as connection:
        row = connection.execute(
            text(f"SELECT status, attempts, interrupted_attempts FROM {SCHEMA}.emails WHERE id = :id"),
            {"id": email_id},
        ).one()
    return str(row.status), int(row.attempts), int(row.interrupted_attempts)


def _handler(monkeypatch: pytest.MonkeyPatch, context: SenderContext) -> ModuleType:
    app = load_function("email_sender")
    monkeypatch.setattr(app, "service", context)
    monkeypatch.setattr(app.consumer, "queues", None)  # no per-message backoff outside SQS
    return app


def test_an_inquiry_arrives_with_its_headers_and_german_text(
    engine: Engine, admin_engine: Engine, mailbox: Callable[[], list[EmailMessage]]
) -> None:
    context = _context(engine)
    email_id = _queue(context, 501)
    assert send_email(context, email_id).value.result is SendResult.SENT
    context.transport.close()
    [message] = mailbox()
    assert message["Subject"] == "Anfrage Therapieplatz: 1 Person sucht einen Platz (Ref: B501)"
    assert message["Reply-To"] == "antwort+B501@antwort.vermittlung.test"
    assert message["Message-ID"].strip() == f"<B501.{email_id}@antwort.vermittlung.test>"
    assert message["To"] == '"Dr. Jörg Müller" <praxis501@example.org>'
    assert message["X-Original-To"] == "praxis501@example.org"
    text_part, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert text_part is not None and html_part is not None
    assert text_part.get_content().startswith("Sehr geehrter Herr Dr. Müller,")
    assert "Ängste / Angststörung" in html_part.get_content()
    with admin_engine.connect() as connection:
        row = connection.execute(
            text(f"SELECT status, attempts, sent_at, claim_token FROM {SCHEMA}.emails WHERE id = :id"),
            {"id": email_id},
        ).one()
        attempts = connection.execute(
            text(f"SELECT outcome FROM {SCHEMA}.delivery_attempts WHERE email_id = :id"), {"id": email_id}
        ).all()
        events = connection.execute(
            text(f"SELECT event_type FROM {SCHEMA}.outbox WHERE aggregate_key = :key ORDER BY id"),
            {"key": str(email_id)},
        ).all()
    assert (row.status, row.attempts, row.claim_token) == ("sent", 1, None) and row.sent_at is not None
    assert [attempt.outcome for attempt in attempts] == ["sent"]
    assert [event.event_type for event in events] == ["email.queued", "email.sent"]


def test_the_same_message_delivered_twice_sends_one_copy(
    engine: Engine, mailbox: Callable[[], list[EmailMessage]], monkeypatch: pytest.MonkeyPatch
) -> None:
    context = _context(engine)
    app = _handler(monkeypatch, context)
    email_id = _queue(context, 502)
    # Twice in one batch, and the whole batch once more (a redelivery after a lost ack).
    assert app.lambda_handler(sqs_event([email_id, email_id]), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    assert app.lambda_handler(sqs_event([email_id]), FakeLambdaContext()) == {"batchItemFailures": []}
    assert _copies(mailbox()) == {str(email_id): 1}
    assert _status(engine, email_id) == ("sent", 1, 0)


def test_two_senders_racing_over_the_same_messages_send_each_email_once(
    engine: Engine, mailbox: Callable[[], list[EmailMessage]]
) -> None:
    seed = _context(engine)
    ids = [_queue(seed, 600 + index) for index in range(30)]
    barrier = threading.Barrier(2)
    results: list[Counter[SendResult]] = []

    def worker(order: list[uuid.UUID]) -> None:
        context = _context(engine)
        counts: Counter[SendResult] = Counter()
        barrier.wait()
        for email_id in order:
            counts[send_email(context, email_id).value.result] += 1
        context.transport.close()
        results.append(counts)

    orders = [list(ids), random.Random(7).sample(ids, len(ids))]
    threads = [threading.Thread(target=worker, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    copies = _copies(mailbox())
    assert copies == {str(email_id): 1 for email_id in ids}
    total = sum(results, Counter())
    assert total[SendResult.SENT] == len(ids)
    assert total[SendResult.ALREADY_DONE] + total[SendResult.RETRY] == len(ids)


def test_two_senders_claiming_overlapping_batches_send_each_email_once(
    engine: Engine, mailbox: Callable[[], list[EmailMessage]]
) -> None:
    """Batches lock their rows in id order: two senders over the same emails in different
    orders neither deadlock nor send a second copy."""
    seed = _context(engine)
    ids = [_queue(seed, 650 + index) for index in range(40)]
    barrier = threading.Barrier(2)
    results: list[Counter[SendResult]] = []

    def worker(order: list[uuid.UUID]) -> None:
        context = _context(engine)
        counts: Counter[SendResult] = Counter()
        barrier.wait()
        for start in range(0, len(order), 10):
            for outcome in send_emails(context, order[start : start + 10]).values():
                counts[outcome.value.result] += 1
        context.transport.close()
        results.append(counts)

    orders = [list(ids), random.Random(11).sample(ids, len(ids))]
    threads = [threading.Thread(target=worker, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 2
    assert _copies(mailbox()) == {str(email_id): 1 for email_id in ids}
    total = sum(results, Counter())
    assert total[SendResult.SENT] == len(ids)
    assert total[SendResult.ALREADY_DONE] + total[SendResult.RETRY] == len(ids)


def _claim_by_hand(context: SenderContext, email_id: uuid.UUID, token: uuid.UUID) -> Email:
    with context.unit_of_work() as uow:
        email = uow.emails.get_many_for_update([email_id])[email_id]
        claimed = email.claimed(context.clock(), token, LEASE_SECONDS)
        uow.emails.update_many([claimed])
        uow.attempts.started_many([StartedAttempt(email_id, claimed.attempts, token, context.clock())])
        uow.commit()
    return claimed


def _attempt_outcomes(engine: Engine, email_id: uuid.UUID) -> list[str | None]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(f"SELECT outcome FROM {SCHEMA}.delivery_attempts WHERE email_id = :id ORDER BY attempt"),
            {"id": email_id},
        )
        return [row.outcome for row in rows]


def test_a_late_success_is_recorded_once_with_the_attempts_as_stored(engine: Engine) -> None:
    """A sender whose lease ran out reports success: stored as sent if another sender had put
    the email back in the queue (with the attempt count that sender stored), not at all if
    another sender had finished it; its attempt is finished as sent either way."""
    context = _context(engine)
    requeued, finished = _queue(context, 660), _queue(context, 661)
    late = {email_id: _claim_by_hand(context, email_id, uuid.uuid4()) for email_id in (requeued, finished)}
    with engine.begin() as connection:
        connection.execute(
            text(
                f"UPDATE {SCHEMA}.emails SET status = 'queued', attempts = 2, claim_token = NULL,"
                " lease_until = NULL WHERE id = :id"
            ),
            {"id": requeued},
        )
        connection.execute(
            text(
                f"UPDATE {SCHEMA}.emails SET status = 'sent', sent_at = now(), claim_token = NULL,"
                " lease_until = NULL WHERE id = :id"
            ),
            {"id": finished},
        )
    with context.unit_of_work() as uow:
        tokens = {email_id: late[email_id].claim_token for email_id in late}
        stored = {
            email_id: uow.emails.store_delivered(late[email_id].delivered(context.clock(), "p-1"), token)
            for email_id, token in tokens.items()
            if token is not None
        }
        uow.commit()
    assert stored[finished] is None
    requeued_state = stored[requeued]
    assert requeued_state is not None and requeued_state.attempts == 2
    assert _status(engine, requeued) == ("sent", 2, 0)
    assert _status(engine, finished)[0] == "sent"
    assert _attempt_outcomes(engine, requeued) == ["sent"]
    assert _attempt_outcomes(engine, finished) == ["sent"]


def _run_child(
    database_url: str, kill_at: int, when: str, ids: list[uuid.UUID], *, lease_seconds: int = LEASE_SECONDS
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAIL_TRANSPORT": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port()),
        "SMTP_STARTTLS": "false",  # the local SMTP server speaks no TLS
        "MAIL_FROM": ADDRESSING.sender,
        "REPLY_DOMAIN": ADDRESSING.reply_domain,
        "STAFF_ALERT_EMAIL": "alarm@vermittlung.test",
        "EMAIL_QUEUE_URL": "http://127.0.0.1:1/000000000000/emails",
        "EMAIL_CLAIM_LEASE_SECONDS": str(lease_seconds),
        "AWS_DEFAULT_REGION": "eu-central-1",
        "LEGAL_ORGANISATION": LEGAL.organisation,
        "LEGAL_STREET": LEGAL.street,
        "LEGAL_POSTCODE_CITY": LEGAL.postcode_city,
        "LEGAL_EMAIL": LEGAL.email,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, str(CHILD), str(kill_at), when, *map(str, ids)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_sender_killed_after_claiming_loses_nothing_and_duplicates_nothing(
    engine: Engine,
    database_url: str,
    mailbox: Callable[[], list[EmailMessage]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context = _context(engine)
    ids = [_queue(context, 700 + index) for index in range(8)]
    # The dead sender's lease must outlive its three sends and the first redelivery below,
    # which checks that its claims are respected (the batch was claimed before the sends).
    child = _run_child(database_url, 4, "after_claim", ids, lease_seconds=DEAD_SENDER_LEASE_SECONDS)
    assert child.returncode == -9, child.stderr
    # Three went out; the dead sender had claimed its whole batch in one transaction, so the
    # fourth (being sent) and the rest (not yet sent) are all `sending` under its lease.
    assert set(_copies(mailbox())) == {str(email_id) for email_id in ids[:3]}
    assert {_status(engine, email_id) for email_id in ids[3:]} == {("sending", 1, 0)}

    # SQS offers the unacknowledged batch again. While the dead sender's lease is live, its
    # emails wait (reported as batch item failures); the ones sent are acknowledged.
    app = _handler(monkeypatch, context)
    first = app.lambda_handler(event := sqs_event(ids), FakeLambdaContext())
    waiting = [{"itemIdentifier": record["messageId"]} for record in event["Records"][3:]]  # type: ignore[index]
    assert first == {"batchItemFailures": waiting}
    assert set(_copies(mailbox())) == {str(email_id) for email_id in ids[:3]}
    time.sleep(DEAD_SENDER_LEASE_SECONDS + 0.5)
    assert app.lambda_handler(sqs_event(ids[3:]), FakeLambdaContext()) == {"batchItemFailures": []}

    assert _copies(mailbox()) == {str(email_id): 1 for email_id in ids}
    assert {_status(engine, email_id) for email_id in ids[3:]} == {("sent", 2, 1)}
    assert {_status(engine, email_id)[:2] for email_id in ids[:3]} == {("sent", 1)}


def test_a_sender_killed_after_the_server_accepted_resends_with_the_same_message_id(
    engine: Engine,
    database_url: str,
    mailbox: Callable[[], list[EmailMessage]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one window the claim cannot close (see domain/emails.py): the server has the message
    but `sent` was never committed. Nothing is lost; the second copy carries the same Message-ID
    (so mail clients fold it away) and the email records the interruption."""
    context = _context(engine)
    ids = [_queue(context, 800 + index) for index in range(3)]
    child = _run_child(database_url, 2, "after_send", ids)
    assert child.returncode == -9, child.stderr
    time.sleep(LEASE_SECONDS + 0.5)
    app = _handler(monkeypatch, context)
    assert app.lambda_handler(sqs_event(ids), FakeLambdaContext()) == {"batchItemFailures": []}
    messages = mailbox()
    assert _copies(messages) == {str(ids[0]): 1, str(ids[1]): 2, str(ids[2]): 1}
    assert len({message["Message-ID"] for message in messages if message["X-Email-Id"] == str(ids[1])}) == 1
    assert _status(engine, ids[1]) == ("sent", 2, 1)


def test_an_smtp_outage_is_retried_with_backoff_and_nothing_is_lost(
    engine: Engine, mailbox: Callable[[], list[EmailMessage]]
) -> None:
    context = _context(engine)
    email_id = _queue(context, 901)
    smtp.stop()
    try:
        outcome = send_email(context, email_id).value
        assert outcome.result is SendResult.RETRY and outcome.retry_in_seconds == 1
        assert "unreachable" in (outcome.error or "")
        assert _status(engine, email_id) == ("queued", 1, 0)
    finally:
        smtp.start()
    time.sleep(1.1)
    assert send_email(context, email_id).value.result is SendResult.SENT
    context.transport.close()
    assert _copies(mailbox()) == {str(email_id): 1}
    assert _status(engine, email_id) == ("sent", 2, 0)


def test_a_final_failure_alerts_staff_by_email(
    engine: Engine, admin_engine: Engine, mailbox: Callable[[], list[EmailMessage]]
) -> None:
    context = _context(engine)
    email_id = _queue(context, 902, max_attempts=1)
    smtp.stop()
    try:
        outcome = send_email(context, email_id).value
    finally:
        smtp.start()
    assert outcome.result is SendResult.FAILED and outcome.alert is not None
    assert isinstance(context.queue, FakeQueue) and context.queue.messages[-1] == outcome.alert.id
    assert send_email(context, outcome.alert.id).value.result is SendResult.SENT
    context.transport.close()
    [alert] = mailbox()
    assert alert["To"] == "alarm@vermittlung.test"
    assert str(alert["Subject"]).startswith("[Versand fehlgeschlagen] Anfrage Therapieplatz")
    assert alert["Auto-Submitted"] == "auto-generated"
    body = alert.get_body(("plain",))
    assert body is not None and "praxis902@example.org" in body.get_content()
    with admin_engine.connect() as connection:
        events = connection.execute(
            text(f"SELECT event_type, envelope FROM {SCHEMA}.outbox WHERE aggregate_key = :key ORDER BY id"),
            {"key": str(email_id)},
        ).all()
    assert [event.event_type for event in events] == ["email.queued", "email.failed"]
    assert events[1].envelope["payload"]["kind"] == EmailKind.BUNDLE_INQUIRY.value
    assert _status(engine, email_id) == (EmailStatus.FAILED.value, 1, 0)


def test_the_sweeper_finds_emails_whose_queue_message_was_lost(engine: Engine) -> None:
    context = _context(engine)
    refusing = FakeQueue()
    refusing.down = True
    context.queue = refusing
    email_id = _queue(context, 903)
    with SqlCommunicationUnitOfWork(engine, contacts=InMemoryContactDirectory) as uow:
        due = uow.emails.due_for_requeue(now=datetime.now(UTC), offered_before=datetime.now(UTC), limit=1000)
    assert email_id in due


def test_the_database_refuses_states_the_domain_never_produces(engine: Engine) -> None:
    context = _context(engine)
    email_id = _queue(context, 904)
    with pytest.raises(Exception, match="emails_claim_iff_sending"), engine.begin() as connection:
        connection.execute(
            text(f"UPDATE {SCHEMA}.emails SET status = 'sending' WHERE id = :id"), {"id": email_id}
        )
    with pytest.raises(Exception, match="emails_sent_at_iff_sent"), engine.begin() as connection:
        connection.execute(
            text(f"UPDATE {SCHEMA}.emails SET status = 'sent' WHERE id = :id"), {"id": email_id}
        )
