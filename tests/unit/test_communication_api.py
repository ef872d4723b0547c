"""The communication API for staff with in-memory adapters: a bundle's history, the call list,
recording a call's outcome; bad input is a 4xx naming the problem."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from communication_state_fakes import (
    FakeInbox,
    StateWorld,
    bundle_sent_payload,
    deliver,
    envelope,
    state_world,
)
from fakes import FakeBus, InMemoryOutboxStore, StoredEvent
from support import STAFF_USER, api_event, call, least_roles, load_function
from therapy_platform.communication.bootstrap import CommunicationService
from therapy_platform.communication.domain.replies import reply_message
from therapy_platform.communication.use_cases.replies import take_in_replies
from therapy_platform.platform.outbox_relay import PublishNow

NOW = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)  # Monday 07:05 in Berlin


class EventsAsOutbox:
    """The fake communication database's events seen as the outbox rows the relay reads."""

    def __init__(self, world: StateWorld) -> None:
        self._world = world
        self._rows: dict[int, StoredEvent] = {}

    @property
    def outbox(self) -> list[StoredEvent]:
        for index, (key, event) in enumerate(self._world.database.events):
            self._rows.setdefault(index, StoredEvent(index + 1, key, event))
        return list(self._rows.values())


@dataclass
class Api:
    module: Any
    world: StateWorld
    bus: FakeBus

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        staff: str | None = None,
        roles: tuple[str, ...] | None = None,
    ) -> tuple[int, Any]:
        # The actor is the verified token's user (the authorizer's context).
        event = api_event(
            method,
            path,
            body,
            query=query,
            user=staff or STAFF_USER,
            roles=least_roles(method, path) if roles is None else roles,
        )
        return call(self.module.lambda_handler, event)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    module = load_function("communication_api")
    world, bus = state_world(now=NOW), FakeBus()
    # As deployed: the unit of work publishes what it committed at once (after-commit hook).
    store = InMemoryOutboxStore(EventsAsOutbox(world))  # type: ignore[arg-type]
    world.database.publish = PublishNow(store=lambda: store, publisher=lambda: bus)
    monkeypatch.setattr(module, "service", CommunicationService(world.context.unit_of_work, world.clock))
    yield Api(module, world, bus)


def phone_bundle(api: Api, number: int, windows: dict[str, list[str]] | None = None) -> dict[str, Any]:
    payload = bundle_sent_payload(number=number, sent_at=NOW, email=None, phone_windows=windows)
    deliver(api.world.context, envelope("bundle.sent", payload, at=NOW))
    return payload


def test_the_call_list_of_a_day_in_slot_order(api: Api) -> None:
    phone_bundle(api, 2, {"tue": ["09:00-10:00"]})
    phone_bundle(api, 1, {"tue": ["08:00-09:00"]})
    phone_bundle(api, 3)  # no window: Tuesday 12:00
    status, page = api("GET", "/api/v2/phone-calls", query={"status": "scheduled", "date": "2026-11-24"})
    assert status == 200 and page["total"] == 3
    assert [item["bundle_reference"] for item in page["items"]] == ["B1", "B2", "B3"]
    assert [item["slot_start"] for item in page["items"]] == [
        "2026-11-24T07:00:00Z",
        "2026-11-24T08:00:00Z",
        "2026-11-24T11:00:00Z",
    ]
    assert "idempotency_key" not in page["items"][0]
    status, other_day = api("GET", "/api/v2/phone-calls", query={"date": "2026-11-25"})
    assert (status, other_day["total"]) == (200, 0)


def test_completing_a_call_records_who_what_and_emits_the_event(api: Api) -> None:
    phone_bundle(api, 7)
    [task] = api.world.database.state.calls.values()
    api.world.clock.advance(3600)
    body = {"outcome": "reached", "notes": "Frau Dr. Müller ruft morgen zurück."}
    status, done = api("POST", f"/api/v2/phone-calls/{task.id}/complete", body, staff="lena@team.example")
    assert status == 200
    assert done["status"] == "completed" and done["outcome"] == "reached"
    assert done["completed_by"] == "lena@team.example" and done["outcome_notes"] == body["notes"]
    [message] = [m for m in api.bus.messages if m.envelope.event_type == "phone_call.completed"]
    assert message.key == str(task.id)
    assert message.envelope.payload["outcome"] == "reached" and "notes" not in message.envelope.payload
    [audit] = api.world.database.state.audit
    assert (audit["actor"], audit["action"], audit["entity_id"]) == (
        "lena@team.example",
        "phone_call.completed",
        task.id,
    )
    status, again = api("POST", f"/api/v2/phone-calls/{task.id}/complete", body)
    assert status == 409 and "completed" in again["detail"]


