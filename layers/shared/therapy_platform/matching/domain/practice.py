"""Practices: therapists sharing an email are one practice and receive one bundle, addressed to
the practice owner."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime

from therapy_platform.matching.domain.models import TherapistCandidate

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_PROF = re.compile(r"\bprof\b")
_DR = re.compile(r"\bdr\b")


def fold_name(text: str) -> str:
    """Lower case, German umlauts spelled out (ä->ae, ö->oe, ü->ue, ß->ss), other accents
    dropped, only letters and digits kept: how a name is written in an email address."""
    text = text.casefold().translate(_UMLAUTS)  # casefold turns ß into ss already; Ä into ä
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _NOT_ALNUM.sub("", text)


def name_in_email(last_name: str, email: str | None) -> bool:
    """Whether the folded last name appears in the email's local part or domain."""
    name = fold_name(last_name)
    if not name or not email:
        return False
    return any(name in fold_name(part) for part in email.split("@"))


def title_rank(title: str | None) -> int:
    """Prof. (2) before Dr. (1) before anything else (0)."""
    folded = (title or "").casefold()
    if _PROF.search(folded):
        return 2
    if _DR.search(folded):
        return 1
    return 0


def choose_practice_owner(therapists: Iterable[TherapistCandidate]) -> TherapistCandidate:
    """The therapist a practice's bundle is addressed to.

    Whose last name appears in the email (the longest such name, so "Kochmann" beats "Koch"
    in kochmann@...), else the highest title (Prof. before Dr.), else the oldest record
    (created_at, then id). Independent of input order.
    """
    members = list(therapists)
    if not members:
        raise ValueError("a practice has at least one therapist")

    def rank(therapist: TherapistCandidate) -> tuple[int, int, datetime, str]:
        named = name_in_email(therapist.last_name, therapist.email)
        name_length = len(fold_name(therapist.last_name)) if named else 0
        return (-name_length, -title_rank(therapist.title), therapist.created_at, str(therapist.id))

    return min(members, key=rank)
