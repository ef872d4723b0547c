"""An erased therapist (`therapist.deleted`, GDPR Art. 17) in the matching service: pure rules.

Their open bundles close at once, without any message to them (they are gone) and without a
cooling period (there is nobody left to protect from contact):
- a draft is discarded: it never reached them, so its members' contacts are given back;
- a sent bundle expires; its pending members are *withdrawn* first (not `no_response`: the
  therapist did not fail to answer, the inquiry was cancelled). The contact stays counted (the
  inquiry did reach the therapist), but the search's open-bundle slot is free again, so the
  patient waits for the next round like anyone else: no penalty, no priority.
Bundle rows keep their history (status, counts, member outcomes) and the therapist's id, but
no contact data: the practice key (the practice's email) becomes `therapist:<therapist id>`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from therapy_platform.matching.domain.bundle import BundleRecord
from therapy_platform.matching.domain.bundles import BundleStatus, MemberStatus

ERASURE_REASON: Final = "therapist erased on request"
ERASED_MARK: Final = "[erased]"


def erased_practice_key(therapist_id: uuid.UUID) -> str:
    """What a bundle's practice key becomes: the key of a practice of one (contracts/bundles.py),
    not the hash of the practice's address, still unique per therapist."""
    return f"therapist:{therapist_id}"


def close_for_erased_therapist(bundle: BundleRecord, *, now: datetime) -> list[uuid.UUID]:
    """Close one open bundle of an erased therapist (see the module docstring); returns the
    searches whose pending membership was withdrawn. A closed bundle is left as it is."""
    if bundle.status is BundleStatus.DRAFT:
        pending = [member.search_id for member in bundle.members if member.pending]
        bundle.discard(ERASURE_REASON, now=now)
        return pending
    if bundle.status is not BundleStatus.SENT:
        return []
    withdrawn: list[uuid.UUID] = []
    for member in bundle.members:
        if member.pending:
            member.status = MemberStatus.WITHDRAWN
            member.notes = ERASURE_REASON
            withdrawn.append(member.search_id)
    bundle.expire(now=now)
    return withdrawn


def identifying_values(
    contacts: Iterable[Mapping[str, Any] | None], practice_keys: Iterable[str]
) -> list[str]:
    """The values that identify the therapist in stored text: the practice keys (emails), and
    from each addressee a `bundle.sent` carried, the full name, email and phone (as written and
    digits only). Longest first, so a full name is replaced before any part of it."""
    values = {key for key in practice_keys if key and "@" in key}
    for contact in contacts:
        if not contact:
            continue
        first = str(contact.get("first_name") or "").strip()
        last = str(contact.get("last_name") or "").strip()
        if first and last:
            values.add(f"{first} {last}")
        email = str(contact.get("email") or "").strip()
        if email:
            values.update({email, email.lower()})
        phone = str(contact.get("phone") or "").strip()
        if phone:
            values.add(phone)
            digits = re.sub(r"\D", "", phone)
            if len(digits) >= 6:
                values.add(digits)
    return sorted(values, key=lambda value: (-len(value), value))
