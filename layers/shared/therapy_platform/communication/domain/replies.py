"""Replies to our emails: which messages are replies, and what is kept of them.

A message is a reply when one of its recipients is a reply address of ours
(`antwort@<REPLY_DOMAIN>` or `antwort+B123@<REPLY_DOMAIN>`); the envelope recipient counts
too (`X-Original-To` / `Delivered-To`, which the local SMTP server and most MTAs add). Anything
else in the mailbox (locally the SMTP sink also holds every email we sent) is not a reply and is
left alone.

The bundle is found through the reply address's tag (`+B123`), else through a quoted Message-ID
of ours in In-Reply-To / References (`<B123.<email id>@...>`). A reply without either is still
stored (bundle unknown) for staff to assign. Replies are stored once per Message-ID; a message
without one gets a Message-ID made from a hash of its bytes, so a re-read message is not stored
twice either.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import getaddresses
from typing import Final

from pydantic import BaseModel, ConfigDict

from therapy_platform.communication.domain.emails import (
    bundle_reference_in_address,
    bundle_reference_in_message_ids,
)

MAX_BODY_CHARS: Final = 200_000
RECIPIENT_HEADERS: Final = ("X-Original-To", "Delivered-To", "To", "Cc")
_MESSAGE_ID: Final = re.compile(r"<[^<>\s]+>")


class InboundReply(BaseModel):
    """A stored reply (table `inbound_replies`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    message_id: str
    in_reply_to: str | None = None
    references: str | None = None
    from_address: str
    to_address: str
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    bundle_reference: str | None = None
    email_id: uuid.UUID | None = None
    received_at: datetime

    def quoted_message_ids(self) -> list[str]:
        """Message-IDs this reply refers to, most direct first (In-Reply-To, then References
        from the newest)."""
        ids = _MESSAGE_ID.findall(self.in_reply_to or "")
        ids += reversed(_MESSAGE_ID.findall(self.references or ""))
        return list(dict.fromkeys(ids))


def _clean(value: str | None, limit: int) -> str | None:
    """Storable text: no NUL (PostgreSQL refuses it), no lone surrogates, at most `limit` chars."""
    if value is None:
        return None
    text = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:limit] or None


def _one_line(value: object, limit: int) -> str | None:
    return _clean(" ".join(str(value).split()), limit) if value is not None else None


def _addresses(message: EmailMessage, header: str) -> list[str]:
    values = [str(value) for value in message.get_all(header, [])]
    return [address for _, address in getaddresses(values) if "@" in address]


def is_reply_address(address: str, reply_domain: str, local_part: str) -> bool:
    local, _, domain = address.strip().rpartition("@")
    if domain.casefold() != reply_domain.casefold():
        return False
    base = local.split("+", 1)[0]
    return base.casefold() == local_part.casefold()


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset, broken transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None
    return _clean(content if isinstance(content, str) else None, MAX_BODY_CHARS)


def parse_reply(
    raw: bytes, *, reply_domain: str, local_part: str = "antwort", received_at: datetime
) -> InboundReply | None:
    """The reply in a raw message, or None when it was not sent to a reply address of ours."""
    message = BytesParser(_class=EmailMessage, policy=default_policy).parsebytes(raw)
    recipient = next(
        (
            address
            for header in RECIPIENT_HEADERS
            for address in _addresses(message, header)
            if is_reply_address(address, reply_domain, local_part)
        ),
        None,
    )
    if recipient is None:
        return None
    message_id = _one_line(message.get("Message-ID"), 400)
    if not message_id:
        message_id = f"<{hashlib.sha256(raw).hexdigest()}@reply-intake.invalid>"
    in_reply_to = _one_line(message.get("In-Reply-To"), 1000)
    references = _clean(" ".join(str(message.get("References", "")).split()), 20_000)
    bundle_ref = bundle_reference_in_address(recipient) or bundle_reference_in_message_ids(
        f"{in_reply_to or ''} {references or ''}"
    )
    senders = _addresses(message, "From") or _addresses(message, "Return-Path")
    return InboundReply(
        id=uuid.uuid4(),
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        from_address=(senders[0] if senders else "unbekannt@invalid")[:254],
        to_address=recipient[:254],
        subject=_one_line(message.get("Subject"), 1000),
        text=_body(message, "plain"),
        html=_body(message, "html"),
        bundle_reference=bundle_ref,
        received_at=received_at.astimezone(UTC),
    )


def reply_message(
    *,
    to: str,
    sender: str,
    subject: str,
    text: str,
    in_reply_to: str | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    """A plain reply as a mail client would send it (tests, demo)."""
    message = EmailMessage()
    message["From"] = Address(addr_spec=sender)
    message["To"] = to
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(text)
    return message
