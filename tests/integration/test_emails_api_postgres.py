"""The emails API and the communication histories against real PostgreSQL (the communication
service's own role): ad-hoc emails stored, audited, queued and found again by their
idempotency key; list filters and pages in SQL; one email with its delivery attempts; a
patient's and a therapist's history with replies and calls, newest first."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from communication_fakes import ADDRESSING, LEGAL, FakeQueue, FakeTransport
from communication_state_fakes import (
    FakeInbox,
    InMemoryContactDirectory,
    bundle_sent_payload,
    envelope,
    erase_patient,
    patient_payload,
    therapist_payload,
)
from communication_state_fakes import deliver as deliver_event
from support import api_event, call, least_roles, load_function
from therapy_platform.communication.adapters.unit_of_work import SqlCommunicationUnitOfWork
from therapy_platform.communication.domain.emails import DeliveryPolicy
from therapy_platform.communication.domain.phone_calls import CallPlanningPolicy, WorkingCalendar
from therapy_platform.communication.domain.replies import reply_message
from therapy_platform.communication.domain.tracking import FollowUpPolicy
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases.emails import SenderContext, send_email
from therapy_platform.communication.use_cases.events import CommunicationContext
from therapy_platform.communication.use_cases.replies import take_in_replies
from therapy_platform.communication.use_cases.staff_emails import StaffEmailContext
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.idempotency import SqlIdempotencyStore

pytestmark = pytest.mark.integration

SCHEMA = "communication_service"
STAFF = "jonas@team.example"


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

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Api:
    module: Any
    engine: Engine
    clock: Clock
    queue: FakeQueue
    context: CommunicationContext

    def __call__(self, method: str, path: str, body: Any = None, **query: str) -> tuple[int, Any]:
        # The caller as the API's authorizer verified them, with the role the route needs.
        event = api_event(
            method, path, body, query=query or None, user=STAFF, roles=least_roles(method, path)
        )
        return call(self.module.lambda_handler, event)

    def event(self, event_type: str, payload: dict[str, Any]) -> Any:
        return deliver_event(self.context, envelope(event_type, payload, at=self.clock()))

    def send(
        self, recipient_type: str, recipient_id: uuid.UUID, /, key: str | None = None, **changes: Any
    ) -> tuple[int, Any]:
        body = {
            "recipient_type": recipient_type,
            "recipient_id": str(recipient_id),
            "subject": "Rückfrage zu Ihrer Suche",
            "body": "Sind Sie **vormittags** erreichbar? <script>alert(1)</script>",
            **changes,
        }
        headers = {"Idempotency-Key": key} if key else None
        event = api_event("POST", "/api/v2/emails", body, user=STAFF, roles=("admin",), headers=headers)
        return call(self.module.lambda_handler, event)

    def deliver(self) -> None:
        sender = SenderContext(
            unit_of_work=self.context.unit_of_work,
            transport=FakeTransport(),
            queue=self.queue,
            renderer=self.context.renderer,
            addressing=self.context.addressing,
            policy=DeliveryPolicy(),
            clock=self.clock,
        )
        ids, self.queue.messages = list(self.queue.messages), []
        for email_id in ids:
            send_email(sender, email_id)

    def reply(self, email_id: uuid.UUID, to: str, text_: str) -> None:
        """The email's recipient answers it (reply intake attaches only what its addressee sent)."""
        with self.engine.connect() as connection:
            message_id, recipient = connection.execute(
                text(f"SELECT message_id, recipient FROM {SCHEMA}.emails WHERE id = :id"), {"id": email_id}
            ).one()
        inbox = FakeInbox()
        message = reply_message(
            to=to,
            sender=recipient,
            subject="AW: Ihre Nachricht",
            text=text_,
            in_reply_to=message_id,
            message_id=f"<{uuid.uuid4()}@mail.example.org>",
        )
        inbox.deliver("1", message.as_bytes(), self.clock())
        take_in_replies(self.context.unit_of_work, inbox, self.context.addressing, now=self.clock())


