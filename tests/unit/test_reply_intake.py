"""Reply intake: which messages are replies (domain/replies.py), storing them once
(use_cases/replies.py), the two inboxes (Maildir, S3 via moto), and what keeps a forged reply out
of a bundle: the sender check, SES's verdicts, the size cap, the staff review list."""

from __future__ import annotations

import dataclasses
import json
import mailbox
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from communication_fakes import ADDRESSING
from communication_state_fakes import (
    FakeInbox,
    StateWorld,
    bundle_sent_payload,
    deliver,
    envelope,
    state_world,
    therapist_payload,
)
from support import FakeLambdaContext, load_function
from therapy_platform.communication.adapters.reply_inbox import MaildirInbox, S3Inbox
from therapy_platform.communication.bootstrap import ReplyIntakeService
from therapy_platform.communication.domain.replies import (
    MailVerdicts,
    ReplyPolicy,
    ReviewReason,
    parse_reply,
    read_reply,
    reply_message,
    sender_belongs,
    ses_verdicts,
    verdict_reasons,
)
from therapy_platform.communication.use_cases.replies import IntakeReport, take_in_replies

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
    first_body = raw(reply_message(to=f"antwort+B1@{DOMAIN}", sender="a@example.org", subject="1", text="1"))
    first = box.add(first_body)
    second = box.add(raw(reply_message(to="b@example.org", sender="c@example.org", subject="2", text="2")))
    inbox = MaildirInbox(tmp_path / "maildir")
    entries = inbox.pending(10)
    assert [e.key for e in entries] == sorted([first, second])
    assert {e.key: e.size for e in entries}[first] == len(first_body)  # sizes before reading
    assert inbox.read(first, 1_000_000) == first_body
    assert inbox.read(first, 10) == first_body[:11]  # never more than the cap and one byte
    for entry in entries:
        inbox.done(entry.key, stored=entry.key == first)
    assert inbox.pending(10) == [] and inbox.read(first, 100) is None
    assert sorted(box.keys()) == sorted([first, second])  # nothing deleted
    assert "S" in box.get_message(first).get_flags()


def test_the_maildir_inbox_of_a_mailbox_not_yet_created_is_empty(tmp_path: Path) -> None:
    assert MaildirInbox(tmp_path / "missing").pending(10) == []


