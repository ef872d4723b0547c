"""Replies to our emails: which messages are replies, and what is kept of them.

A message is a reply when one of its recipients is a reply address of ours
(`antwort@<REPLY_DOMAIN>` or `antwort+B123@<REPLY_DOMAIN>`); the envelope recipient counts
too (`X-Original-To` / `Delivered-To`, which the local SMTP server and most MTAs add). Anything
else in the mailbox (locally the SMTP sink also holds every email we sent) is not a reply and is
left alone.

The bundle is found through the reply address's tag (`+B123`), else through a quoted Message-ID
of ours in In-Reply-To / References (`<B123.<email id>@...>`). Replies are stored once per
Message-ID; a message without one gets a Message-ID made from a hash of its bytes, so a re-read
message is not stored twice either.

Both ways of naming a bundle are guessable (references are sequential), so a reply is attached
to a bundle, or to the email it answers, only when it is trustworthy (`review_reasons`);
otherwise it goes to the staff review list (`ReviewedReply`, never part of a bundle's or a
person's history), with the reasons:

- **SES's verdicts** (AWS: SES receiving writes each message to S3 and adds its verdict headers
  on top: `X-SES-Spam-Verdict`, `X-SES-Virus-Verdict`, `Received-SPF`, `Authentication-Results:
  amazonses.com; spf=...; dkim=...; dmarc=...`, then `X-SES-RECEIPT`). Only headers above the
  first `X-SES-RECEIPT` are SES's own: a sender can write any header into its message, but not
  above what SES prepends. With SES receiving (`verdicts_required`) the verdicts must be there
  (the receipt rule must have scanning on); in the local Maildir they are checked when present.
  Spam and virus: only PASS is accepted (FAIL, GRAY "could not decide", PROCESSING_FAILED go to
  review: a human reads them, nothing is lost). The sender (the From address) must be
  authenticated: DMARC pass; DMARC fail never; otherwise (the domain publishes no DMARC policy,
  GRAY) an SPF pass for an envelope sender of the From's domain, or a DKIM pass signed by the
  From's domain (or a parent or sub-domain of it: relaxed alignment without the public suffix
  list). SPF or DKIM alone for another domain do not vouch for the From address.
- **The sender** must belong to what the reply names: for a bundle, its therapist or practice:
  the address the inquiry went to, the therapist's current address (contacts fed by
  `therapist.*` events), or any address at the practice's own domain, i.e. a domain that is
  both the domain of one of those addresses and the practice website's host (so `gmail.com`
  never counts as a practice). For a quoted email of ours without a bundle: its recipient (or
  that person's current address). A bundle this service never sent, or a message naming
  neither a bundle nor an email of ours, is unmatched.
- **Size**: a message over `max_message_bytes` is reviewed without being parsed; one no parser
  can read is reviewed too.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import getaddresses
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

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


# --------------------------------------------------------------------------- SES verdicts

SES_RECEIPT_HEADER: Final = "X-SES-RECEIPT"
SES_AUTHSERV_ID: Final = "amazonses.com"
_AUTH_RESULT: Final = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z_]+)", re.IGNORECASE)
_MAILFROM: Final = re.compile(r"\bsmtp\.mailfrom\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)
_DKIM_DOMAIN: Final = re.compile(r"\bheader\.(?:d|i)\s*=\s*@?([^\s;]+)", re.IGNORECASE)


@dataclass(frozen=True)
class MailVerdicts:
    """What SES found when it received the message (upper case, e.g. PASS); None: not said."""

    spam: str | None = None
    virus: str | None = None
    spf: str | None = None
    dkim: str | None = None
    dmarc: str | None = None
    spf_domain: str | None = None  # the envelope sender's domain SPF checked
    dkim_domains: tuple[str, ...] = ()  # the domains of passing DKIM signatures

    def as_dict(self) -> dict[str, str]:
        return {
            name: value
            for name, value in (
                ("spam", self.spam),
                ("virus", self.virus),
                ("spf", self.spf),
                ("dkim", self.dkim),
                ("dmarc", self.dmarc),
            )
            if value is not None
        }


def ses_verdicts(message: EmailMessage) -> MailVerdicts | None:
    """SES's verdicts from the headers it put above `X-SES-RECEIPT`; None when the message did
    not come through SES receiving (no such header). Anything below, including verdict headers
    a sender wrote into its own message, is ignored."""
    items = [(name.lower(), str(value)) for name, value in message.items()]
    receipt = next((i for i, (name, _) in enumerate(items) if name == SES_RECEIPT_HEADER.lower()), None)
    if receipt is None:
        return None
    ours = items[:receipt]

    def header(name: str) -> str | None:
        value = next((v for n, v in ours if n == name), None)
        return value.strip().split()[0].upper() if value and value.strip() else None

    results: dict[str, str] = {}
    spf_domain: str | None = None
    dkim_domains: list[str] = []
    for name, value in ours:
        if name != "authentication-results" or value.split(";", 1)[0].strip().lower() != SES_AUTHSERV_ID:
            continue
        for clause in value.split(";")[1:]:
            found = _AUTH_RESULT.search(clause)
            if found is None:
                continue
            method, result = found[1].lower(), found[2].upper()
            if method == "dkim":
                if result == "PASS":
                    dkim_domains += [d.lower().rstrip(".") for d in _DKIM_DOMAIN.findall(clause)]
                # One passing signature is enough; a failing one beside it does not undo it.
                results[method] = "PASS" if results.get(method) == "PASS" else result
            else:
                results.setdefault(method, result)
            mailfrom = _MAILFROM.search(clause) if method == "spf" else None
            if mailfrom is not None:
                spf_domain = mailfrom[1].rpartition("@")[2].lower().rstrip(".")
    received_spf = header("received-spf")
    return MailVerdicts(
        spam=header("x-ses-spam-verdict"),
        virus=header("x-ses-virus-verdict"),
        spf=results.get("spf") or received_spf,
        dkim=results.get("dkim"),
        dmarc=results.get("dmarc"),
        spf_domain=spf_domain,
        dkim_domains=tuple(dict.fromkeys(dkim_domains)),
    )


class ReviewReason(StrEnum):
    """Why a message went to the staff review list instead of a bundle's history."""

    TOO_LARGE = "too_large"  # over the size cap: stored unparsed
    UNREADABLE = "unreadable"  # no parser could read it
    VERDICTS_MISSING = "verdicts_missing"  # came without SES's verdicts where they are required
    SPAM = "spam"  # SES's spam verdict is not PASS
    VIRUS = "virus"  # SES's virus verdict is not PASS
    NOT_AUTHENTICATED = "not_authenticated"  # DMARC, SPF, DKIM do not vouch for the From address
    UNKNOWN_BUNDLE = "unknown_bundle"  # names a bundle this service never sent
    SENDER_NOT_ADDRESSEE = "sender_not_addressee"  # the sender is not whom the bundle/email went to
    UNMATCHED = "unmatched"  # names neither a bundle nor an email of ours


