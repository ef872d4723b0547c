"""The emails API and the communication histories with in-memory adapters: list, read, ad-hoc
emails (Markdown to safe HTML, the shared layout, queued and audited), a person's history, and
every 4xx naming the problem. Markdown sanitising is also checked property-based."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from communication_fakes import LEGAL, FakeTransport
from communication_state_fakes import (
    FakeInbox,
    StateWorld,
    bundle_sent_payload,
    deliver,
    envelope,
    erase_patient,
    patient_payload,
    staff_email_context,
    state_world,
    therapist_payload,
)
from support import FakeLambdaContext, api_event, call, least_roles, load_function
from therapy_platform.communication.domain.email_content import AdHocMessage, Person
from therapy_platform.communication.domain.emails import DeliveryPolicy
from therapy_platform.communication.domain.replies import reply_message
from therapy_platform.communication.rendering.markdown_html import (
    ALLOWED_TAGS,
    MAX_MARKDOWN_CHARS,
    markdown_to_html,
    markdown_to_text,
    safe_link,
    sanitise_html,
)
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases.emails import SenderContext, send_email
from therapy_platform.communication.use_cases.replies import take_in_replies
from therapy_platform.platform.idempotency import InMemoryIdempotencyStore

NOW = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)  # Monday 07:05 in Berlin
STAFF = "lena@team.example"
RENDERER = EmailRenderer(LEGAL)


@dataclass
class Api:
    module: Any
    world: StateWorld

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        raw_body: str | None = None,
        roles: tuple[str, ...] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        return call(
            self.module.lambda_handler, self.request(method, path, body, query, raw_body, roles, headers)
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        raw_body: str | None = None,
        roles: tuple[str, ...] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return api_event(
            method,
            path,
            body,
            query=query,
            raw_body=raw_body,
            user=STAFF,
            roles=least_roles(method, path) if roles is None else roles,
            headers=headers,
        )

    def event(self, event_type: str, payload: dict[str, Any], at: datetime = NOW) -> Any:
        return deliver(self.world.context, envelope(event_type, payload, at=at))

    def patient(self, **changes: Any) -> uuid.UUID:
        patient_id = uuid.uuid4()
        self.event("patient.created", patient_payload(patient_id, **changes))
        return patient_id

    def erase(self, patient_id: uuid.UUID) -> None:
        erase_patient(patient_id)  # the patient service erases, then tells everyone
        at = NOW + timedelta(seconds=1)
        self.event("patient.deleted", {"id": str(patient_id), "erased_at": at.isoformat()}, at=at)

    def therapist(self, **changes: Any) -> uuid.UUID:
        therapist_id = uuid.uuid4()
        self.event("therapist.created", therapist_payload(therapist_id, **changes))
        return therapist_id

    def send(
        self, recipient_type: str, recipient_id: uuid.UUID, /, key: str | None = None, **changes: Any
    ) -> tuple[int, Any]:
        body = {
            "recipient_type": recipient_type,
            "recipient_id": str(recipient_id),
            "subject": "Rückfrage zu Ihrer Suche",
            "body": "Wir haben eine **Frage**: Sind Sie *vormittags* erreichbar?",
            **changes,
        }
        return self("POST", "/api/v2/emails", body, headers={"Idempotency-Key": key} if key else None)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    module = load_function("emails_api")
    world = state_world(now=NOW)
    monkeypatch.setattr(module, "service", staff_email_context(world))
    monkeypatch.setattr(module, "idempotency_keys", InMemoryIdempotencyStore())
    yield Api(module, world)


def send_queued(world: StateWorld) -> None:
    """What the sender function does with the queued messages (fake transport)."""
    sender = SenderContext(
        unit_of_work=world.context.unit_of_work,
        transport=FakeTransport(),
        queue=world.queue,
        renderer=world.context.renderer,
        addressing=world.context.addressing,
        policy=DeliveryPolicy(),
        clock=world.clock,
    )
    ids, world.queue.messages = list(world.queue.messages), []
    for email_id in ids:
        send_email(sender, email_id)


# --------------------------------------------------------------------------- ad-hoc emails


def test_an_ad_hoc_email_to_a_patient_is_rendered_stored_audited_and_queued(api: Api) -> None:
    patient_id = api.patient()
    api.world.queue.messages.clear()
    body = "Guten Morgen,\n\n**wichtig**: <script>alert(1)</script> [Info](https://example.org/faq)"
    status, email = api.send("patient", patient_id, body=body)
    assert status == 201
    assert email["kind"] == "ad_hoc" and email["status"] == "queued"
    assert (email["recipient"], email["recipient_type"], email["recipient_id"]) == (
        "patientin@example.org",
        "patient",
        str(patient_id),
    )
    assert email["recipient_name"] == "Jana Schröder"
    assert email["subject"] == "Rückfrage zu Ihrer Suche"
    html, text = email["html"], email["text"]
    assert html.startswith("<!DOCTYPE html>") and "Therapieplatz-Vermittlung Test e. V." in html
    assert "Sehr geehrte Frau Schröder," in html and "Sehr geehrte Frau Schröder," in text
    assert "<strong>wichtig</strong>" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html and '<a href="https://example.org/faq"' in html
    assert "TelefonSeelsorge" in html and "TelefonSeelsorge" in text  # patient emails: crisis notice
    assert "**wichtig**" in text and "\n-- \n" in text and "Lindenstraße 1" in text
    assert api.world.queue.messages == [uuid.UUID(email["id"])]
    stored = api.world.database.emails[uuid.UUID(email["id"])]
    assert stored.reply_to == "antwort@antwort.vermittlung.test" and stored.bundle_reference is None
    [audit] = [a for a in api.world.database.state.audit if a["action"] == "email.ad_hoc_queued"]
    assert (audit["actor"], audit["entity_id"]) == (STAFF, stored.id)
    assert api.world.database.event_types()[-1] == "email.queued"


def test_an_ad_hoc_email_to_a_therapist_has_no_crisis_notice_and_may_skip_the_salutation(api: Api) -> None:
    therapist_id = api.therapist()
    status, email = api.send("therapist", therapist_id, salutation=False, body="Kurze Frage zur Praxis.")
    assert status == 201 and email["recipient"] == "weiss@example.org"
    assert "TelefonSeelsorge" not in email["html"]
    assert "Sehr geehrter Herr" not in email["text"] and email["text"].startswith("Kurze Frage zur Praxis.")
    status, email = api.send("therapist", therapist_id)
    assert "Sehr geehrter Herr Weiß," in email["text"]  # "Dipl.-Psych." is not spoken


def test_a_therapist_known_only_from_a_bundle_is_written_to_at_that_address(api: Api) -> None:
    payload = bundle_sent_payload(number=5, sent_at=NOW, email="mueller@praxis.example.org")
    api.event("bundle.sent", payload)
    status, email = api.send("therapist", uuid.UUID(payload["therapist_id"]))
    assert status == 201 and email["recipient"] == "mueller@praxis.example.org"
    assert "Sehr geehrte Frau Dr. Müller," in email["text"]


def test_a_repeated_idempotency_key_answers_the_first_email_again(api: Api) -> None:
    patient_id = api.patient()
    send = api.request(
        "POST",
        "/api/v2/emails",
        {"recipient_type": "patient", "recipient_id": str(patient_id), "subject": "Frage", "body": "Hallo"},
        headers={"Idempotency-Key": "ticket-42"},
    )
    first = api.module.lambda_handler(send, FakeLambdaContext())
    again = api.module.lambda_handler(send, FakeLambdaContext())
    assert (first["statusCode"], again["statusCode"]) == (201, 201)
    assert json.loads(again["body"]) == json.loads(first["body"])
    assert again["multiValueHeaders"]["Location"] == first["multiValueHeaders"]["Location"]
    assert again["multiValueHeaders"]["Idempotent-Replayed"] == ["true"]
    ad_hoc = [e for e in api.world.database.emails.values() if e.kind.value == "ad_hoc"]
    assert len(ad_hoc) == 1


def test_an_idempotency_key_reused_for_another_request_is_409(api: Api) -> None:
    patient_id = api.patient()
    assert api.send("patient", patient_id, key="ticket-42")[0] == 201
    status, conflict = api.send("patient", patient_id, key="ticket-42", subject="Anders")
    assert status == 409 and conflict["code"] == "idempotency_key_reused"
    status, conflict = api.send("patient", api.patient(), key="ticket-42")
    assert status == 409 and conflict["code"] == "idempotency_key_reused"
    assert api.send("patient", patient_id, key="ticket-43", subject="Anders")[0] == 201
    assert len([e for e in api.world.database.emails.values() if e.kind.value == "ad_hoc"]) == 2


def test_the_email_keeps_the_key_when_the_resolver_has_forgotten_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the old body field guaranteed stays: one email per key and staff member, even past
    the 24 hours the resolver keeps a key or when two retries race past its check."""
    patient_id = api.patient()
    status, first = api.send("patient", patient_id, key="ticket-42")
    assert status == 201
    monkeypatch.setattr(api.module, "idempotency_keys", InMemoryIdempotencyStore())
    status, again = api.send("patient", patient_id, key="ticket-42")
    assert (status, again["id"]) == (200, first["id"])
    monkeypatch.setattr(api.module, "idempotency_keys", InMemoryIdempotencyStore())
    status, conflict = api.send("patient", api.patient(), key="ticket-42")
    assert status == 409 and "Idempotency-Key" in conflict["detail"]


