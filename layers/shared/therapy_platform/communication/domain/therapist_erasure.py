"""Erasing a therapist in the communication service (`therapist.deleted`, GDPR Art. 17): the
pure rules. Emails, replies and phone-call tasks *to or from* the therapist are scrubbed whole;
other stored text (a patient's "place found" email, a staff alert) keeps its sense and loses
only the therapist's identifying values, replaced by `ERASED_MARK`. Which values identify the
therapist is decided here from what the service held about them (its contact copy, the bundle
snapshots, call tasks): the email address, phone and fax numbers (as written and as digits only),
and the full name. A bare last name alone is not replaced (it would also erase other people's
names)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

ERASED_MARK: Final = "[gelöscht]"
ERASE_ACTION: Final = "erase_therapist"  # the communication audit entry of an erasure
_CONTACT_KEYS: Final = ("email", "phone", "fax", "mobile")
_MIN_DIGITS: Final = 6


def identifying_values(records: Iterable[Mapping[str, Any] | None]) -> list[str]:
    """Every value that identifies the therapist in free text, longest first (so a full name is
    replaced before a part of it could be)."""
    values: set[str] = set()
    for record in records:
        if not record:
            continue
        for key in _CONTACT_KEYS:
            value = str(record.get(key) or "").strip()
            if not value:
                continue
            values.add(value)
            if key == "email":
                values.add(value.lower())
            else:
                digits = re.sub(r"\D", "", value)
                if len(digits) >= _MIN_DIGITS:
                    values.add(digits)
        first = str(record.get("first_name") or "").strip()
        last = str(record.get("last_name") or "").strip()
        if first and last:
            values.add(f"{first} {last}")
        for key in ("name", "display_name", "therapist_name"):
            name = str(record.get(key) or "").strip()
            if " " in name:  # a full name, not a bare word
                values.add(name)
    return sorted(values, key=lambda value: (-len(value), value))


class TherapistErasureCounts(BaseModel):
    """What one erasure changed in the communication service (ids and numbers only)."""

    model_config = ConfigDict(frozen=True)

    emails_scrubbed: int = 0
    emails_cancelled: int = 0
    emails_mentioning_redacted: int = 0
    replies_scrubbed: int = 0
    reviews_scrubbed: int = 0
    calls_scrubbed: int = 0
    calls_cancelled: int = 0
    bundles_scrubbed: int = 0