@pytest.fixture
def api(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Api:
    # Every test in its own far-away hour, so date filters see only its emails.
    start = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(hours=random.randrange(1, 200_000))
    clock, queue = Clock(start), FakeQueue()
    calls = CallPlanningPolicy()
    context = CommunicationContext(
        unit_of_work=lambda: SqlCommunicationUnitOfWork(engine, contacts=InMemoryContactDirectory),
        queue=queue,
        renderer=EmailRenderer(LEGAL),
        addressing=ADDRESSING,
        calls=calls,
        follow_up=FollowUpPolicy(),
        calendar=WorkingCalendar.for_policy(calls),
        clock=clock,
    )
    module = load_function("emails_api")
    monkeypatch.setattr(
        module,
        "service",
        StaffEmailContext(
            unit_of_work=context.unit_of_work,
            queue=queue,
            renderer=context.renderer,
            addressing=context.addressing,
            clock=clock,
        ),
    )
    monkeypatch.setattr(module, "idempotency_keys", SqlIdempotencyStore(lambda: engine, SCHEMA))
    return Api(module, engine, clock, queue, context)


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql), params))


def test_an_ad_hoc_email_is_stored_audited_queued_once_and_read_back_with_its_attempts(api: Api) -> None:
    patient_id = uuid.uuid4()
    api.event("patient.created", patient_payload(patient_id))
    api.queue.messages.clear()
    status, email = api.send("patient", patient_id, key=f"it-{patient_id}")
    assert status == 201
    again_status, again = api.send("patient", patient_id, key=f"it-{patient_id}")
    assert (again_status, again["id"]) == (201, email["id"])  # the first answer again
    email_id = uuid.UUID(email["id"])
    [row] = rows(
        api.engine, f"SELECT kind, status, recipient, html FROM {SCHEMA}.emails WHERE id = :id", id=email_id
    )
    assert (row.kind, row.status, row.recipient) == ("ad_hoc", "queued", "patientin@example.org")
    assert (
        "<script" not in row.html
        and "&lt;script&gt;" in row.html
        and "<strong>vormittags</strong>" in row.html
    )
    [audit] = rows(
        api.engine, f"SELECT actor, action FROM {SCHEMA}.audit_log WHERE entity_id = :id", id=email_id
    )
    assert (audit.actor, audit.action) == (STAFF, "email.ad_hoc_queued")
    events = rows(
        api.engine, f"SELECT event_type FROM {SCHEMA}.outbox WHERE aggregate_key = :id", id=str(email_id)
    )
    assert [event.event_type for event in events] == ["email.queued"]
    # The retry was answered from the key store (nothing ran again); an offer that got lost is
    # re-offered by the sweeper, and a retry past the key's 24 hours finds the email by its key.
    assert api.queue.messages.count(email_id) == 1
    api.deliver()
    status, read = api("GET", f"/api/v2/emails/{email_id}")
    assert status == 200 and read["status"] == "sent"
    assert [(a["attempt"], a["outcome"]) for a in read["delivery_attempts"]] == [(1, "sent")]
    assert read["delivery_attempts"][0]["finished_at"] is not None
    reads = rows(
        api.engine,
        f"SELECT actor FROM {SCHEMA}.audit_log WHERE entity_id = :id AND action = 'email.read'",
        id=email_id,
    )
    assert [r.actor for r in reads] == [STAFF]


def test_recipients_are_resolved_through_the_read_models(api: Api) -> None:
    status, body = api.send("patient", uuid.uuid4())
    assert status == 404
    erased = uuid.uuid4()
    api.event("patient.created", patient_payload(erased))
    api.clock.advance(1)
    erase_patient(erased)  # the patient service erases (its contact card says so), then tells everyone
    api.event("patient.deleted", {"id": str(erased), "erased_at": api.clock().isoformat()})
    status, body = api.send("patient", erased)
    assert status == 409 and body["reason"] == "erased"
    therapist_id = uuid.uuid4()
    api.event("therapist.created", therapist_payload(therapist_id, email=None))
    status, body = api.send("therapist", therapist_id)
    assert status == 409 and body["reason"] == "no_email_address"
    status, history = api("GET", f"/api/v2/patients/{erased}/communications")
    assert status == 200 and history["erased"] is True and history["items"] == []