def _domain(address: str | None) -> str:
    return (address or "").strip().rpartition("@")[2].lower().rstrip(".")


def _aligned(domain: str | None, sender_domain: str) -> bool:
    """Relaxed alignment: the same domain, or one a sub-domain of the other."""
    if not domain or not sender_domain:
        return False
    return (
        domain == sender_domain
        or sender_domain.endswith(f".{domain}")
        or domain.endswith(f".{sender_domain}")
    )


def verdict_reasons(verdicts: MailVerdicts | None, sender: str, *, required: bool) -> list[ReviewReason]:
    """What SES's verdicts say against attaching this message (see the module docstring)."""
    if verdicts is None:
        return [ReviewReason.VERDICTS_MISSING] if required else []
    reasons: list[ReviewReason] = []
    if verdicts.spam is None or verdicts.virus is None:
        reasons.append(ReviewReason.VERDICTS_MISSING)
    if verdicts.spam is not None and verdicts.spam != "PASS":
        reasons.append(ReviewReason.SPAM)
    if verdicts.virus is not None and verdicts.virus != "PASS":
        reasons.append(ReviewReason.VIRUS)
    domain = _domain(sender)
    authenticated = verdicts.dmarc == "PASS" or (
        verdicts.dmarc != "FAIL"
        and (
            (verdicts.spf == "PASS" and _aligned(verdicts.spf_domain, domain))
            or (verdicts.dkim == "PASS" and any(_aligned(d, domain) for d in verdicts.dkim_domains))
        )
    )
    if not authenticated:
        reasons.append(ReviewReason.NOT_AUTHENTICATED)
    return reasons


