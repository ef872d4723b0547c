"""Entity tags and conditional requests (RFC 9110 section 13).

- `entity_tag`: a strong ETag, the hash of a representation's JSON; reads answer it, writes
  compare it.
- `If-None-Match` (reads): `not_modified` uses the weak comparison, so the client's cached copy
  answers 304.
- `If-Match` (writes): `check_version` compares strongly inside the write's transaction, after
  the record is locked, so two staff members editing one record cannot silently overwrite each
  other: the second write names a tag that is no longer current and gets 412.
  `require_if_match` refuses a write without one (428): optional preconditions would protect
  only the clients that remember to send them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pydantic import BaseModel

from therapy_platform.platform.errors import PreconditionFailedError, PreconditionRequiredError

WEAK_PREFIX = "W/"


def strong_tag(content: str | bytes) -> str:
    data = content.encode("utf-8") if isinstance(content, str) else content
    return f'"{hashlib.sha256(data).hexdigest()[:32]}"'


def entity_tag(record: BaseModel, *, include: Iterable[str] | None = None) -> str:
    """The strong ETag of a record: the hash of its JSON (only the `include`d fields when given:
    a representation with fields that change by themselves, like days waited, is tagged by the
    others)."""
    fields = set(include) if include is not None else None
    return strong_tag(record.model_dump_json(include=fields))


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def not_modified(if_none_match: str | None, current: str) -> bool:
    """True when the client's copy is current (weak comparison: W/"x" matches "x")."""
    if not if_none_match:
        return False
    tags = _tags(if_none_match)
    return "*" in tags or current.removeprefix(WEAK_PREFIX) in {tag.removeprefix(WEAK_PREFIX) for tag in tags}


def matches(if_match: str, current: str) -> bool:
    """Strong comparison (If-Match): a weak tag never matches."""
    tags = _tags(if_match)
    return "*" in tags or current in [tag for tag in tags if not tag.startswith(WEAK_PREFIX)]


def require_if_match(if_match: str | None, *, what: str) -> str:
    """The `If-Match` value of a write, or 428 naming how to get one."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequiredError(
            f"send If-Match with the ETag of the {what} you edit (GET it first); "
            "this keeps two people from overwriting each other's changes",
            details={"header": "If-Match"},
        )
    return if_match


def check_version(if_match: str | None, current: str, *, what: str) -> None:
    """Inside the write's transaction, with the record locked: 412 unless `if_match` names the
    current tag. None: an internal caller (bulk load, events) that writes unconditionally."""
    if if_match is not None and not matches(if_match, current):
        raise PreconditionFailedError(
            f"the {what} was changed since you read it; GET it again and reapply your change",
            details={"header": "If-Match"},
        )
