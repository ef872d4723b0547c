"""Practices: therapists sharing an email are one practice and receive one bundle, addressed to
the practice owner. The therapist service sends the practice as a hashed key and the owner
ranks (contracts/practices.py); matching never sees names or addresses."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from therapy_platform.matching.domain.models import TherapistCandidate


def choose_practice_owner(therapists: Iterable[TherapistCandidate]) -> TherapistCandidate:
    """The therapist a practice's bundle is addressed to.

    Whose last name appears in the practice address (the longest such name, so "Kochmann"
    beats "Koch" in kochmann@...: `owner_name_rank`), else the highest title (Prof. before
    Dr.: `title_rank`), else the oldest record (created_at, then id). Independent of input
    order.
    """
    members = list(therapists)
    if not members:
        raise ValueError("a practice has at least one therapist")

    def rank(therapist: TherapistCandidate) -> tuple[int, int, datetime, str]:
        return (-therapist.owner_name_rank, -therapist.title_rank, therapist.created_at, str(therapist.id))

    return min(members, key=rank)