def test_the_idempotency_key_moved_from_the_body_to_the_header(api: Api) -> None:
    patient_id = api.patient()
    status, error = api.send("patient", patient_id, idempotency_key="ticket-42")
    assert status == 422 and [field["field"] for field in error["errors"]] == ["idempotency_key"]
    status, error = api.send("patient", patient_id, key="mit Leerzeichen")
    assert status == 422 and "idempotency-key" in [field["field"].lower() for field in error["errors"]]


def test_recipients_that_cannot_get_an_email_are_refused_naming_why(api: Api) -> None:
    status, body = api.send("patient", uuid.uuid4())
    assert status == 404 and body["code"] == "recipient_unknown"
    status, body = api.send("therapist", uuid.uuid4())
    assert status == 404 and "not known" in body["detail"]
    without = api.patient(email=None)
    status, body = api.send("patient", without)
    assert status == 409 and body["reason"] == "no_email_address"
    erased = api.patient()
    api.erase(erased)
    status, body = api.send("patient", erased)
    assert status == 409 and body["reason"] == "erased" and "erased" in body["detail"]
    no_address = api.therapist(email=None)
    status, body = api.send("therapist", no_address)
    assert status == 409 and body["reason"] == "no_email_address"
    assert not [e for e in api.world.database.emails.values() if e.kind.value == "ad_hoc"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"recipient_type": "staff"}, "recipient_type"),
        ({"recipient_id": "not-a-uuid"}, "recipient_id"),
        ({"subject": "   "}, "subject"),
        ({"subject": "Zeile\r\nBcc: x@example.org"}, "subject"),
        ({"subject": "x" * 201}, "subject"),
        ({"body": ""}, "body"),
        ({"body": " \n\t "}, "body"),
        ({"body": "x" * (MAX_MARKDOWN_CHARS + 1)}, "body"),
        ({"salutation": "vielleicht"}, "salutation"),
        ({"cc": "x@example.org"}, "cc"),
    ],
)
def test_a_bad_ad_hoc_email_is_refused_naming_the_field(
    api: Api, changes: dict[str, Any], field: str
) -> None:
    status, body = api.send("patient", api.patient(), **changes)
    assert status == 422 and field in body["detail"], body
    assert field in {f["field"] for f in body["errors"]}


