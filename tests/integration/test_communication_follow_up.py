"""The communication service's follow-up against real servers: PostgreSQL (the service's own
role) and the local SMTP server (a Maildir). Bundle inquiries reach the mailbox with the
reference and without patient names, phone bundles become call tasks in distinct slots,
redelivered events and repeated reminder runs write nothing twice, replies to the reply address
are taken in once."""

from __future__ import annotations

import smtplib
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import Engine, text

from communication_fakes import ADDRESSING, LEGAL, FakeQueue
from communication_state_fakes import (
    InMemoryContactDirectory,
    Reaction,
    bundle_sent_payload,
    deliver,
    envelope,
    erase_patient,
    patient_payload,
)
from localcloud import smtp
from localcloud.process import read_pid
from support import api_event, call, load_function
from therapy_platform.communication.adapters.mail import SmtpTransport
from therapy_platform.communication.adapters.reply_inbox import MaildirInbox
from therapy_platform.communication.adapters.unit_of_work import SqlCommunicationUnitOfWork
from therapy_platform.communication.bootstrap import CommunicationService, unit_of_work_factory
from therapy_platform.communication.domain.emails import DeliveryPolicy
from therapy_platform.communication.domain.phone_calls import CallPlanningPolicy, WorkingCalendar
from therapy_platform.communication.domain.replies import reply_message
from therapy_platform.communication.domain.tracking import FollowUpPolicy
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases.emails import SenderContext, SendResult, send_email
from therapy_platform.communication.use_cases.events import CommunicationContext
from therapy_platform.communication.use_cases.reminders import send_due_reminders
from therapy_platform.communication.use_cases.replies import take_in_replies
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.ports import EventPublisher

pytestmark = pytest.mark.integration

SCHEMA = "communication_service"
START = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)  # Monday 07:05 in Berlin


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
    smtp.clear()
    yield smtp.read_messages


@pytest.fixture(scope="module")
def engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url(SCHEMA), pool_size=4)
    yield engine
    engine.dispose()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def context(engine: Engine, clock: Clock) -> CommunicationContext:
    calls = CallPlanningPolicy()
    return CommunicationContext(
        unit_of_work=lambda: SqlCommunicationUnitOfWork(engine, contacts=InMemoryContactDirectory),
        queue=FakeQueue(),
        renderer=EmailRenderer(LEGAL),
        addressing=ADDRESSING,
        calls=calls,
        follow_up=FollowUpPolicy(),
        calendar=WorkingCalendar.for_policy(calls),
        clock=clock,
    )


def deliver_queued(context: CommunicationContext) -> list[SendResult]:
    """What the sender function does with the queue's messages: send each email through SMTP."""
    queue = context.queue
    assert isinstance(queue, FakeQueue)
    sender = SenderContext(
        unit_of_work=context.unit_of_work,
        transport=SmtpTransport("127.0.0.1", smtp.port(), timeout_seconds=5, starttls=False),
        queue=queue,
        renderer=context.renderer,
        addressing=context.addressing,
        policy=DeliveryPolicy(),
        clock=lambda: datetime.now(UTC),
    )
    ids, queue.messages = list(queue.messages), []
    results = [send_email(sender, email_id).value.result for email_id in ids]
    sender.transport.close()
    return results


def number() -> int:
    return int(uuid.uuid4().int % 10**9) + 1


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql), params).all())


def handle(context: CommunicationContext, event: EventEnvelope) -> Reaction:
    """One bus event through the service's event consumer (bootstrap.events_consumer)."""
    return deliver(context, event)


