"""Mail adapters: the MIME message, SMTP (against an in-process aiosmtpd server), SES (stubbed
client and moto), the SQS email queue (moto)."""

from __future__ import annotations

import json
import random
import re
import smtplib
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP as STOCK_SMTP_POLICY
from email.policy import default as default_policy
from typing import Any

import boto3
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from communication_fakes import ADDRESSING
from therapy_platform.communication.adapters.email_queue import EmailQueueError, SqsEmailQueue
from therapy_platform.communication.adapters.mail import (
    MIME_POLICY,
    SesTransport,
    SmtpTransport,
    mime_message,
)
from therapy_platform.communication.bootstrap import mail_transport
from therapy_platform.communication.domain.emails import Email, EmailKind, OutgoingEmail, RecipientType
from therapy_platform.communication.ports import DeliveryError
from therapy_platform.communication.settings import MailSettings

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _email(recipient: str = "praxis@example.org", **changes: object) -> Email:
    values: dict[str, object] = {
        "kind": EmailKind.BUNDLE_INQUIRY,
        "recipient": recipient,
        "recipient_name": "Dr. Jörg Müller",
        "recipient_type": RecipientType.THERAPIST,
        "subject": "Anfrage Therapieplatz: 3 Personen suchen einen Platz (Ref: B77)",
        "html": "<p>Sehr geehrter Herr Dr. Müller, Grüße</p>",
        "text": "Sehr geehrter Herr Dr. Müller,\n\nMit freundlichen Grüßen\n",
        "bundle_reference": "B77",
    }
    outgoing = OutgoingEmail.model_validate({**values, **changes})
    return Email.draft(outgoing, ADDRESSING, now=NOW).queued(NOW)


