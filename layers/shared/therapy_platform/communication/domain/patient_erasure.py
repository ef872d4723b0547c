"""What the communication service erases when a patient is erased (`patient.deleted`, GDPR
Art. 17). Pure rules; the SQL and the stored mails are adapters/patient_erasure.py.

The event carries only the patient's id, so the service finds the person's values in what it
holds itself, before it erases them: the addresses and names its emails to the patient were
sent to, and the contact it kept from `patient.*` events. From these `patient_terms` builds
the `ErasureTerms` (contracts/erasure.py) that every shared document is scrubbed with:

What is erased:
- emails to the patient: the ones not yet sent (draft, queued, sending) are cancelled, so the
  sender never sends them; every one has its address, name, subject and bodies blanked (kind,
  status and times stay);
- tracked bundles: the patient's member entries (their data-minimised summary) removed; their
  member references ("B1042-3") are scrubbed like the other values, so what an inquiry email
  said about them no longer links to anything;
- other emails (inquiries, notices, staff alerts) and their delivery errors, replies and the
  messages on the review list, phone-call notes, audit details, tracked bundles' member data and
  outbox payloads: the patient's values are scrubbed;
- stored reply mails (S3 `processed/`, locally the Maildir's `cur/`): every raw message that
  names the patient is deleted (a raw MIME message cannot be scrubbed safely; its parsed,
  scrubbed copy stays in the database).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Any, Final

from therapy_platform.contracts.erasure import ErasureTerms, mentions

CANCELLED_FOR_ERASURE: Final = "cancelled: the recipient was erased (GDPR)"
# The contact fields (from `patient.*` events) that are the patient's values.
CONTACT_TEXT_FIELDS: Final = ("first_name", "last_name", "name", "display_name", "email", "street")
CONTACT_PHONE_FIELDS: Final = ("phone",)


@dataclass(frozen=True)
class HeldValues:
    """What the service holds that names the patient: its emails' addresses and names, and
    the contact record (if any)."""

    addresses: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    contact: Mapping[str, Any] | None = None
    # The patient's searches (from the keys of the emails the service wrote them) and their
    # member references in the bundles this service tracked ("B1042-3").
    search_ids: tuple[uuid.UUID, ...] = ()
    member_references: tuple[str, ...] = ()


# The idempotency keys of the emails to a patient that name their search (use_cases/events.py).
_SEARCH_KEY = re.compile(r"^(?:search-started|place-found):([0-9a-f-]{36})(?::|$)")


def search_ids_of(keys: Iterable[str | None]) -> tuple[uuid.UUID, ...]:
    """The search ids in the idempotency keys of the emails to a patient."""
    found = {uuid.UUID(match.group(1)) for key in keys if key and (match := _SEARCH_KEY.match(key))}
    return tuple(sorted(found))


def _names_of(contact: Mapping[str, Any]) -> Iterable[str]:
    first, last = contact.get("first_name"), contact.get("last_name")
    if isinstance(first, str) and isinstance(last, str):
        yield f"{first} {last}"
    for field in CONTACT_TEXT_FIELDS:
        value = contact.get(field)
        if isinstance(value, str):
            yield value


def patient_terms(held: HeldValues) -> ErasureTerms:
    """The patient's values to scrub: every address and name the service used for them, their
    member references in tracked bundles, the contact's name parts, email, street and phone."""
    texts: list[str] = [*held.addresses, *held.names, *held.member_references]
    phones: list[str] = []
    if held.contact:
        texts.extend(_names_of(held.contact))
        phones.extend(str(held.contact[field]) for field in CONTACT_PHONE_FIELDS if held.contact.get(field))
    return ErasureTerms.of(texts=texts, phones=phones)


@dataclass(frozen=True)
class ErasureReport:
    """What one erasure changed (counts only: it goes to the log)."""

    emails_cancelled: int = 0
    emails_redacted: int = 0
    rows_scrubbed: int = 0
    stored_mails_deleted: int = 0

    def describe(self) -> str:
        return (
            f"{self.emails_cancelled} email(s) cancelled, {self.emails_redacted} redacted, "
            f"{self.rows_scrubbed} row(s) scrubbed, {self.stored_mails_deleted} stored mail(s) deleted"
        )


def mail_mentions(raw: bytes, terms: ErasureTerms) -> bool:
    """Whether a raw (MIME) message names the person: its headers and every text part,
    decoded (a quoted-printable or base64 body hides nothing), and the raw bytes themselves."""
    if not terms:
        return False
    if mentions(raw.decode("utf-8", errors="replace"), terms):
        return True
    message = BytesParser(policy=policy.default).parsebytes(raw)
    if any(mentions(str(value), terms) for value in message.values()):
        return True
    for part in message.walk():
        if part.get_content_maintype() == "text":
            try:
                content = part.get_content()
            except (LookupError, ValueError):  # an unknown charset: the raw bytes were checked
                continue
            if isinstance(content, str) and mentions(content, terms):
                return True
    return False
