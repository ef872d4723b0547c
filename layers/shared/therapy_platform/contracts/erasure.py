"""Removing one person's values from text and JSON documents that also speak of others (GDPR
Art. 17 erasure of shared records: a bundle inquiry listing several patients, a reply, a
phone-call note).

Every service that holds such documents gathers the person's values from what it holds itself
(names, addresses, phone numbers, references), turns them into `ErasureTerms` and scrubs each
document with `scrub`. Pure functions: no I/O, no service knowledge.

Matching rules:
- text terms (names, email addresses, references) match case-insensitively anywhere, also
  inside longer words (scrubbing too much is the safe side);
- phone numbers match by their digits, whatever separators a writer put between them
  ("030 / 123-45", "+49 30 12345"), with the German national and international prefixes
  (`0`, `+49`, `0049`) treated alike;
- a term shorter than `MIN_TERM_LENGTH` characters (or a phone number with fewer than
  `MIN_PHONE_DIGITS` digits) is ignored: it would erase unrelated text (an initial, "Dr").

Every match becomes `REDACTED`. Scrubbing is idempotent: scrubbing a scrubbed document changes
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

REDACTED: Final = "[gelöscht]"
MIN_TERM_LENGTH: Final = 3
MIN_PHONE_DIGITS: Final = 6
_SEPARATORS: Final = r"[\s\-/().]*"
_MAX_PASSES: Final = 5


def _phone_core(phone: str) -> str | None:
    """The digits after the country or trunk prefix (`+49`, `0049`, `0`), or None if too short."""
    digits = re.sub(r"\D", "", phone)
    if phone.strip().startswith("+49") or digits.startswith("0049"):
        digits = digits.removeprefix("00").removeprefix("49")
    digits = digits.lstrip("0")
    return digits if len(digits) >= MIN_PHONE_DIGITS else None


@dataclass(frozen=True)
class ErasureTerms:
    """The values of one person to remove: text terms and phone numbers."""

    texts: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *, texts: Iterable[str | None] = (), phones: Iterable[str | None] = ()) -> ErasureTerms:
        """Normalised terms: blanks dropped, short terms ignored, a full name also as its parts
        in both orders ("Anna Muster" -> "Anna Muster", "Muster Anna", "Muster, Anna")."""
        kept: set[str] = set()
        for value in texts:
            term = " ".join((value or "").split())
            if len(term) < MIN_TERM_LENGTH:
                continue
            kept.add(term)
            parts = term.split(" ")
            if len(parts) == 2:
                kept.update({f"{parts[1]} {parts[0]}", f"{parts[1]}, {parts[0]}"})
        cores = {core for phone in phones if phone and (core := _phone_core(phone))}
        return cls(frozenset(kept), frozenset(cores))

    def __or__(self, other: ErasureTerms) -> ErasureTerms:
        return ErasureTerms(self.texts | other.texts, self.phones | other.phones)

    def __bool__(self) -> bool:
        return bool(self.texts or self.phones)

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        alternatives = [re.escape(term) for term in sorted(self.texts, key=lambda t: (-len(t), t))]
        for core in sorted(self.phones, key=lambda c: (-len(c), c)):
            digits = _SEPARATORS.join(core)
            # `+49 30 ...`, `0049 30 ...`, `030 ...` or the bare digits.
            alternatives.append(
                rf"(?:(?:\+|00){_SEPARATORS}49{_SEPARATORS}(?:\(0\){_SEPARATORS})?|0)?{digits}"
            )
        if not alternatives:
            return None
        return re.compile("|".join(alternatives), re.IGNORECASE)

    @cached_property
    def sql_pattern(self) -> str | None:
        """The same terms as a PostgreSQL regular expression (for `~*`): a prefilter that finds
        the rows to scrub, so that only those are read; `scrub` does the replacing."""
        texts = ["".join(char if char.isalnum() else "\\" + char for char in term) for term in self.texts]
        phones = ["[-[:space:]/().]*".join(core) for core in self.phones]
        alternatives = sorted(texts) + sorted(phones)
        return "|".join(alternatives) if alternatives else None


def scrub_text(text: str, terms: ErasureTerms) -> str:
    """The text with every occurrence of the person's values replaced by `REDACTED`."""
    pattern = terms.pattern
    if pattern is None:
        return text
    for _ in range(_MAX_PASSES):  # a replacement can join two halves of a term: repeat until stable
        scrubbed = pattern.sub(REDACTED, text)
        if scrubbed == text:
            break
        text = scrubbed
    return text


def scrub(value: Any, terms: ErasureTerms) -> Any:
    """A JSON-like value (str, list, dict, number, bool, None) with the person's values removed
    from every string in it, keys included; other values are returned as they are."""
    if isinstance(value, str):
        return scrub_text(value, terms)
    if isinstance(value, list | tuple):
        return [scrub(item, terms) for item in value]
    if isinstance(value, dict):
        return {scrub_text(str(key), terms): scrub(item, terms) for key, item in value.items()}
    return value


def mentions(value: Any, terms: ErasureTerms) -> bool:
    """Whether a text or JSON value contains any of the person's values."""
    pattern = terms.pattern
    if pattern is None:
        return False
    if isinstance(value, str):
        return pattern.search(value) is not None
    if isinstance(value, list | tuple):
        return any(mentions(item, terms) for item in value)
    if isinstance(value, dict):
        return any(mentions(str(key), terms) or mentions(item, terms) for key, item in value.items())
    return False


ID_KEYS: Final = ("id", "patient_id", "search_id", "member_id", "subject_id")


def forget(value: Any, ids: Iterable[str], fields: Iterable[str], *, inside: bool = False) -> Any:
    """A JSON-like value in which every object that names one of `ids` (under `ID_KEYS`), and
    every object nested in it, has its `fields` redacted: a text becomes `REDACTED`, anything
    else None (so a payload still parses with its contract: a required text stays a text). E.g.
    the `patient` summary and `notes` of an erased patient's bundle member, while the other
    members and the counts stay. Structural: it needs no value of the person, only the ids the
    service holds."""
    wanted, dropped = {str(i) for i in ids}, frozenset(fields)
    if isinstance(value, list | tuple):
        return [forget(item, wanted, dropped, inside=inside) for item in value]
    if isinstance(value, dict):
        inside = inside or any(str(value.get(key)) in wanted for key in ID_KEYS if value.get(key) is not None)
        return {
            key: (REDACTED if isinstance(item, str) else None)
            if inside and key in dropped and item is not None
            else forget(item, wanted, dropped, inside=inside)
            for key, item in value.items()
        }
    return value