def _website_host(website: str | None) -> str:
    if not website:
        return ""
    text = website.strip()
    try:
        host = urlsplit(text if "://" in text else f"https://{text}").hostname or ""
    except ValueError:
        return ""
    host = host.lower().rstrip(".")
    return host.removeprefix("www.")


def sender_belongs(sender: str, addresses: Iterable[str | None], websites: Iterable[str | None] = ()) -> bool:
    """Whether `sender` is one of `addresses` (case-insensitively), or writes from the
    practice's own domain: a domain that is both one of those addresses' domain and a practice
    website's host (a shared mail provider is nobody's website)."""
    wanted = sender.strip().casefold()
    known = [a.strip().casefold() for a in addresses if a and a.strip()]
    if not wanted or not known:
        return False
    if wanted in known:
        return True
    own_domains = {_domain(a) for a in known} & {_website_host(w) for w in websites}
    own_domains.discard("")
    return _domain(wanted) in own_domains


@dataclass(frozen=True)
class AnsweredEmail:
    """An email of ours a reply quotes: whom it went to."""

    id: uuid.UUID
    recipient: str
    recipient_type: str
    recipient_id: uuid.UUID | None
    bundle_reference: str | None


@dataclass(frozen=True)
class ReplyPolicy:
    """How reply intake judges messages (settings: REPLY_INBOX, REPLY_MAX_MESSAGE_BYTES)."""

    max_message_bytes: int = 5 * 1024 * 1024
    verdicts_required: bool = False  # True with SES receiving (REPLY_INBOX=s3)


class ReviewedReply(BaseModel):
    """A message on the staff review list (table `reply_reviews`): not attached to any bundle or
    person. Text and addresses are kept for staff to read; an oversized or unreadable message
    keeps only where it lies in the inbox and its size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    inbox_key: str = Field(description="Where the message lies in the inbox (file or S3 key)")
    reasons: list[ReviewReason] = Field(min_length=1)
    message_id: str | None = None
    from_address: str | None = None
    to_address: str | None = None
    subject: str | None = None
    text: str | None = None
    claimed_bundle_reference: str | None = Field(
        default=None, description="The bundle the message names; it is not attached to it"
    )
    verdicts: dict[str, str] = Field(default_factory=dict, description="SES's verdicts, if any")
    size_bytes: int = Field(ge=0)
    received_at: datetime


@dataclass(frozen=True)
class ReadMessage:
    """A reply as read from the inbox: what is stored if accepted, SES's verdicts, the sender."""

    reply: InboundReply
    verdicts: MailVerdicts | None
    sender: str = ""  # the From address ("" when there is none)


def read_reply(
    raw: bytes, *, reply_domain: str, local_part: str = "antwort", received_at: datetime
) -> ReadMessage | None:
    """The reply in a raw message with SES's verdicts, or None when it was not sent to a reply
    address of ours."""
    message = BytesParser(_class=EmailMessage, policy=default_policy).parsebytes(raw)
    reply = _reply_of(message, raw, reply_domain=reply_domain, local_part=local_part, received_at=received_at)
    if reply is None:
        return None
    senders = _addresses(message, "From")
    return ReadMessage(reply=reply, verdicts=ses_verdicts(message), sender=senders[0] if senders else "")


def parse_reply(
    raw: bytes, *, reply_domain: str, local_part: str = "antwort", received_at: datetime
) -> InboundReply | None:
    """The reply in a raw message, or None when it was not sent to a reply address of ours."""
    message = BytesParser(_class=EmailMessage, policy=default_policy).parsebytes(raw)
    return _reply_of(message, raw, reply_domain=reply_domain, local_part=local_part, received_at=received_at)


def _reply_of(
    message: EmailMessage, raw: bytes, *, reply_domain: str, local_part: str, received_at: datetime
) -> InboundReply | None:
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