def test_malformed_and_incomplete_bodies_are_4xx(api: Api) -> None:
    status, body = api("POST", "/api/v2/emails", raw_body="{not json")
    assert (status, body["code"]) == (400, "malformed_json")
    status, body = api("POST", "/api/v2/emails", {"recipient_type": "patient"})
    assert status == 422 and {"recipient_id", "subject", "body"} <= {f["field"] for f in body["errors"]}
    status, body = api("POST", "/api/v2/emails", {"x": 1}, query={"dry_run": "1"})
    assert status == 422


# --------------------------------------------------------------------------- listing and reading


def _emails(api: Api) -> dict[str, Any]:
    """A bundle inquiry, an unknown-location alert to staff and an ad-hoc email to a patient."""
    payload = bundle_sent_payload(number=1042, sent_at=NOW)
    api.event("bundle.sent", payload)
    api.world.clock.advance(3600)
    patient_id = api.patient(flagged=True)  # a staff alert: location unknown
    api.world.clock.advance(3600)
    status, ad_hoc = api.send("patient", patient_id)
    assert status == 201
    return {"bundle": payload, "patient_id": patient_id, "ad_hoc": ad_hoc}


def test_the_list_filters_and_pages_newest_first(api: Api) -> None:
    seeded = _emails(api)
    status, page = api("GET", "/api/v2/emails")
    assert status == 200 and page["total"] == len(api.world.database.emails) >= 3
    created = [item["created_at"] for item in page["items"]]
    assert created == sorted(created, reverse=True)
    assert all("html" not in item and "text" not in item for item in page["items"])
    status, page = api("GET", "/api/v2/emails", query={"kind": "ad_hoc"})
    assert [item["id"] for item in page["items"]] == [seeded["ad_hoc"]["id"]]
    status, page = api(
        "GET",
        "/api/v2/emails",
        query={"recipient_type": "patient", "recipient_id": str(seeded["patient_id"])},
    )
    assert {item["kind"] for item in page["items"]} >= {"ad_hoc"} and page["total"] == len(page["items"])
    status, page = api("GET", "/api/v2/emails", query={"bundle_reference": "B1042", "status": "queued"})
    assert [item["kind"] for item in page["items"]] == ["bundle_inquiry"]
    status, page = api("GET", "/api/v2/emails", query={"status": "sent"})
    assert page["total"] == 0
    status, page = api("GET", "/api/v2/emails", query={"created_to": "2026-11-23T08:00"})  # Berlin time
    assert [item["kind"] for item in page["items"]] == ["bundle_inquiry"]
    status, page = api(
        "GET", "/api/v2/emails", query={"created_from": "2026-11-23", "created_to": "2026-11-23"}
    )
    assert page["total"] == len(api.world.database.emails)
    status, page = api("GET", "/api/v2/emails", query={"created_from": "2026-11-24"})
    assert page["total"] == 0
    status, first = api("GET", "/api/v2/emails", query={"limit": "1"})
    status, second = api("GET", "/api/v2/emails", query={"limit": "1", "page": "2"})
    assert first["items"][0]["id"] != second["items"][0]["id"] and second["page"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "maybe"}, "status"),
        ({"kind": "newsletter"}, "kind"),
        ({"recipient_type": "doctor"}, "recipient_type"),
        ({"recipient_id": "123"}, "recipient_id"),
        ({"bundle_reference": "X1"}, "bundle_reference"),
        ({"created_from": "gestern"}, "created_from"),
        ({"created_to": "2026-02-30"}, "created_to"),
        ({"created_from": "2026-11-24", "created_to": "2026-11-23"}, "created_to"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"page": "0"}, "page"),
        ({"recipient": "a@b.de"}, "recipient"),
    ],
)
def test_bad_list_parameters_are_refused_naming_them(api: Api, query: dict[str, str], field: str) -> None:
    status, body = api("GET", "/api/v2/emails", query=query)
    assert status == 422 and field in body["detail"], body