def test_bad_input_is_refused_naming_the_problem(api: Api) -> None:
    status, body = api("POST", f"/api/v2/phone-calls/{uuid.uuid4()}/complete", {"outcome": "reached"})
    assert status == 404
    phone_bundle(api, 8)
    [task] = api.world.database.state.calls.values()
    status, body = api("POST", f"/api/v2/phone-calls/{task.id}/complete", {"outcome": "maybe"})
    assert status == 422 and "outcome" in body["detail"]
    status, body = api("POST", f"/api/v2/phone-calls/{task.id}/complete", {"outcome": "reached", "x": 1})
    assert status == 422 and "x" in body["detail"]
    status, body = api("GET", "/api/v2/phone-calls", query={"date": "24.11.2026"})
    assert status == 422 and "date" in body["detail"]
    status, body = api("GET", "/api/v2/phone-calls", query={"day": "2026-11-24"})
    assert status == 422 and "day" in body["detail"]
    status, body = api("GET", "/api/v2/phone-calls/not-a-uuid")
    assert status == 422
    status, body = api("GET", "/api/v2/communications", query={"bundle_reference": "X1"})
    assert status == 422 and "bundle_reference" in body["detail"]
    status, body = api("GET", "/api/v2/communications")
    assert status == 422 and "bundle_reference" in body["detail"]


def test_a_bundles_history_has_emails_calls_and_replies_newest_first(api: Api) -> None:
    world = api.world
    payload = bundle_sent_payload(number=1042, sent_at=NOW)
    [inquiry_id] = deliver(world.context, envelope("bundle.sent", payload, at=NOW)).emails
    inbox = FakeInbox()
    reply = reply_message(
        to="antwort+B1042@antwort.vermittlung.test",
        sender="praxis@example.org",
        subject="AW: Anfrage (Ref: B1042)",
        text="B1042-1: ja",
        in_reply_to=world.database.emails[inquiry_id].message_id,
        message_id="<r@praxis.example.org>",
    )
    inbox.deliver("1", reply.as_bytes(), NOW + timedelta(days=1))
    take_in_replies(world.context.unit_of_work, inbox, world.context.addressing, now=NOW)
    status, history = api("GET", "/api/v2/communications", query={"bundle_reference": "B1042"})
    assert status == 200 and history["total"] == 2
    assert [item["type"] for item in history["items"]] == ["reply", "email"]
    assert history["items"][0]["email_id"] == str(inquiry_id) and "ja" in history["items"][0]["text"]
    assert history["items"][1]["kind"] == "bundle_inquiry" and "html" not in history["items"][1]
    assert history["bundle"]["channel"] == "email" and history["bundle"]["reference"] == "B1042"
    status, unknown = api("GET", "/api/v2/communications", query={"bundle_reference": "B99"})
    assert (status, unknown["items"], unknown["bundle"]) == (200, [], None)
    status, paged = api(
        "GET", "/api/v2/communications", query={"bundle_reference": "B1042", "limit": "1", "page": "2"}
    )
    assert [item["type"] for item in paged["items"]] == ["email"]


def test_a_forged_reply_stays_out_of_the_bundles_history_and_staff_find_it_on_the_review_list(
    api: Api,
) -> None:
    world = api.world
    payload = bundle_sent_payload(number=1042, sent_at=NOW)
    [inquiry_id] = deliver(world.context, envelope("bundle.sent", payload, at=NOW)).emails
    inbox = FakeInbox()
    forged = reply_message(
        to="antwort+B1042@antwort.vermittlung.test",
        sender="mallory@evil.example",
        subject="AW: Anfrage (Ref: B1042)",
        text="B1042-1: ja",
        in_reply_to=world.database.emails[inquiry_id].message_id,
        message_id="<forged@evil.example>",
    )
    inbox.deliver("cur/forged", forged.as_bytes(), NOW + timedelta(hours=2))
    take_in_replies(world.context.unit_of_work, inbox, world.context.addressing, now=NOW)
    status, history = api("GET", "/api/v2/communications", query={"bundle_reference": "B1042"})
    assert status == 200 and [item["type"] for item in history["items"]] == ["email"]
    status, reviews = api("GET", "/api/v2/reply-reviews")
    assert status == 200 and reviews["total"] == 1
    [item] = reviews["items"]
    assert item["reasons"] == ["sender_not_addressee"] and item["claimed_bundle_reference"] == "B1042"
    assert item["from_address"] == "mallory@evil.example" and "B1042-1: ja" in item["text"]
    status, empty = api("GET", "/api/v2/reply-reviews", query={"page": "2", "limit": "1"})
    assert status == 200 and empty["items"] == [] and empty["total"] == 1
    status, body = api("GET", "/api/v2/reply-reviews", query={"status": "open"})
    assert status == 422 and "status" in body["detail"]