def test_an_email_bundle_arrives_with_its_reference_and_without_patient_names(
    context: CommunicationContext, engine: Engine, mailbox: Callable[[], list[EmailMessage]]
) -> None:
    ref = number()
    payload = bundle_sent_payload(number=ref, sent_at=START, email=f"praxis{ref}@example.org")
    # The communication service knows these patients' names (for their own emails) ...
    names = []
    for member in payload["members"]:
        first, last = f"Vorname{member['position']}x", f"Nachname{member['position']}x"
        names += [first, last]
        patient = patient_payload(uuid.UUID(member["patient_id"]), first_name=first, last_name=last)
        handle(context, envelope("patient.created", patient, at=START))
    outcome = handle(context, envelope("bundle.sent", payload, at=START))
    assert deliver_queued(context) == [SendResult.SENT]
    [message] = mailbox()
    assert f"Ref: B{ref}" in message["Subject"]
    assert message["Reply-To"] == f"antwort+B{ref}@{ADDRESSING.reply_domain}"
    assert message["X-Email-Id"] == str(outcome.emails[0])
    text_part, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert text_part is not None and html_part is not None
    body = text_part.get_content() + html_part.get_content()
    # ... but an inquiry carries references only.
    assert not [name for name in names if name in body]
    assert f"B{ref}-1" in body and f"B{ref}-3" in body
    [bundle] = rows(
        engine,
        f"SELECT channel, sent_at, jsonb_array_length(members) AS n FROM {SCHEMA}.sent_bundles "
        "WHERE reference = :r",
        r=f"B{ref}",
    )
    assert (bundle.channel, bundle.sent_at, bundle.n) == ("email", START, 3)


def test_phone_bundles_become_tasks_in_distinct_slots_inside_the_window(
    context: CommunicationContext, engine: Engine
) -> None:
    windows = {"wed": ["08:00-08:30"]}
    refs = [number() for _ in range(3)]
    for ref in refs:
        handle(
            context,
            envelope(
                "bundle.sent",
                bundle_sent_payload(number=ref, sent_at=START, email=None, phone_windows=windows),
                at=START,
            ),
        )
    tasks = rows(
        engine,
        f"SELECT slot_start, scheduling_rule, purpose, status FROM {SCHEMA}.phone_call_tasks "
        "WHERE bundle_reference = ANY(:refs) ORDER BY slot_start",
        refs=[f"B{ref}" for ref in refs],
    )
    assert len(tasks) == 3 and len({task.slot_start for task in tasks}) == 3
    for task in tasks:
        local = task.slot_start.astimezone(context.calls.zone)
        assert (local.date().isoformat(), local.hour) == ("2026-11-25", 8)
        assert (task.scheduling_rule, task.purpose, task.status) == ("phone_window", "inquiry", "scheduled")
    events = rows(
        engine,
        f"SELECT count(*) AS n FROM {SCHEMA}.outbox WHERE event_type = 'phone_call.scheduled' "
        "AND envelope->'payload'->>'bundle_reference' = ANY(:refs)",
        refs=[f"B{ref}" for ref in refs],
    )
    assert events[0].n == 3
    # The database refuses a second scheduled call in a taken slot, whatever the code does.
    with pytest.raises(Exception, match="phone_call_tasks_one_per_slot"), engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO {SCHEMA}.phone_call_tasks (id, purpose, therapist_id, therapist_name, "
                "slot_start, status, created_at, updated_at) "
                "VALUES (:id, 'follow_up', :t, 'x', :slot, 'scheduled', now(), now())"
            ),
            {"id": uuid.uuid4(), "t": uuid.uuid4(), "slot": tasks[0].slot_start},
        )