def test_one_email_shows_its_bodies_status_and_attempts_and_the_read_is_audited(api: Api) -> None:
    status, email = api.send("patient", api.patient())
    send_queued(api.world)
    status, read = api("GET", f"/api/v2/emails/{email['id']}")
    assert status == 200
    assert read["status"] == "sent" and read["attempts"] == 1 and read["sent_at"] is not None
    assert read["html"] == email["html"] and read["text"] == email["text"]
    assert [(a["attempt"], a["outcome"]) for a in read["delivery_attempts"]] == [(1, "sent")]
    assert read["message_id"].endswith("@antwort.vermittlung.test>")
    assert "claim_token" not in read and "idempotency_key" not in read
    reads = [a for a in api.world.database.state.audit if a["action"] == "email.read"]
    assert [(a["actor"], str(a["entity_id"])) for a in reads] == [(STAFF, email["id"])]


def test_reading_an_unknown_or_malformed_email_id_is_4xx(api: Api) -> None:
    status, body = api("GET", f"/api/v2/emails/{uuid.uuid4()}")
    assert status == 404 and "does not exist" in body["detail"]
    status, body = api("GET", "/api/v2/emails/not-a-uuid")
    assert status == 422 and "email_id" in body["detail"]
    status, body = api("GET", f"/api/v2/emails/{uuid.uuid4()}", query={"verbose": "1"})
    assert status == 422 and "verbose" in body["detail"]


# --------------------------------------------------------------------------- histories


