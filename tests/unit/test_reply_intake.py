"""Reply intake: which messages are replies (domain/replies.py), storing them once
(use_cases/replies.py), and the two inboxes (Maildir, S3 via moto)."""

from __future__ import annotations

import mailbox
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from communication_fakes import ADDRESSING
from communication_state_fakes import (
    FakeInbox,
    StateWorld,
    bundle_sent_payload,
    deliver,
    envelope,
    state_world,
)
from support import FakeLambdaContext, load_function
from therapy_platform.communication.adapters.reply_inbox import MaildirInbox, S3Inbox
from therapy_platform.communication.bootstrap import ReplyIntakeService
from therapy_platform.communication.domain.replies import parse_reply, reply_message
from therapy_platform.communication.use_cases.replies import take_in_replies

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
DOMAIN = ADDRESSING.reply_domain


def raw(message: EmailMessage) -> bytes:
    return message.as_bytes()


def test_the_tag_in_the_reply_address_names_the_bundle() -> None:
    message = reply_message(
        to=f"Vermittlung <antwort+B1042@{DOMAIN}>",
        sender="praxis@example.org",
        subject="AW: Anfrage Therapieplatz (Ref: B1042)",
        text="B1042-1: ja\nB1042-2: nein",
        message_id="<abc@praxis.example.org>",
    )
    reply = parse_reply(raw(message), reply_domain=DOMAIN, received_at=NOW)
    assert reply is not None
    assert reply.bundle_reference == "B1042" and reply.from_address == "praxis@example.org"
    assert reply.to_address == f"antwort+B1042@{DOMAIN}" and reply.message_id == "<abc@praxis.example.org>"
    assert reply.text is not None and "B1042-2: nein" in reply.text


def test_a_quoted_message_id_names_the_bundle_when_the_address_does_not() -> None:
    email_id = uuid.uuid4()
    message = reply_message(
        to=f"antwort@{DOMAIN}",
        sender="praxis@example.org",
        subject="Re: Ihre Anfrage",
        text="Leider nein.",
        in_reply_to=f"<B77.{email_id}@{DOMAIN}>",
    )
    reply = parse_reply(raw(message), reply_domain=DOMAIN, received_at=NOW)
    assert reply is not None and reply.bundle_reference == "B77"
    assert reply.quoted_message_ids() == [f"<B77.{email_id}@{DOMAIN}>"]
    assert reply.message_id.endswith("@reply-intake.invalid>")  # none given: made from the bytes


def test_messages_to_anyone_else_are_not_replies() -> None:
    ours = reply_message(to="praxis@example.org", sender="team@vermittlung.test", subject="Anfrage", text="…")
    lookalike = reply_message(to=f"antwortx+B1@{DOMAIN}", sender="x@example.org", subject="?", text="?")
    assert parse_reply(raw(ours), reply_domain=DOMAIN, received_at=NOW) is None
    assert parse_reply(raw(lookalike), reply_domain=DOMAIN, received_at=NOW) is None


def test_the_envelope_recipient_counts_and_unstorable_text_is_cleaned() -> None:
    message = reply_message(
        to="undisclosed-recipients:;", sender="p@example.org", subject="Hi", text="a\x00b"
    )
    trace = f"X-Original-To: antwort+B5@{DOMAIN}\n".encode()
    reply = parse_reply(trace + raw(message), reply_domain=DOMAIN, received_at=NOW)
    assert reply is not None and reply.bundle_reference == "B5" and reply.text == "ab\n"


def _deliver_inquiry(w: StateWorld) -> uuid.UUID:
    payload = bundle_sent_payload(number=1042, sent_at=NOW)
    [email_id] = deliver(w.context, envelope("bundle.sent", payload, at=NOW)).emails
    return email_id


def test_intake_stores_each_reply_once_linked_to_its_bundle_and_email() -> None:
    w = state_world(now=NOW)
    email_id = _deliver_inquiry(w)
    message_id = w.database.emails[email_id].message_id
    inbox = FakeInbox()
    reply = reply_message(
        to=f"antwort+B1042@{DOMAIN}",
        sender="praxis@example.org",
        subject="AW: Anfrage",
        text="B1042-1: ja",
        in_reply_to=message_id,
        message_id="<r1@praxis.example.org>",
    )
    inbox.deliver("1", raw(reply), NOW)
    inbox.deliver("2", raw(reply), NOW)  # the same message delivered twice
    inbox.deliver(
        "3", raw(reply_message(to="x@example.org", sender="y@example.org", subject="s", text="t")), NOW
    )
    report = take_in_replies(w.context.unit_of_work, inbox, ADDRESSING, now=NOW)
    assert (report.stored, report.duplicates, report.not_replies) == (1, 1, 1)
    [stored] = w.database.state.replies.values()
    assert stored.bundle_reference == "B1042" and stored.email_id == email_id
    assert inbox.new == {} and inbox.done_keys == [("1", True), ("2", True), ("3", False)]


def test_the_maildir_inbox_moves_what_it_took_to_cur_and_keeps_it(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "maildir", create=True)
    first = box.add(
        raw(reply_message(to=f"antwort+B1@{DOMAIN}", sender="a@example.org", subject="1", text="1"))
    )
    second = box.add(raw(reply_message(to="b@example.org", sender="c@example.org", subject="2", text="2")))
    inbox = MaildirInbox(tmp_path / "maildir")
    messages = inbox.new_messages(10)
    assert [m.key for m in messages] == sorted([first, second])
    for message in messages:
        inbox.done(message.key, stored=message.key == first)
    assert inbox.new_messages(10) == []
    assert sorted(box.keys()) == sorted([first, second])  # nothing deleted
    assert "S" in box.get_message(first).get_flags()


def test_the_maildir_inbox_of_a_mailbox_not_yet_created_is_empty(tmp_path: Path) -> None:
    assert MaildirInbox(tmp_path / "missing").new_messages(10) == []


@mock_aws
def test_the_s3_inbox_reads_the_prefix_and_moves_to_processed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    client = boto3.client("s3", region_name="eu-central-1")
    client.create_bucket(Bucket="replies", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    body = raw(reply_message(to=f"antwort+B9@{DOMAIN}", sender="a@example.org", subject="s", text="t"))
    client.put_object(Bucket="replies", Key="inbound/abc123", Body=body)
    inbox = S3Inbox(client, "replies")
    [message] = inbox.new_messages(10)
    assert message.key == "inbound/abc123" and message.raw == body
    inbox.done(message.key, stored=True)
    keys = [item["Key"] for item in client.list_objects_v2(Bucket="replies")["Contents"]]
    assert keys == ["processed/abc123"] and inbox.new_messages(10) == []


def test_the_intake_function_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    w = state_world(now=NOW)
    inbox = FakeInbox()
    inbox.deliver(
        "1", raw(reply_message(to=f"antwort+B3@{DOMAIN}", sender="a@example.org", subject="s", text="t")), NOW
    )
    app = load_function("reply_intake")
    monkeypatch.setattr(
        app, "service", ReplyIntakeService(w.context.unit_of_work, inbox, ADDRESSING, w.clock)
    )
    report = app.lambda_handler({"source": "aws.events"}, FakeLambdaContext())
    assert report["stored"] == 1 and report["stored_references"] == ["B3"]