def test_a_redelivered_event_writes_nothing_twice_even_at_the_same_moment(
    context: CommunicationContext, engine: Engine
) -> None:
    email_ref, phone_ref = number(), number()
    email_event = envelope("bundle.sent", bundle_sent_payload(number=email_ref, sent_at=START), at=START)
    phone_event = envelope(
        "bundle.sent", bundle_sent_payload(number=phone_ref, sent_at=START, email=None), at=START
    )
    outcomes: list[Reaction] = []
    barrier = threading.Barrier(4)

    def deliver_at_once(event: EventEnvelope) -> None:
        barrier.wait()
        outcomes.append(handle(context, event))

    threads = [
        threading.Thread(target=deliver_at_once, args=(event,))
        for event in (email_event, email_event, phone_event, phone_event)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    handle(context, email_event)  # and once more, later
    assert sum(outcome.duplicate for outcome in outcomes) == 2
    emails = rows(engine, f"SELECT id FROM {SCHEMA}.emails WHERE bundle_reference = :r", r=f"B{email_ref}")
    calls = rows(
        engine, f"SELECT id FROM {SCHEMA}.phone_call_tasks WHERE bundle_reference = :r", r=f"B{phone_ref}"
    )
    assert (len(emails), len(calls)) == (1, 1)


def test_the_reminder_job_reminds_once_even_when_run_twice_at_once(
    context: CommunicationContext, engine: Engine, clock: Clock, mailbox: Callable[[], list[EmailMessage]]
) -> None:
    ref = number()
    handle(context, envelope("bundle.sent", bundle_sent_payload(number=ref, sent_at=START), at=START))
    deliver_queued(context)
    clock.now = START + timedelta(days=7, hours=1)
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        send_due_reminders(context)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    send_due_reminders(context)
    reminders = rows(
        engine,
        f"SELECT id FROM {SCHEMA}.emails WHERE bundle_reference = :r AND kind = 'bundle_reminder'",
        r=f"B{ref}",
    )
    assert len(reminders) == 1
    deliver_queued(context)
    subjects = [str(message["Subject"]) for message in mailbox()]
    assert subjects.count(f"Erinnerung: Anfrage Therapieplatz vom 23.11.2026 (Ref: B{ref})") == 1
    [bundle] = rows(
        engine, f"SELECT reminder_sent_at FROM {SCHEMA}.sent_bundles WHERE reference = :r", r=f"B{ref}"
    )
    assert bundle.reminder_sent_at == clock.now


def test_a_reply_to_the_reply_address_is_taken_in_once_and_linked(
    context: CommunicationContext, engine: Engine, mailbox: Callable[[], list[EmailMessage]]
) -> None:
    ref = number()
    sent = bundle_sent_payload(number=ref, sent_at=START, email=f"praxis{ref}@example.org")
    [email_id] = handle(context, envelope("bundle.sent", sent, at=START)).emails
    deliver_queued(context)
    [inquiry] = mailbox()
    reply = reply_message(
        to=str(inquiry["Reply-To"]),
        sender=f"praxis{ref}@example.org",  # the practice the inquiry went to
        subject=f"AW: {inquiry['Subject']}",
        text=f"B{ref}-1: ja, Erstgespräch am Montag möglich.",
        in_reply_to=str(inquiry["Message-ID"]).strip(),
        message_id=f"<reply-{ref}@praxis.example.org>",
    )
    with smtplib.SMTP("127.0.0.1", smtp.port(), timeout=5) as client:
        client.send_message(reply)
    inbox = MaildirInbox(smtp.maildir_path())
    first = take_in_replies(context.unit_of_work, inbox, ADDRESSING, now=datetime.now(UTC))
    assert first.stored == 1 and first.not_replies >= 1  # the inquiry itself is in the same sink
    # A second run finds nothing new; the same reply delivered again is not stored twice.
    with smtplib.SMTP("127.0.0.1", smtp.port(), timeout=5) as client:
        client.send_message(reply)
    second = take_in_replies(context.unit_of_work, inbox, ADDRESSING, now=datetime.now(UTC))
    assert (second.stored, second.duplicates) == (0, 1)
    stored = rows(
        engine,
        f"SELECT bundle_reference, email_id, from_address, text FROM {SCHEMA}.inbound_replies "
        "WHERE message_id = :m",
        m=f"<reply-{ref}@praxis.example.org>",
    )
    assert len(stored) == 1
    assert (stored[0].bundle_reference, stored[0].email_id) == (f"B{ref}", email_id)
    assert "Erstgespräch" in stored[0].text
    assert len(mailbox()) == 3  # nothing deleted from the mailbox


def test_a_forged_reply_goes_to_the_review_list_and_never_into_the_bundle(
    context: CommunicationContext, engine: Engine, mailbox: Callable[[], list[EmailMessage]]
) -> None:
    ref = number()
    sent = bundle_sent_payload(number=ref, sent_at=START, email=f"praxis{ref}@example.org")
    handle(context, envelope("bundle.sent", sent, at=START))
    deliver_queued(context)
    [inquiry] = mailbox()
    forged = reply_message(
        to=str(inquiry["Reply-To"]),  # antwort+B<ref>@...: references are sequential, easy to guess
        sender="mallory@evil.example",
        subject=f"AW: {inquiry['Subject']}",
        text=f"B{ref}-1: ja, B{ref}-2: ja, B{ref}-3: ja",
        in_reply_to=str(inquiry["Message-ID"]).strip(),
        message_id=f"<forged-{ref}@evil.example>",
    )
    with smtplib.SMTP("127.0.0.1", smtp.port(), timeout=5) as client:
        client.send_message(forged)
    inbox = MaildirInbox(smtp.maildir_path())
    report = take_in_replies(context.unit_of_work, inbox, ADDRESSING, now=datetime.now(UTC))
    assert (report.stored, report.reviewed, report.review_reasons) == (0, 1, {"sender_not_addressee": 1})
    assert (
        rows(engine, f"SELECT id FROM {SCHEMA}.inbound_replies WHERE bundle_reference = :r", r=f"B{ref}")
        == []
    )
    [review] = rows(
        engine,
        f"SELECT reasons, from_address, claimed_bundle_reference, text FROM {SCHEMA}.reply_reviews"
        " WHERE message_id = :m",
        m=f"<forged-{ref}@evil.example>",
    )
    assert review.reasons == ["sender_not_addressee"] and review.claimed_bundle_reference == f"B{ref}"
    assert review.from_address == "mallory@evil.example" and f"B{ref}-1: ja" in review.text
    with context.unit_of_work() as uow:
        assert uow.replies.for_bundle(f"B{ref}", 10) == []
        listed, total = uow.replies.reviews(page=1, limit=100)
    assert total >= 1 and f"<forged-{ref}@evil.example>" in {item.message_id for item in listed}
    # Taken in (moved to cur/): the next run does not list it twice.
    again = take_in_replies(context.unit_of_work, inbox, ADDRESSING, now=datetime.now(UTC))
    assert again.reviewed == 0


def test_patient_events_leave_no_contact_copy_and_an_erasure_redacts_what_was_sent(
    context: CommunicationContext, engine: Engine
) -> None:
    """Contacts are looked up in the patient service (contracts/contacts.py), never kept from
    events: the schema has no contact table, and a patient event writes nothing with a name."""
    tables = {
        row.table_name
        for row in rows(
            engine, "SELECT table_name FROM information_schema.tables WHERE table_schema = :s", s=SCHEMA
        )
    }
    assert {"patient_contacts", "therapist_contacts"}.isdisjoint(tables)
    patient_id = uuid.uuid4()
    handle(context, envelope("patient.updated", patient_payload(patient_id, last_name="Kanarie"), at=START))
    dumped = rows(
        engine, f"SELECT count(*) AS n FROM {SCHEMA}.emails WHERE recipient_id = :id", id=patient_id
    )
    assert dumped[0].n == 0
    erase_patient(patient_id)
    outcome = handle(
        context,
        envelope("patient.deleted", {"id": str(patient_id), "erased_at": START.isoformat()}, at=START),
    )
    assert outcome.outcome == "done"


def test_staff_complete_a_call_through_the_api(
    context: CommunicationContext, engine: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = number()
    [call_id] = handle(
        context, envelope("bundle.sent", bundle_sent_payload(number=ref, sent_at=START, email=None), at=START)
    ).calls
    app = load_function("communication_api")

    def bus_down() -> EventPublisher:
        raise ConnectionError("no bus in this test")

    # The deployed unit of work (publishes what it committed at once), with the bus down.
    deployed = unit_of_work_factory(
        engine=lambda: engine, publisher=bus_down, contacts=InMemoryContactDirectory
    )
    monkeypatch.setattr(app, "service", CommunicationService(deployed, clock))
    status, listed = call(
        app.lambda_handler, api_event("GET", "/api/v2/phone-calls", query={"bundle_reference": f"B{ref}"})
    )
    assert status == 200 and [item["id"] for item in listed["items"]] == [str(call_id)]
    event = api_event(
        "POST", f"/api/v2/phone-calls/{call_id}/complete", {"outcome": "voicemail"}, user="lena@team.example"
    )
    status, done = call(app.lambda_handler, event)
    assert status == 200 and done["status"] == "completed"
    [task] = rows(
        engine,
        f"SELECT status, outcome, completed_by FROM {SCHEMA}.phone_call_tasks WHERE id = :id",
        id=call_id,
    )
    assert tuple(task) == ("completed", "voicemail", "lena@team.example")
    [outbox] = rows(
        engine,
        f"SELECT published_at FROM {SCHEMA}.outbox WHERE event_type = 'phone_call.completed' "
        "AND aggregate_key = :k",
        k=str(call_id),
    )
    assert outbox.published_at is None  # the bus was down: the relay publishes it later
    status, history = call(
        app.lambda_handler, api_event("GET", "/api/v2/communications", query={"bundle_reference": f"B{ref}"})
    )
    assert status == 200 and [item["type"] for item in history["items"]] == ["phone_call"]


def test_withdrawal_placement_and_conflict_read_what_they_need_from_postgresql(
    context: CommunicationContext, engine: Engine
) -> None:
    first, second = number(), number()
    winner = bundle_sent_payload(number=first, sent_at=START)
    loser = bundle_sent_payload(number=second, sent_at=START, email=None)
    loser["members"][0]["search_id"] = winner["members"][0]["search_id"]  # one patient, two bundles
    patient_id = uuid.UUID(winner["members"][0]["patient_id"])
    handle(
        context,
        envelope("patient.created", patient_payload(patient_id, email=f"p{first}@example.org"), at=START),
    )
    for payload in (winner, loser):
        handle(context, envelope("bundle.sent", payload, at=START))
    # Placed through the first bundle (the therapist read model has never heard of the therapist:
    # the contact from bundle.sent is used); withdrawn from the second, a phone bundle.
    withdrawal = {
        "bundle_id": loser["id"],
        "bundle_reference": f"B{second}",
        "bundle_status": "sent",
        "therapist_id": loser["therapist_id"],
        "search_id": winner["members"][0]["search_id"],
        "member_reference": f"B{second}-1",
    }
    change = {
        "id": winner["members"][0]["search_id"],
        "patient_id": str(patient_id),
        "previous_status": "active",
        "status": "placed",
        "placed_therapist_id": winner["therapist_id"],
        "changed_at": START.isoformat(),
        "withdrawals": [withdrawal],
    }
    outcome = handle(context, envelope("search.status_changed", change, at=START))
    assert len(outcome.emails) == 1 and len(outcome.calls) == 1
    [place_found] = rows(
        engine, f"SELECT kind, text FROM {SCHEMA}.emails WHERE id = :id", id=outcome.emails[0]
    )
    assert place_found.kind == "patient_place_found" and "praxis@example.org" in place_found.text
    [withdrawn] = rows(
        engine,
        f"SELECT withdrawn_references FROM {SCHEMA}.sent_bundles WHERE reference = :r",
        r=f"B{second}",
    )
    assert withdrawn.withdrawn_references == [f"B{second}-1"]
    # The second therapist accepts anyway: a conflict naming the bundle that placed the patient.
    bundle = {k: v for k, v in loser.items() if k != "therapist"}
    bundle["members"] = [{k: v for k, v in m.items() if k != "patient"} for m in loser["members"]]
    bundle.update(status="answered", answered_at=START.isoformat())
    conflict = {
        "search_id": winner["members"][0]["search_id"],
        "patient_id": str(patient_id),
        "therapist_id": loser["therapist_id"],
        "placed_with_therapist_id": winner["therapist_id"],
        "alert_id": str(uuid.uuid4()),
    }
    response = {"bundle": bundle, "conflicts": [conflict], "next_contact_allowed_on": "2026-12-21"}
    [alert_id] = handle(context, envelope("bundle.response_received", response, at=START)).emails
    [alert] = rows(engine, f"SELECT subject, text FROM {SCHEMA}.emails WHERE id = :id", id=alert_id)
    assert f"B{second}-1" in alert.subject and f"B{first}" in alert.text
    statuses = rows(
        engine,
        f"SELECT status FROM {SCHEMA}.phone_call_tasks WHERE bundle_reference = :r",
        r=f"B{second}",
    )
    assert sorted(row.status for row in statuses) == ["cancelled", "cancelled"]