def _reply(api: Api, email_id: uuid.UUID, *, sender: str, text: str, at: datetime, to: str) -> None:
    email = api.world.database.emails[email_id]
    inbox = FakeInbox()
    message = reply_message(
        to=to,
        sender=sender,
        subject=f"AW: {email.subject}",
        text=text,
        in_reply_to=email.message_id,
        message_id=f"<{uuid.uuid4()}@mail.example.org>",
    )
    inbox.deliver(str(uuid.uuid4()), message.as_bytes(), at)
    take_in_replies(api.world.context.unit_of_work, inbox, api.world.context.addressing, now=at)


def test_a_patients_history_has_their_emails_and_replies_newest_first(api: Api) -> None:
    patient_id = api.patient()
    other = api.patient()
    api.send("patient", other)
    api.world.clock.advance(60)
    _, first = api.send("patient", patient_id, subject="Erste Nachricht")
    api.world.clock.advance(60)
    _, second = api.send("patient", patient_id, subject="Zweite Nachricht")
    _reply(
        api,
        uuid.UUID(first["id"]),
        sender="patientin@example.org",
        text="Ja, vormittags geht.",
        at=NOW + timedelta(hours=1),
        to="antwort@antwort.vermittlung.test",
    )
    status, history = api("GET", f"/api/v2/patients/{patient_id}/communications")
    assert status == 200 and history["total"] == 3 and history["erased"] is False
    assert [item["type"] for item in history["items"]] == ["reply", "email", "email"]
    assert [item.get("subject") for item in history["items"][1:]] == ["Zweite Nachricht", "Erste Nachricht"]
    assert history["items"][0]["email_id"] == first["id"] and "vormittags" in history["items"][0]["text"]
    assert all("html" not in item for item in history["items"])
    status, paged = api(
        "GET", f"/api/v2/patients/{patient_id}/communications", query={"limit": "2", "page": "2"}
    )
    assert [item["id"] for item in paged["items"]] == [first["id"]] and paged["total"] == 3
    assert paged["next"] is None  # the last page; the same shape and links as every list
    assert paged["prev"] == f"/api/v2/patients/{patient_id}/communications?limit=2&page=1"
    [audit] = [a for a in api.world.database.state.audit if a["action"] == "patient.communication_read"][:1]
    assert (audit["actor"], audit["entity_id"]) == (STAFF, patient_id)
    assert second["id"] in {item["id"] for item in history["items"]}


def test_an_erased_patients_history_shows_redacted_emails(api: Api) -> None:
    patient_id = api.patient()
    api.send("patient", patient_id)
    send_queued(api.world)
    api.erase(patient_id)
    status, history = api("GET", f"/api/v2/patients/{patient_id}/communications")
    assert status == 200 and history["erased"] is True
    [item] = history["items"]
    assert item["subject"] == "[gelöscht]" and item["recipient"] == "geloescht@invalid"


def test_a_therapists_history_has_emails_calls_and_replies_about_their_bundles(api: Api) -> None:
    therapist_id = api.therapist()
    email_bundle = bundle_sent_payload(number=11, sent_at=NOW, therapist_id=therapist_id)
    [inquiry_id] = api.event("bundle.sent", email_bundle).emails
    api.world.clock.advance(60)
    phone_bundle = bundle_sent_payload(number=12, sent_at=NOW, therapist_id=therapist_id, email=None)
    [call_id] = api.event("bundle.sent", phone_bundle).calls
    api.event("bundle.sent", bundle_sent_payload(number=13, sent_at=NOW))  # someone else's
    _reply(
        api,
        inquiry_id,
        sender="praxis@example.org",
        text="B11-1: ja",
        at=NOW + timedelta(days=1),
        to="antwort+B11@antwort.vermittlung.test",
    )
    status, history = api("GET", f"/api/v2/therapists/{therapist_id}/communications")
    assert status == 200 and history["total"] == 3
    assert [item["type"] for item in history["items"]] == ["reply", "phone_call", "email"]
    assert history["items"][1]["id"] == str(call_id) and history["items"][2]["id"] == str(inquiry_id)
    assert history["items"][2]["kind"] == "bundle_inquiry"


def test_histories_of_unknown_people_and_bad_parameters_are_4xx(api: Api) -> None:
    for kind in ("patients", "therapists"):
        status, body = api("GET", f"/api/v2/{kind}/{uuid.uuid4()}/communications")
        assert status == 404 and "not known" in body["detail"]
        status, body = api("GET", f"/api/v2/{kind}/nope/communications")
        assert status == 422
    patient_id = api.patient()
    status, body = api("GET", f"/api/v2/patients/{patient_id}/communications", query={"type": "email"})
    assert status == 422 and "type" in body["detail"]
    status, body = api("GET", f"/api/v2/patients/{patient_id}/communications", query={"limit": "500"})
    assert status == 422 and "limit" in body["detail"]
    status, body = api("GET", f"/api/v2/patients/{patient_id}/communications", query={"page": "999"})
    assert status == 422 and "page" in body["detail"]
    status, empty = api("GET", f"/api/v2/patients/{patient_id}/communications")
    assert (status, empty["items"], empty["total"]) == (200, [], 0)


