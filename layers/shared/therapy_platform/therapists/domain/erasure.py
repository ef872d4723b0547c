"""Erasing a therapist (GDPR Art. 17) and keeping them erased: pure rules.

An erased therapist leaves no personal data in the therapist service. What stays is one row per
erasure (`erased_therapists`): the therapist's id (so a repeated erase answers 204, not 404) and
its *suppression keys*, SHA-256 digests that let the directory import recognise the same listing
again without holding the name or the directory id in clear:

- `directory:` + the 116117 directory id (stable across runs: the import's first match);
- `name:` + first name, last name (Unicode NFKC, case-folded, inner whitespace collapsed) and
  the postcode (the import's second match, for a listing whose directory id changed).

Why a plain (unkeyed) digest: every input is itself public (the 116117 directory), so a digest
adds no new fact about a person to whoever holds the directory, and it needs no secret that must
outlive every deployment (a lost key would silently let erased therapists come back). A
versioned prefix separates the two kinds of key and allows a later change of the rule.
"""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

KEY_VERSION = "v1"
ERASE_ACTION = "erase"


def _normalised(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{KEY_VERSION}:{kind}:{value}".encode()).hexdigest()


def directory_key(directory_id: str) -> str:
    """The suppression key of a directory listing id."""
    return _digest("directory", directory_id.strip())


def name_key(first_name: str, last_name: str, postcode: str) -> str:
    """The suppression key of a person's name at a postcode."""
    return _digest("name", "|".join((_normalised(first_name), _normalised(last_name), postcode.strip())))


def suppression_keys(
    *, directory_ids: set[str], first_name: str, last_name: str, postcode: str
) -> frozenset[str]:
    """Every key an erased therapist is remembered by: each directory id they were listed under,
    and their name at their postcode."""
    keys = {directory_key(directory_id) for directory_id in directory_ids if directory_id.strip()}
    keys.add(name_key(first_name, last_name, postcode))
    return frozenset(keys)


def is_suppressed(
    suppressed: frozenset[str] | set[str],
    *,
    directory_id: str,
    first_name: str,
    last_name: str,
    postcode: str,
) -> bool:
    """Whether a directory entry describes an erased therapist (either key matches)."""
    return (
        directory_key(directory_id) in suppressed or name_key(first_name, last_name, postcode) in suppressed
    )


class TherapistErasure(BaseModel):
    """What the therapist service keeps of an erased therapist: no personal data in clear."""

    model_config = ConfigDict(frozen=True)

    therapist_id: uuid.UUID
    suppression_keys: frozenset[str] = Field(min_length=1)
    erased_at: datetime


class ErasureResult(BaseModel):
    """The answer of an erase: whether this call erased (False: erased before, nothing done)."""

    model_config = ConfigDict(frozen=True)

    therapist_id: uuid.UUID
    erased_now: bool
    erased_at: datetime