def test_the_list_filters_pages_and_counts_in_sql(api: Api) -> None:
    start = api.clock()
    patient_id, therapist_id = uuid.uuid4(), uuid.uuid4()
    api.event("patient.created", patient_payload(patient_id))
    api.event("therapist.created", therapist_payload(therapist_id))
    number = random.randrange(10**6, 10**9)
    sent = api.event(
        "bundle.sent", bundle_sent_payload(number=number, sent_at=start, therapist_id=therapist_id)
    )
    ids = [*sent.emails]
    for minute in range(1, 4):
        api.clock.advance(60)
        status, email = api.send("patient", patient_id, subject=f"Nachricht {minute}")
        assert status == 201
        ids.append(uuid.UUID(email["id"]))
    window = {
        "created_from": start.isoformat(),
        "created_to": (api.clock() + timedelta(seconds=1)).isoformat(),
    }
    status, page = api("GET", "/api/v2/emails", **window)
    assert status == 200 and page["total"] == 4
    assert [item["id"] for item in page["items"]] == [str(i) for i in reversed(ids)]
    status, page = api("GET", "/api/v2/emails", **window, kind="ad_hoc", limit="2", page="2")
    assert page["total"] == 3 and [item["subject"] for item in page["items"]] == ["Nachricht 1"]
    status, page = api("GET", "/api/v2/emails", recipient_type="patient", recipient_id=str(patient_id))
    assert page["total"] == 3 and all("html" not in item for item in page["items"])
    status, page = api("GET", "/api/v2/emails", bundle_reference=f"B{number}", status="queued")
    assert [item["kind"] for item in page["items"]] == ["bundle_inquiry"]
    status, page = api("GET", "/api/v2/emails", **window, status="sent")
    assert page["total"] == 0


def test_histories_come_newest_first_with_replies_and_calls(api: Api) -> None:
    therapist_id, patient_id = uuid.uuid4(), uuid.uuid4()
    api.event("therapist.created", therapist_payload(therapist_id))
    api.event("patient.created", patient_payload(patient_id))
    by_email = random.randrange(10**6, 10**9)
    [inquiry] = api.event(
        "bundle.sent", bundle_sent_payload(number=by_email, sent_at=api.clock(), therapist_id=therapist_id)
    ).emails
    api.clock.advance(60)
    [call_id] = api.event(
        "bundle.sent",
        bundle_sent_payload(number=by_email + 1, sent_at=api.clock(), therapist_id=therapist_id, email=None),
    ).calls
    api.clock.advance(60)
    api.reply(inquiry, f"antwort+B{by_email}@{ADDRESSING.reply_domain}", "B1-1: ja")
    status, history = api("GET", f"/api/v2/therapists/{therapist_id}/communications")
    assert status == 200 and history["total"] == 3
    assert [item["type"] for item in history["items"]] == ["reply", "phone_call", "email"]
    assert (history["items"][1]["id"], history["items"][2]["id"]) == (str(call_id), str(inquiry))

    api.clock.advance(60)
    status, first = api.send("patient", patient_id, subject="Erste")
    api.clock.advance(60)
    status, second = api.send("patient", patient_id, subject="Zweite")
    api.clock.advance(60)
    api.reply(uuid.UUID(first["id"]), f"antwort@{ADDRESSING.reply_domain}", "Ja, vormittags.")
    status, history = api("GET", f"/api/v2/patients/{patient_id}/communications", limit="2")
    assert status == 200 and history["total"] == 3
    assert [item["type"] for item in history["items"]] == ["reply", "email"]
    assert history["items"][0]["email_id"] == first["id"] and history["items"][1]["id"] == second["id"]
    status, rest = api("GET", f"/api/v2/patients/{patient_id}/communications", limit="2", page="2")
    assert [item["id"] for item in rest["items"]] == [first["id"]]
    audits = rows(
        api.engine,
        f"SELECT action FROM {SCHEMA}.audit_log WHERE entity_id = :id ORDER BY id",
        id=patient_id,
    )
    assert [a.action for a in audits] == ["patient.communication_read"] * 2
    status, _ = api("GET", f"/api/v2/therapists/{uuid.uuid4()}/communications")
    assert status == 404
