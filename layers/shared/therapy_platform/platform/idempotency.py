"""Idempotency keys for POSTs that create (`Idempotency-Key` header): a client that retries a
request it never saw answered gets the first answer again instead of a second record.

- Keys are scoped per route and per acting user: two staff members may pick the same key.
- The same key with the same request (path, query and JSON body, compared canonically) answers
  the stored first answer (status, body, Location); with another request it is 409
  `idempotency_key_reused`; while the first request still runs, 409 `idempotency_key_in_use`.
- A key is claimed before the route runs (one row per key: the primary key serialises
  concurrent first requests), completed with the answer when the route succeeded (2xx) and
  released when it failed, so a corrected retry may reuse it.
- Keys expire after `KEY_TTL` (24 h): an expired key is as good as new, and expired rows are
  deleted whenever a key is claimed (retention). A claim left unanswered for `CLAIM_LEASE`
  (a crashed function) is abandoned and may be claimed again.

Each service keeps its keys in its own schema (`<schema>.idempotency_keys`, migration 0014);
the shared resolver applies them (`platform/rest/resolver.py`, routes declaring the header).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Final, Protocol

from pydantic import StringConstraints
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from therapy_platform.platform.tables import idempotency_keys_table

KEY_TTL: Final = timedelta(hours=24)
# Longer than any API request may run (API Gateway gives up after 29 s).
CLAIM_LEASE: Final = timedelta(minutes=5)
HEADER: Final = "Idempotency-Key"
KEY_PATTERN: Final = r"^[A-Za-z0-9._:-]{1,100}$"
IdempotencyKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
KEY_DESCRIPTION: Final = (
    "Retry-safe creation: the same key with the same request answers the first answer again "
    "(for 24 hours); with a different request 409 idempotency_key_reused. Letters, digits and "
    ". _ : -, up to 100 characters (a UUID is a good key)."
)


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: str  # the JSON text answered
    location: str | None = None


@dataclass(frozen=True)
class KeyRecord:
    request_hash: str
    answer: StoredAnswer | None  # None: the first request is still running


@dataclass(frozen=True)
class KeyScope:
    route: str  # "POST /api/v2/patients"
    actor: str
    key: str


class IdempotencyStore(Protocol):
    def claim(self, scope: KeyScope, request_hash: str, *, now: datetime) -> KeyRecord | None:
        """None: the key was free (or expired) and is now claimed by this request. Otherwise the
        record the key already has."""
        ...

    def complete(self, scope: KeyScope, answer: StoredAnswer) -> None: ...

    def release(self, scope: KeyScope) -> None:
        """Forget a claim whose request failed."""
        ...


def request_fingerprint(path: str, query: Mapping[str, Sequence[str]], body: str | None) -> str:
    """The hash two requests share when they ask for the same thing: the concrete path, the
    query parameters and the JSON body compared canonically (key order and spacing ignored)."""
    try:
        parsed: Any = json.loads(body) if body else None
    except ValueError:
        parsed = body  # the resolver refuses it anyway; compare the raw text
    canonical = json.dumps(
        {
            "path": path,
            "query": {name: list(values) for name, values in sorted(query.items())},
            "body": parsed,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _usable(created_at: datetime, answered: bool, now: datetime) -> bool:
    return created_at > now - KEY_TTL and (answered or created_at > now - CLAIM_LEASE)


class SqlIdempotencyStore:
    """The keys of one service schema; each call is its own short transaction, outside the
    route's unit of work (the claim must be visible to a concurrent retry at once)."""

    def __init__(self, engine: Callable[[], Engine], schema: str) -> None:
        self._engine = engine
        self._table = idempotency_keys_table(schema)

    def _where(self, scope: KeyScope) -> Any:
        table = self._table
        return and_(table.c.route == scope.route, table.c.actor == scope.actor, table.c.key == scope.key)

    def claim(self, scope: KeyScope, request_hash: str, *, now: datetime) -> KeyRecord | None:
        table = self._table
        with self._engine().begin() as connection:
            # Retention: expired keys and abandoned claims go (index on created_at).
            connection.execute(
                delete(table).where(
                    or_(
                        table.c.created_at <= now - KEY_TTL,
                        and_(table.c.status_code.is_(None), table.c.created_at <= now - CLAIM_LEASE),
                    )
                )
            )
            claimed = connection.execute(
                pg_insert(table)
                .values(
                    route=scope.route,
                    actor=scope.actor,
                    key=scope.key,
                    request_hash=request_hash,
                    created_at=now,
                )
                .on_conflict_do_nothing()
                .returning(table.c.key)
            ).first()
            if claimed is not None:
                return None
            row = connection.execute(select(table).where(self._where(scope))).mappings().first()
        if row is None:  # deleted between the two statements: treat as in use, the client retries
            return KeyRecord(request_hash=request_hash, answer=None)
        answer = (
            StoredAnswer(int(row["status_code"]), str(row["body"]), row["location"])
            if row["status_code"] is not None
            else None
        )
        return KeyRecord(request_hash=str(row["request_hash"]), answer=answer)

    def complete(self, scope: KeyScope, answer: StoredAnswer) -> None:
        with self._engine().begin() as connection:
            connection.execute(
                update(self._table)
                .where(self._where(scope))
                .values(status_code=answer.status, body=answer.body, location=answer.location)
            )

    def release(self, scope: KeyScope) -> None:
        with self._engine().begin() as connection:
            connection.execute(delete(self._table).where(self._where(scope)))