# --------------------------------------------------------------------------- Markdown


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_safe(html: str) -> None:
    parser = _Markup()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, (tag, html)
        assert set(attrs) <= {"href", "style", "start"}, (attrs, html)
        if "href" in attrs:
            assert tag == "a" and safe_link(attrs["href"] or ""), (attrs, html)
        if "start" in attrs:
            assert (attrs["start"] or "").isdigit()
    assert not re.search(r"<\s*(script|img|iframe|svg|style|object)", html, re.IGNORECASE)


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](java\tscript:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox)",
        "<javascript:alert(1)>",
        '[x](https://ok.example" onclick="alert(1))',
        "[x](//evil.example/a)",
        "![x](https://tracker.example/pixel.png)",
        '<a href="https://ok.example" onmouseover="alert(1)">x</a>',
        "<div style='background:url(javascript:alert(1))'>x</div>",
        "```\n<script>alert(1)</script>\n```",
        "    <iframe src=https://evil.example>",
        "[ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_injected_markup_never_survives(source: str) -> None:
    assert_safe(markdown_to_html(source))


def test_markdown_formats_what_staff_write() -> None:
    html = markdown_to_html(
        "# Termin\n\n**fett** _kursiv_ `code`\n\n- eins\n- zwei\n\n3. drei\n\n> Zitat\n\n"
        "[Web](https://example.org/?a=1&b=2) [Mail](mailto:team@example.org) [Tel](tel:+4930123)"
    )
    assert "<h2" in html and "<strong>fett</strong>" in html and "<em>kursiv</em>" in html
    assert "<code" in html and "<ul" in html and '<ol start="3"' in html and "<blockquote" in html
    assert 'href="https://example.org/?a=1&amp;b=2"' in html
    assert 'href="mailto:team@example.org"' in html and 'href="tel:+4930123"' in html
    assert_safe(html)


def test_the_text_part_is_the_markdown_wrapped_and_clean() -> None:
    text = markdown_to_text("Zeile\r\nmit\x00Steuer\x07zeichen   \n\n- " + "wort " * 30)
    assert text.startswith("Zeile\nmitSteuerzeichen\n\n- wort")
    assert all(len(line) <= 76 for line in text.splitlines())
    assert text.splitlines()[-1].startswith("  wort")


_DANGEROUS = st.sampled_from(
    [
        "<script>",
        "</script>",
        "<img src=x onerror=alert(1)>",
        "javascript:",
        "JaVaScRiPt:",
        "data:",
        "[",
        "](",
        ")",
        "<",
        ">",
        '"',
        "'",
        " onclick=",
        "&#106;",
        "\n\n",
        "`",
        "*",
        "![",
        "<a href=",
        "https://x.example/",
        "mailto:",
        "\\",
        "%0a",
        "\x00",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_DANGEROUS, st.text(max_size=12)), max_size=40).map("".join))
def test_no_markdown_input_produces_unsafe_html(source: str) -> None:
    assert_safe(markdown_to_html(source))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_DANGEROUS, st.text(max_size=8)), max_size=40).map("".join))
def test_the_sanitiser_alone_makes_any_html_safe(html: str) -> None:
    # The second line of defence holds even for raw HTML that never came from Markdown.
    cleaned = sanitise_html(html)
    assert_safe(cleaned)
    assert sanitise_html(cleaned) == cleaned  # idempotent: nothing left to remove


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=200).filter(lambda text: text.strip() != ""))
def test_any_body_renders_into_the_layout_safely(body: str) -> None:
    content = AdHocMessage(recipient=Person(last_name="Muster"), subject="Betreff", body_markdown=body)
    html = RENDERER.render(content).html
    inner = html[html.index('<div style="background') : html.index("<footer")]
    parser = _Markup()
    parser.feed(inner)
    assert {tag for tag, _ in parser.tags} <= ALLOWED_TAGS | {"div"}