def _parsed(message: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(message.as_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_mime_message_has_both_parts_and_the_reply_headers() -> None:
    email = _email()
    parsed = _parsed(mime_message(email))
    # A long Message-ID is folded onto its own line, as RFC 5322 allows; readers unfold it.
    assert parsed["Message-ID"].strip() == f"<B77.{email.id}@antwort.vermittlung.test>"
    assert parsed["Reply-To"] == "antwort+B77@antwort.vermittlung.test"
    assert parsed["Subject"] == email.subject
    assert parsed["To"] == '"Dr. Jörg Müller" <praxis@example.org>'
    assert parsed["X-Email-Id"] == str(email.id) and parsed["X-Bundle-Reference"] == "B77"
    assert parsed["Auto-Submitted"] is None
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    assert "Mit freundlichen Grüßen" in text.get_content()
    assert "Grüße" in html.get_content()
    # On the wire the non-ASCII parts are encoded, so any server takes the message.
    assert mime_message(email).as_bytes().isascii()


def test_staff_alerts_are_marked_auto_generated() -> None:
    alert = _email(
        kind=EmailKind.STAFF_SEND_FAILED_ALERT, recipient_type=RecipientType.STAFF, bundle_reference=None
    )
    parsed = _parsed(mime_message(alert))
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Reply-To"] == "antwort@antwort.vermittlung.test"


def _wire_bytes(email: Email, policy: Any) -> bytes:
    """The message as sent, with the multipart boundary drawn from a fixed seed and the Date
    (the clock's second) left out, so two builds of one email can be compared byte for byte."""
    message = mime_message(email, policy=policy)
    random.seed(15)  # email.generator draws the boundary from `random`
    return re.sub(rb"Date: [^\r]*\r\n", b"", message.as_bytes(policy=policy.clone(linesep="\r\n")))


_HEADER_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=120
)


@settings(max_examples=60, deadline=None)
@given(
    subjects=st.lists(_HEADER_TEXT.filter(str.strip), min_size=1, max_size=3),
    name=st.one_of(st.none(), _HEADER_TEXT.filter(str.strip)),
    staff_alert=st.booleans(),
)
def test_reused_headers_send_the_very_bytes_of_the_stock_policy(
    subjects: list[str], name: str | None, staff_alert: bool
) -> None:
    """The sender's header factory keeps the headers that repeat between emails: every email,
    built after others with the same kept headers, is byte for byte what the stdlib builds."""
    kind = EmailKind.STAFF_SEND_FAILED_ALERT if staff_alert else EmailKind.BUNDLE_INQUIRY
    for subject in subjects + subjects:  # the second pass meets every header already kept
        email = _email(subject=subject, recipient_name=name, kind=kind)
        assert _wire_bytes(email, MIME_POLICY) == _wire_bytes(email, STOCK_SMTP_POLICY)


# --------------------------------------------------------------------------- SMTP


class _Handler:
    """Refuses `unknown@...` for good (550) and `busy@...` for now (451); keeps the rest."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("unknown@"):
            return "550 5.1.1 User unknown"
        if address.startswith("busy@"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        self.messages.append((envelope.mail_from or "", list(envelope.rcpt_tos), content))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Handler, int]]:
    handler = _Handler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def test_smtp_delivers_with_the_envelope_sender_and_reuses_the_connection(
    smtp_server: tuple[_Handler, int],
) -> None:
    handler, port = smtp_server
    transport = SmtpTransport("127.0.0.1", port, timeout_seconds=5, starttls=False)
    first, second = _email(), _email("zweite@example.org")
    assert transport.send(first) is None
    assert transport.send(second) is None
    transport.close()
    assert [(sender, recipients) for sender, recipients, _ in handler.messages] == [
        ("team@vermittlung.test", ["praxis@example.org"]),
        ("team@vermittlung.test", ["zweite@example.org"]),
    ]
    parsed = message_from_bytes(handler.messages[0][2], policy=default_policy)
    assert parsed["Message-ID"].strip() == first.message_id


def test_smtp_classifies_refusals(smtp_server: tuple[_Handler, int]) -> None:
    _, port = smtp_server
    transport = SmtpTransport("127.0.0.1", port, timeout_seconds=5, starttls=False)
    with pytest.raises(DeliveryError) as refused:
        transport.send(_email("unknown@example.org"))
    assert refused.value.permanent and "550" in str(refused.value)
    with pytest.raises(DeliveryError) as busy:
        transport.send(_email("busy@example.org"))
    assert not busy.value.permanent and "451" in str(busy.value)
    # The connection survives a refused recipient.
    transport.send(_email())
    transport.close()


def test_smtp_insists_on_starttls_by_default(smtp_server: tuple[_Handler, int]) -> None:
    """Outside local every relay must offer STARTTLS: a server without it gets no message (no
    silent fall-back to plain text)."""
    handler, port = smtp_server
    transport = SmtpTransport("127.0.0.1", port, timeout_seconds=5)
    with pytest.raises(DeliveryError, match="STARTTLS"):
        transport.send(_email())
    transport.close()
    assert handler.messages == []


def test_smtp_unreachable_is_transient() -> None:
    transport = SmtpTransport("127.0.0.1", _free_port(), timeout_seconds=2, starttls=False)
    with pytest.raises(DeliveryError) as error:
        transport.send(_email())
    assert not error.value.permanent and "unreachable" in str(error.value)


def test_smtp_reconnects_when_the_server_dropped_an_idle_connection(
    smtp_server: tuple[_Handler, int],
) -> None:
    handler, port = smtp_server
    transport = SmtpTransport("127.0.0.1", port, timeout_seconds=5, starttls=False)
    transport.send(_email())
    assert transport._client is not None
    transport._client.sock.close()  # type: ignore[union-attr]  # the server hung up meanwhile
    transport.send(_email())
    transport.close()
    assert len(handler.messages) == 2


def test_smtp_reuses_one_connection_without_a_round_trip_per_email(
    smtp_server: tuple[_Handler, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Emails of a batch share one connection and nothing but the message is said per email."""
    handler, port = smtp_server
    commands: list[str] = []
    original = smtplib.SMTP.putcmd

    def recording(client: smtplib.SMTP, cmd: str, args: str = "") -> None:
        commands.append(cmd.lower())
        original(client, cmd, args)

    monkeypatch.setattr(smtplib.SMTP, "putcmd", recording)
    transport = SmtpTransport("127.0.0.1", port, timeout_seconds=5, starttls=False)
    for index in range(3):
        transport.send(_email(f"praxis{index}@example.org"))
    transport.close()
    assert len(handler.messages) == 3
    assert commands.count("ehlo") == 1  # one connection
    assert "noop" not in commands and "rset" not in commands
    assert commands.count("mail") == commands.count("data") == 3


def test_smtp_reconnects_when_the_server_closed_the_connection_meanwhile() -> None:
    """The server went away between two emails of a batch and came back: the second email is
    sent on a new connection, not failed on the dead one."""
    handler, port = _Handler(), _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    transport = SmtpTransport("127.0.0.1", port, timeout_seconds=5, starttls=False)
    transport.send(_email())
    controller.stop()  # closes the open connection too
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        transport.send(_email("zweite@example.org"))
        transport.close()
    finally:
        controller.stop()
    assert [recipients for _, recipients, _ in handler.messages] == [
        ["praxis@example.org"],
        ["zweite@example.org"],
    ]


# --------------------------------------------------------------------------- SES


class _StubSes:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.requests: list[dict[str, Any]] = []

    def send_email(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.error:
            raise self.error
        return {"MessageId": "0100018c-ses"}


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "nope"}}, "SendEmail")