@mock_aws
def test_the_s3_inbox_reads_the_prefix_and_moves_to_processed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    client = boto3.client("s3", region_name="eu-central-1")
    client.create_bucket(Bucket="replies", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    body = raw(reply_message(to=f"antwort+B9@{DOMAIN}", sender="a@example.org", subject="s", text="t"))
    client.put_object(Bucket="replies", Key="inbound/abc123", Body=body)
    inbox = S3Inbox(client, "replies")
    [entry] = inbox.pending(10)
    assert (entry.key, entry.size) == ("inbound/abc123", len(body))
    assert inbox.read(entry.key, 1_000_000) == body
    assert inbox.read(entry.key, 20) == body[:21]  # a range read: the cap and one byte
    inbox.done(entry.key, stored=True)
    keys = [item["Key"] for item in client.list_objects_v2(Bucket="replies")["Contents"]]
    assert keys == ["processed/abc123"] and inbox.pending(10) == []
    assert inbox.read(entry.key, 100) is None


def test_the_intake_function_reports_counts_and_references_never_addresses_or_text(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    w = state_world(now=NOW)
    deliver(w.context, envelope("bundle.sent", bundle_sent_payload(number=3, sent_at=NOW), at=NOW))
    inbox = FakeInbox()
    inbox.deliver(
        "1",
        raw(reply_message(to=f"antwort+B3@{DOMAIN}", sender="praxis@example.org", subject="s", text="Ja")),
        NOW,
    )
    forged = reply_message(
        to=f"antwort+B3@{DOMAIN}", sender="mallory@evil.example", subject="Frau Meier", text="Depression"
    )
    inbox.deliver("2", raw(forged), NOW)
    inbox.deliver("3", b"\xff" * 100 + b"\r\n\r\n", NOW)  # not an email of ours at all
    app = load_function("reply_intake")
    monkeypatch.setattr(
        app, "service", ReplyIntakeService(w.context.unit_of_work, inbox, ADDRESSING, w.clock)
    )
    with caplog.at_level("INFO"):
        report = app.lambda_handler({"source": "aws.events"}, FakeLambdaContext())
    assert report["stored"] == 1 and report["stored_references"] == ["B3"]
    assert report["reviewed"] == 1 and report["review_reasons"] == {"sender_not_addressee": 1}
    logged = json.dumps(report) + caplog.text
    for private in ("mallory", "evil.example", "Meier", "Depression", "praxis@example.org", "Ja"):
        assert private not in logged, private


# --------------------------------------------------------------------------- forged replies


def _inquiry(w: StateWorld, number: int = 1042, **payload: Any) -> uuid.UUID:
    sent = bundle_sent_payload(number=number, sent_at=NOW, **payload)
    [email_id] = deliver(w.context, envelope("bundle.sent", sent, at=NOW)).emails
    return email_id


def _intake(w: StateWorld, inbox: FakeInbox, **policy: Any) -> IntakeReport:
    return take_in_replies(w.context.unit_of_work, inbox, ADDRESSING, now=NOW, policy=ReplyPolicy(**policy))


def test_a_forged_reply_is_not_attached_to_the_bundle_but_put_on_the_review_list() -> None:
    """References are sequential and Message-IDs travel in every quote: a stranger can name any
    bundle. Their reply lands on the review list, never in the bundle's history."""
    w = state_world(now=NOW)
    email_id = _inquiry(w)
    inbox = FakeInbox()
    forged = reply_message(
        to=f"antwort+B1042@{DOMAIN}",
        sender="mallory@evil.example",
        subject="AW: Anfrage",
        text="B1042-1: ja, B1042-2: ja, B1042-3: ja",
        in_reply_to=w.database.emails[email_id].message_id,  # even the real Message-ID
        message_id="<forged@evil.example>",
    )
    inbox.deliver("forged", raw(forged), NOW)
    report = _intake(w, inbox)
    assert (report.stored, report.reviewed) == (0, 1)
    assert w.database.state.replies == {}
    [review] = w.database.state.reviews.values()
    assert review.reasons == [ReviewReason.SENDER_NOT_ADDRESSEE]
    assert review.claimed_bundle_reference == "B1042" and review.from_address == "mallory@evil.example"
    assert review.text is not None and "B1042-1: ja" in review.text
    with w.context.unit_of_work() as uow:
        assert uow.replies.for_bundle("B1042", 10) == []
    assert inbox.done_keys == [("forged", True)]  # taken in: not offered again


@pytest.mark.parametrize(
    ("to", "in_reply_to", "reason"),
    [
        (f"antwort+B9999@{DOMAIN}", None, ReviewReason.UNKNOWN_BUNDLE),  # guessed the next number
        (f"antwort@{DOMAIN}", f"<B9999.{uuid.UUID(int=7)}@{DOMAIN}>", ReviewReason.UNKNOWN_BUNDLE),
        (f"antwort@{DOMAIN}", None, ReviewReason.UNMATCHED),
        (f"antwort@{DOMAIN}", f"<{uuid.UUID(int=8)}@{DOMAIN}>", ReviewReason.UNMATCHED),
    ],
)
def test_a_reply_naming_nothing_we_sent_is_reviewed(
    to: str, in_reply_to: str | None, reason: ReviewReason
) -> None:
    w = state_world(now=NOW)
    _inquiry(w)
    inbox = FakeInbox()
    message = reply_message(
        to=to, sender="praxis@example.org", subject="s", text="t", in_reply_to=in_reply_to
    )
    inbox.deliver("1", raw(message), NOW)
    assert _intake(w, inbox).review_reasons == {reason.value: 1}
    assert w.database.state.replies == {}


def test_the_practice_may_answer_from_its_own_domain_but_not_from_a_shared_provider() -> None:
    w = state_world(now=NOW)
    therapist_id = uuid.uuid4()
    _inquiry(w, 1, therapist_id=therapist_id, email="info@praxis-weiss.de")
    # The therapist service's record (looked up when the reply is checked): with the website.
    therapist_payload(therapist_id, email="info@praxis-weiss.de", website="www.praxis-weiss.de")
    _inquiry(w, 2, email="praxis.kuehn@gmail.example", therapist_id=uuid.uuid4())
    inbox = FakeInbox()
    for key, to, sender in (
        ("a", "antwort+B1", "INFO@Praxis-Weiss.de"),  # the address itself, any case
        ("b", "antwort+B1", "dr.weiss@praxis-weiss.de"),  # a colleague at the practice's domain
        ("c", "antwort+B1", "weiss@praxis-weiss.de.evil.example"),
        ("d", "antwort+B2", "praxis.kuehn@gmail.example"),
        ("e", "antwort+B2", "someone.else@gmail.example"),  # same provider, not the practice
    ):
        inbox.deliver(key, raw(reply_message(to=f"{to}@{DOMAIN}", sender=sender, subject=key, text=key)), NOW)
    report = _intake(w, inbox)
    assert sorted(r.subject or "" for r in w.database.state.replies.values()) == ["a", "b", "d"]
    assert sorted(r.subject or "" for r in w.database.state.reviews.values()) == ["c", "e"]
    assert report.review_reasons == {"sender_not_addressee": 2}


def test_a_reply_to_a_persons_email_must_come_from_that_person() -> None:
    w = state_world(now=NOW)
    email_id = _inquiry(w)
    quoted = w.database.emails[email_id].message_id
    inbox = FakeInbox()
    for key, sender in (("ok", "praxis@example.org"), ("no", "other@example.org")):
        message = reply_message(
            to=f"antwort@{DOMAIN}", sender=sender, subject=key, text=key, in_reply_to=quoted
        )
        inbox.deliver(key, raw(message), NOW)
    _intake(w, inbox)
    [accepted] = w.database.state.replies.values()
    assert accepted.subject == "ok" and accepted.email_id == email_id and accepted.bundle_reference == "B1042"
    [review] = w.database.state.reviews.values()
    assert review.subject == "no" and review.reasons == [ReviewReason.SENDER_NOT_ADDRESSEE]


def test_an_oversized_message_is_reviewed_without_being_read_or_parsed() -> None:
    w = state_world(now=NOW)
    _inquiry(w)
    inbox = FakeInbox()
    big = reply_message(
        to=f"antwort+B1042@{DOMAIN}", sender="praxis@example.org", subject="s", text="x" * 200_000
    )
    small = reply_message(to=f"antwort+B1042@{DOMAIN}", sender="praxis@example.org", subject="t", text="ja")
    inbox.deliver("1-big", raw(big), NOW)
    inbox.deliver("2-small", raw(small), NOW)
    report = _intake(w, inbox, max_message_bytes=64 * 1024)
    assert (report.stored, report.review_reasons) == (1, {"too_large": 1})
    [review] = w.database.state.reviews.values()
    assert (review.inbox_key, review.size_bytes, review.from_address, review.text) == (
        "1-big",
        len(raw(big)),
        None,
        None,
    )
    # One message at a time: only the small one was read, with the cap.
    assert inbox.reads == [("2-small", 64 * 1024)]
    assert inbox.done_keys == [("1-big", True), ("2-small", True)]


def test_messages_are_read_and_finished_one_at_a_time() -> None:
    w = state_world(now=NOW)
    _inquiry(w)
    inbox = FakeInbox()
    for key in ("1", "2", "3"):
        message = reply_message(
            to=f"antwort+B1042@{DOMAIN}", sender="praxis@example.org", subject=key, text=key
        )
        inbox.deliver(key, raw(message), NOW)
    assert _intake(w, inbox).stored == 3
    assert inbox.steps == ["read 1", "done 1", "read 2", "done 2", "read 3", "done 3"]


def test_an_unreadable_message_is_reviewed_and_the_rest_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    w = state_world(now=NOW)
    _inquiry(w)
    inbox = FakeInbox()
    inbox.deliver("1", b"broken", NOW)
    inbox.deliver(
        "2",
        raw(reply_message(to=f"antwort+B1042@{DOMAIN}", sender="praxis@example.org", subject="s", text="t")),
        NOW,
    )
    real = read_reply

    def flaky(data: bytes, **kw: Any) -> Any:
        if data == b"broken":
            raise ValueError("no parser can read this: Frau Meier")
        return real(data, **kw)

    monkeypatch.setattr("therapy_platform.communication.use_cases.replies.read_reply", flaky)
    report = _intake(w, inbox)
    assert (report.stored, report.unreadable, report.review_reasons) == (1, ["1"], {"unreadable": 1})
    assert "Meier" not in json.dumps(dataclasses.asdict(report))


# --------------------------------------------------------------------------- SES verdicts

AUTH_PASS = (
    "amazonses.com; spf=pass (spfCheck: domain of example.org designates 192.0.2.1 as permitted sender)"
    " client-ip=192.0.2.1; envelope-from=praxis@example.org; helo=mail.example.org;"
    " smtp.mailfrom=praxis@example.org; dkim=pass header.i=@example.org; dmarc=pass header.from=example.org;"
)


def ses_message(
    message: EmailMessage,
    *,
    spam: str = "PASS",
    virus: str = "PASS",
    auth: str | None = AUTH_PASS,
    receipt: bool = True,
    sender_headers: tuple[str, ...] = (),
) -> bytes:
    """The message as SES receiving stores it in S3: its own headers on top, down to
    X-SES-RECEIPT, then the message's headers (`sender_headers` first: anything a sender wrote)."""
    top = [
        "Return-Path: <praxis@example.org>",
        "Received: from mail.example.org (mail.example.org [192.0.2.1])"
        " by inbound-smtp.eu-central-1.amazonaws.com",
        f"X-SES-Spam-Verdict: {spam}",
        f"X-SES-Virus-Verdict: {virus}",
        "Received-SPF: pass (spfCheck: domain of example.org designates 192.0.2.1 as permitted sender)",
    ]
    if auth is not None:
        top.append(f"Authentication-Results: {auth}")
    if receipt:
        top += ["X-SES-RECEIPT: AEFBQUFBQUFBQUFH", "X-SES-DKIM-SIGNATURE: a=rsa-sha256; b=abc;"]
    return ("\r\n".join([*top, *sender_headers]) + "\r\n").encode() + raw(message)


def _verdicts(data: bytes) -> MailVerdicts | None:
    from email import message_from_bytes
    from email.policy import default

    return ses_verdicts(message_from_bytes(data, _class=EmailMessage, policy=default))


PLAIN = reply_message(to=f"antwort+B1042@{DOMAIN}", sender="praxis@example.org", subject="AW", text="ja")


@pytest.mark.parametrize(
    ("data", "required", "reasons"),
    [
        (ses_message(PLAIN), True, []),
        (ses_message(PLAIN, spam="FAIL"), True, [ReviewReason.SPAM]),
        (ses_message(PLAIN, spam="GRAY"), True, [ReviewReason.SPAM]),
        (ses_message(PLAIN, spam="PROCESSING_FAILED"), True, [ReviewReason.SPAM]),
        (ses_message(PLAIN, virus="FAIL"), True, [ReviewReason.VIRUS]),
        (ses_message(PLAIN, virus="GRAY"), True, [ReviewReason.VIRUS]),
        (
            ses_message(
                PLAIN,
                auth="amazonses.com; spf=pass smtp.mailfrom=praxis@example.org;"
                " dkim=pass header.i=@example.org; dmarc=fail header.from=example.org;",
            ),
            True,
            [ReviewReason.NOT_AUTHENTICATED],
        ),
        # No DMARC policy (GRAY): an aligned SPF or DKIM pass vouches for the From address ...
        (
            ses_message(
                PLAIN,
                auth="amazonses.com; spf=pass smtp.mailfrom=bounce@mail.example.org; dkim=none; dmarc=gray;",
            ),
            True,
            [],
        ),
        (
            ses_message(
                PLAIN,
                auth="amazonses.com; spf=fail smtp.mailfrom=x@example.org;"
                " dkim=pass header.d=example.org; dmarc=gray;",
            ),
            True,
            [],
        ),
        # ... one for another domain does not.
        (
            ses_message(
                PLAIN,
                auth="amazonses.com; spf=pass smtp.mailfrom=bounce@evil.example;"
                " dkim=pass header.i=@evil.example; dmarc=gray;",
            ),
            True,
            [ReviewReason.NOT_AUTHENTICATED],
        ),
        (
            ses_message(PLAIN, auth="amazonses.com; spf=gray; dkim=gray; dmarc=gray;"),
            True,
            [ReviewReason.NOT_AUTHENTICATED],
        ),
        (ses_message(PLAIN, auth=None), True, [ReviewReason.NOT_AUTHENTICATED]),
        # Verdicts a sender wrote into its own message count for nothing: SES's own (above
        # X-SES-RECEIPT) say FAIL.
        (
            ses_message(
                PLAIN,
                spam="FAIL",
                sender_headers=("X-SES-Spam-Verdict: PASS", f"Authentication-Results: {AUTH_PASS}"),
                auth="amazonses.com; spf=fail smtp.mailfrom=praxis@example.org; dmarc=fail;",
            ),
            True,
            [ReviewReason.SPAM, ReviewReason.NOT_AUTHENTICATED],
        ),
        # Without X-SES-RECEIPT nothing is SES's: missing where required, ignored locally.
        (ses_message(PLAIN, receipt=False), True, [ReviewReason.VERDICTS_MISSING]),
        (raw(PLAIN), True, [ReviewReason.VERDICTS_MISSING]),
        (raw(PLAIN), False, []),
        # Another server's Authentication-Results above SES's receipt is not SES's verdict.
        (
            ses_message(
                PLAIN, auth="mx.evil.example; spf=pass smtp.mailfrom=praxis@example.org; dmarc=pass;"
            ),
            True,
            [ReviewReason.NOT_AUTHENTICATED],
        ),
    ],
)
def test_ses_verdicts_decide_whether_a_reply_may_be_attached(
    data: bytes, required: bool, reasons: list[ReviewReason]
) -> None:
    assert verdict_reasons(_verdicts(data), "praxis@example.org", required=required) == reasons


def test_through_ses_a_good_reply_is_attached_and_a_spoofed_one_reviewed_without_its_virus_text() -> None:
    w = state_world(now=NOW)
    _inquiry(w)
    inbox = FakeInbox()
    inbox.deliver("inbound/1", ses_message(PLAIN), NOW)
    spoofed = reply_message(
        to=f"antwort+B1042@{DOMAIN}", sender="praxis@example.org", subject="AW", text="Anhang"
    )
    inbox.deliver(
        "inbound/2",
        ses_message(spoofed, virus="FAIL", auth="amazonses.com; spf=fail; dkim=fail; dmarc=fail;"),
        NOW,
    )
    inbox.deliver("inbound/3", raw(PLAIN), NOW)  # no SES headers at all: not how SES delivers
    report = _intake(w, inbox, verdicts_required=True)
    assert report.stored == 1
    assert report.review_reasons == {"not_authenticated": 1, "verdicts_missing": 1, "virus": 1}
    review = w.database.state.reviews["inbound/2"]
    assert review.text is None and review.verdicts["virus"] == "FAIL" and review.verdicts["dmarc"] == "FAIL"


@settings(max_examples=200)
@given(
    local=st.from_regex(r"[a-z][a-z0-9.]{0,10}", fullmatch=True),
    domain=st.from_regex(r"[a-z]{2,8}\.(de|example|org)", fullmatch=True),
    other=st.from_regex(r"[a-z][a-z0-9.]{0,10}@[a-z]{2,8}\.(de|example|org)", fullmatch=True),
)
def test_without_a_practice_website_only_the_known_address_itself_belongs(
    local: str, domain: str, other: str
) -> None:
    known = f"{local}@{domain}"
    assert sender_belongs(known.upper(), [known])
    assert sender_belongs(other, [known]) is (other.casefold() == known.casefold())
    # With the practice's website on the same domain, the whole domain is the practice's.
    assert sender_belongs(f"x{local}@{domain}", [known], [f"https://www.{domain}/"])
    assert not sender_belongs(f"x{local}@{domain}", [known], [f"https://www.not-{domain}/"])
