"""Contact details in a practice website's text: an email address and the phone hours.

Pure text rules (the HTML is reduced to text and links by adapters/enrichment.py):
- emails from `mailto:` links first, then from the text, also written as `info (at) praxis.de`;
  an address on the website's own domain is preferred over any other;
- phone hours only from the part of the text that announces them ("Telefonische Sprechzeiten",
  "telefonisch erreichbar", "Telefonzeiten"), as German people write them: `Mo-Fr 8-9 Uhr`,
  `Mo, Mi und Do 12.30 - 13.00`, `Dienstag bis Donnerstag 08:00-08:50 Uhr` (an en dash too). A window the
  schedule rule refuses (`25:00-26:00`) is left out rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final
from urllib.parse import urlsplit

from therapy_platform.contracts.schedule import (
    MINUTES_PER_DAY,
    Weekday,
    Window,
    schedule_from_windows,
    weekday_from_german,
)

_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,24}")
_AT: Final = re.compile(r"\s*[\[(\{]\s*(?:at|ät|@)\s*[\])\}]\s*", re.IGNORECASE)
_DOT: Final = re.compile(r"\s*[\[(\{]\s*(?:dot|punkt)\s*[\])\}]\s*", re.IGNORECASE)
_NOT_AN_ADDRESS: Final = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")


def _deobfuscated(text: str) -> str:
    return _DOT.sub(".", _AT.sub("@", text))


def _domain(host: str) -> str:
    parts = host.lower().strip(".").split(".")
    return ".".join(parts[-2:])


def email_candidates(text: str, mailto_targets: Iterable[str] = ()) -> list[str]:
    """Addresses in order of trust: mailto targets, then the text. Lower-cased, unique."""
    found: list[str] = []
    for source in [*mailto_targets, _deobfuscated(text)]:
        for match in _EMAIL.finditer(source):
            address = match.group(0).strip(".").lower()
            if address.endswith(_NOT_AN_ADDRESS) or address in found:
                continue
            found.append(address)
    return found


def pick_email(candidates: Sequence[str], website: str | None) -> str | None:
    """The practice's contact address: the first on the website's own domain, else the first."""
    if not candidates:
        return None
    host = urlsplit(website if website and "//" in website else f"//{website or ''}").hostname or ""
    if host:
        own = [address for address in candidates if _domain(address.rsplit("@", 1)[1]) == _domain(host)]
        if own:
            return own[0]
    return candidates[0]


# ---------------------------------------------------------------------------------------------
# Phone hours
# ---------------------------------------------------------------------------------------------

_ANNOUNCEMENT: Final = re.compile(
    r"telefon(?:isch(?:e|en)?)?\s*(?:sprechzeit(?:en)?|sprechstunde[n]?|erreichbar(?:keit)?|zeiten)"
    r"|telefonzeiten|telefonsprech(?:zeiten|stunden?)",
    re.IGNORECASE,
)
# Where the phone hours end: another kind of hours, or the next section of the page.
_SECTION_END: Final = re.compile(
    r"\b(?:Sprechzeiten|Sprechstunden?|Öffnungszeiten|Praxiszeiten|Therapiezeiten|Adresse|Anfahrt|"
    r"Impressum|Datenschutz)\b"
)
_SEGMENT_CHARS: Final = 300
_DAY: Final = (
    r"(?:Montag|Dienstag|Mittwoch|Donnerstag|Freitag|Samstag|Sonnabend|Sonntag|Mo|Di|Mi|Do|Fr|Sa|So)\.?"
)
_DAY_GROUP: Final = rf"\b{_DAY}(?:\s*(?:-|\u2013|bis|,|und|&|/)\s*{_DAY})*(?![A-Za-zäöü])"
_TIME: Final = r"(?<![\d.:])(\d{1,2})(?:[:.](\d{2}))?(?![\d])"
_RANGE: Final = rf"{_TIME}\s*(?:Uhr)?\s*(?:-|\u2013|bis)\s*{_TIME}\s*(?:Uhr)?"
_TOKENS: Final = re.compile(rf"(?P<days>{_DAY_GROUP})|(?P<range>{_RANGE})")
_DAY_WORD: Final = re.compile(_DAY)
_ORDER: Final = tuple(Weekday)


def _days_of_group(group: str) -> list[Weekday]:
    """`Mo-Fr` / `Montag bis Donnerstag` (ranges) and `Mo, Mi und Do` (lists), mixed too."""
    words = [(m.start(), m.end(), weekday_from_german(m.group(0))) for m in _DAY_WORD.finditer(group)]
    days: list[Weekday] = []
    previous: Weekday | None = None
    for index, (_, _, day) in enumerate(words):
        if day is None:
            continue
        separator = group[words[index - 1][1] : words[index][0]] if index else ""
        if previous is not None and re.search(r"-|\u2013|bis", separator):
            start, end = _ORDER.index(previous), _ORDER.index(day)
            days.extend(_ORDER[start + 1 : end + 1] if start < end else [day])
        else:
            days.append(day)
        previous = day
    return days


def _span(match: re.Match[str]) -> Window | None:
    h1, m1, h2, m2 = match.group(3, 4, 5, 6)  # the two clock times of the range token
    start = int(h1) * 60 + int(m1 or 0)
    end = int(h2) * 60 + int(m2 or 0)
    if int(h1) > 23 or int(h2) > 24 or int(m1 or 0) > 59 or int(m2 or 0) > 59:
        return None
    if not 0 <= start < end <= MINUTES_PER_DAY:
        return None
    return start, end


def _segments(text: str) -> list[str]:
    segments: list[str] = []
    for match in _ANNOUNCEMENT.finditer(text):
        segment = text[match.end() : match.end() + _SEGMENT_CHARS]
        end = _SECTION_END.search(segment)
        segments.append(segment[: end.start()] if end else segment)
    return segments


def phone_hours(text: str) -> dict[str, list[str]]:
    """The weekly phone windows a page announces (stored form), or {} when it names none."""
    days: dict[Weekday, list[Window]] = {}
    for segment in _segments(text):
        current: list[Weekday] = []
        last_was_range = False
        for token in _TOKENS.finditer(segment):
            if token.group("days"):
                if last_was_range or not current:
                    current = []
                current = [*current, *_days_of_group(token.group("days"))]
                last_was_range = False
                continue
            span = _span(token)
            last_was_range = True
            if span is None or not current:
                continue
            for day in current:
                days.setdefault(day, []).append(span)
    return schedule_from_windows(days)
