"""Practices on the bus without contact data: the practice key and the owner ranks.

Therapists sharing an email address are one practice and receive one bundle, addressed to the
practice owner. The therapist service knows the address and the names; the matching service
must not. So the therapist service sends, per therapist,
- `practice_key`: "p:" + the first 32 hex digits of SHA-256 over the normalised shared address
  (equal addresses give equal keys; the key reveals no address),
- `owner_name_rank`: the length of the folded last name when it appears in the address (0
  otherwise): whose name the practice's address carries,
- `title_rank`: Prof. (2) before Dr. (1) before anything else (0),
and the matching service picks the owner from those numbers alone (`matching/domain/practice.py`).
Pure functions, used by the therapist service when it builds its events.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_PROF = re.compile(r"\bprof\b")
_DR = re.compile(r"\bdr\b")
PRACTICE_KEY_PREFIX = "p:"
PRACTICE_KEY_PATTERN = r"^p:[0-9a-f]{32}$"


@lru_cache(maxsize=16384)
def fold_name(text: str) -> str:
    """Lower case, German umlauts spelled out (ä->ae, ö->oe, ü->ue, ß->ss), other accents
    dropped, only letters and digits kept: how a name is written in an email address."""
    text = text.casefold().translate(_UMLAUTS)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _NOT_ALNUM.sub("", text)


def name_in_email(last_name: str, email: str | None) -> bool:
    """Whether the folded last name appears in the email's local part or domain."""
    name = fold_name(last_name)
    if not name or not email:
        return False
    return any(name in fold_name(part) for part in email.split("@"))


def owner_name_rank(last_name: str, email: str | None) -> int:
    """The folded last name's length when the address carries it (longest wins: "Kochmann"
    beats "Koch" in kochmann@...), else 0."""
    return len(fold_name(last_name)) if name_in_email(last_name, email) else 0


def title_rank(title: str | None) -> int:
    """Prof. (2) before Dr. (1) before anything else (0)."""
    folded = (title or "").casefold()
    if _PROF.search(folded):
        return 2
    if _DR.search(folded):
        return 1
    return 0


def hashed_practice_key(address: str | None) -> str | None:
    """The practice key of a shared address (None: no address, a practice of one)."""
    if not address or not address.strip():
        return None
    digest = hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()
    return f"{PRACTICE_KEY_PREFIX}{digest[:32]}"