def test_ses_sends_the_raw_message_with_reply_to_and_configuration_set() -> None:
    client = _StubSes()
    email = _email()
    assert SesTransport(client, configuration_set="platform").send(email) == "0100018c-ses"
    request = client.requests[0]
    assert request["Destination"] == {"ToAddresses": ["praxis@example.org"]}
    assert request["ReplyToAddresses"] == ["antwort+B77@antwort.vermittlung.test"]
    assert request["ConfigurationSetName"] == "platform"
    assert email.message_id.encode() in request["Content"]["Raw"]["Data"]


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (_client_error("MessageRejected"), True),
        (_client_error("MailFromDomainNotVerifiedException"), True),
        (_client_error("TooManyRequestsException"), False),
        (_client_error("SendingPausedException"), False),
        (EndpointConnectionError(endpoint_url="https://email.eu-central-1.amazonaws.com"), False),
    ],
)
def test_ses_errors_are_classified(error: Exception, permanent: bool) -> None:
    with pytest.raises(DeliveryError) as raised:
        SesTransport(_StubSes(error)).send(_email())
    assert raised.value.permanent is permanent


def test_ses_through_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    with mock_aws():
        client = boto3.client("sesv2", region_name="eu-central-1")
        client.create_email_identity(EmailIdentity="vermittlung.test")
        message_id = SesTransport(client).send(_email())
        assert message_id


def test_the_transport_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    base = {"MAIL_FROM": "team@vermittlung.test", "REPLY_DOMAIN": "antwort.vermittlung.test"}
    assert isinstance(mail_transport(MailSettings.model_validate(base)), SmtpTransport)
    ses = MailSettings.model_validate({**base, "MAIL_TRANSPORT": "ses"})
    assert isinstance(mail_transport(ses), SesTransport)


# --------------------------------------------------------------------------- SQS queue


def test_sqs_queue_sends_one_message_per_email_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-central-1")
        url = sqs.create_queue(QueueName="emails")["QueueUrl"]
        ids = [uuid.uuid4() for _ in range(23)]
        SqsEmailQueue(sqs, url).enqueue(ids)
        bodies: list[str] = []
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                break
            bodies.extend(message["Body"] for message in batch)
            for message in batch:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        assert sorted(json.loads(body)["email_id"] for body in bodies) == sorted(map(str, ids))


def test_sqs_queue_names_what_it_could_not_send() -> None:
    class Refusing:
        def send_message_batch(self, **request: Any) -> dict[str, Any]:
            return {"Successful": [], "Failed": [{"Id": "1", "Code": "x", "SenderFault": False}]}

    ids = [uuid.uuid4(), uuid.uuid4()]
    with pytest.raises(EmailQueueError) as error:
        SqsEmailQueue(Refusing(), "https://sqs/emails").enqueue(ids)
    assert str(ids[1]) in str(error.value) and str(ids[0]) not in str(error.value)
