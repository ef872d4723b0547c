"""Whether a therapist's reply objects to further inquiries (GDPR Art. 21). Pure.

Every inquiry email tells the therapist how to object: reply "keine weiteren Anfragen". People
word it their own way, so a few phrasings count ("bitte keine Anfragen mehr", "austragen",
"nicht mehr kontaktieren", "ich widerspreche", ...), case, umlauts, line breaks and punctuation
aside. Only the reply's own words count: quoted lines ("> ..."), the quoted original below an
"Am ... schrieb ...:" line or an "-----Ursprüngliche Nachricht-----" separator, and HTML
<blockquote>s are cut off first, because the quoted inquiry itself contains the phrase.

A false positive only stops inquiries to one practice (the cautious direction); an admin can
allow them again when the therapist asks (`POST /api/v2/therapists/{id}/opt-in`). Nothing here
is logged or published but the verdict.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any, Final

from therapy_platform.contracts.communication import OptOutReceived

# The reply's own words end where the quoted original starts.
_QUOTE_STARTS: Final = (
    re.compile(r"^\s*-{2,}\s*(ursprüngliche nachricht|original message|weitergeleitete nachricht)", re.I),
    re.compile(r"^\s*am .{0,200}schrieb.{0,200}:\s*$", re.I),
    re.compile(r"^\s*on .{0,200}wrote:\s*$", re.I),
    re.compile(r"^\s*(von|from):\s.+$", re.I),
)
_BLOCKQUOTE: Final = re.compile(r"<blockquote\b.*?</blockquote\s*>", re.I | re.S)
_TAG: Final = re.compile(r"<[^>]{0,2000}>")
_NOT_WORD: Final = re.compile(r"[^a-z0-9äöü]+")

# Matched on the normalised text: lower case, "ß" as "ss", one space between words.
_OBJECTIONS: Final = tuple(
    re.compile(pattern)
    for pattern in (
        r"\bkeine (weiteren|weitere|neuen|neue) (anfragen|anfrage|e ?mails|mails|nachrichten)\b",
        r"\bkeine (anfragen|anfrage|e ?mails|mails|nachrichten) mehr\b",
        r"\baustragen\b",
        r"\btragen sie (mich|uns) (bitte )?(aus|.{0,40} aus)\b",
        r"\babmelden\b",
        r"\bnicht (mehr|weiter) (kontaktieren|anschreiben|anfragen|anzuschreiben|zu kontaktieren)\b",
        r"\b(ich|wir) widersprechen?\b",
        r"\bwiderspruch gegen\b",
        r"\bunsubscribe\b",
        r"\bno (further|more) (requests|inquiries|enquiries|emails|e mails)\b",
    )
)


def own_words(text: str) -> str:
    """The part of a plain-text reply its sender wrote: up to the first quoted line block or
    quoted-original header, without lines starting with ">"."""
    kept: list[str] = []
    for line in text.splitlines():
        if any(start.match(line) for start in _QUOTE_STARTS):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept)


def html_own_words(html: str) -> str:
    """The visible text of an HTML reply without its quoted parts (<blockquote>)."""
    return own_words(_TAG.sub(" ", _BLOCKQUOTE.sub(" ", html)))


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFC", text).casefold().replace("ß", "ss")
    return _NOT_WORD.sub(" ", folded).strip()


def objects_to_inquiries(text: str | None, html: str | None = None) -> bool:
    """True when the reply's own words object to further inquiries. The plain-text part is
    read when there is one, else the HTML part; a reply with neither objects to nothing."""
    if text is not None and text.strip():
        words = own_words(text)
    elif html is not None:
        words = html_own_words(html)
    else:
        return False
    normalised = normalise(words)
    return any(pattern.search(normalised) for pattern in _OBJECTIONS)


def opt_out_event_payload(therapist_id: uuid.UUID) -> dict[str, Any]:
    """Payload of `email.opt_out_received`: the therapist's id only, never the reply's words
    (the reply stays in the communication service, linked to its bundle)."""
    return OptOutReceived(therapist_id=therapist_id).model_dump(mode="json")