@dataclass
class _Row:
    request_hash: str
    created_at: datetime
    answer: StoredAnswer | None = None


class InMemoryIdempotencyStore:
    """The same rules in memory, for unit tests of the routes."""

    def __init__(self) -> None:
        self.rows: dict[KeyScope, _Row] = {}

    def claim(self, scope: KeyScope, request_hash: str, *, now: datetime) -> KeyRecord | None:
        self.rows = {
            kept: row
            for kept, row in self.rows.items()
            if _usable(row.created_at, row.answer is not None, now)
        }
        row = self.rows.get(scope)
        if row is None:
            self.rows[scope] = _Row(request_hash, now)
            return None
        return KeyRecord(row.request_hash, row.answer)

    def complete(self, scope: KeyScope, answer: StoredAnswer) -> None:
        self.rows[scope] = replace(self.rows[scope], answer=answer)

    def release(self, scope: KeyScope) -> None:
        self.rows.pop(scope, None)


__all__ = [
    "CLAIM_LEASE",
    "HEADER",
    "KEY_TTL",
    "IdempotencyKey",
    "IdempotencyStore",
    "InMemoryIdempotencyStore",
    "KeyRecord",
    "KeyScope",
    "SqlIdempotencyStore",
    "StoredAnswer",
    "request_fingerprint",
]


# --------------------------------------------------------------------------- erasure (perasure)

ERASED_ANSWER: Final = '{"erased": true}'


def redact_stored_answers(connection: Connection, schema: str, needles: Sequence[str]) -> int:
    """A person's erasure (GDPR Art. 17): the stored answers that mention one of `needles` (the
    person's ids) lose their body, which may hold the person's data. The key stays answered, so
    a retry within the key's 24 hours still does not run the request again (it gets the status,
    the Location and `ERASED_ANSWER`). Returns how many answers were redacted."""
    if not needles:
        return 0
    table = idempotency_keys_table(schema)
    mentioned = or_(
        *[table.c.body.contains(needle, autoescape=True) for needle in needles],
        *[table.c.location.contains(needle, autoescape=True) for needle in needles],
    )
    result = connection.execute(
        update(table).where(mentioned, table.c.body != ERASED_ANSWER).values(body=ERASED_ANSWER)
    )
    return int(result.rowcount)
