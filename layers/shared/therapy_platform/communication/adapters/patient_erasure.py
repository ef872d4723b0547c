"""Erasing one patient from the communication service's own tables and stored mails
(port `PatientErasure`, `StoredMail`; what and why: domain/patient_erasure.py).

`SqlPatientErasure` works inside the event's unit of work (one transaction with the eventId
claim), so a redelivered `patient.deleted` finds nothing left to change. Rows are found by a
PostgreSQL regular-expression prefilter (`ErasureTerms.sql_pattern`), then scrubbed in Python
with the same rules as every other service (`contracts/erasure.scrub`).

Stored mails: `S3StoredMail` (the reply bucket's `processed/` prefix), `MaildirStoredMail`
(the local Maildir's `cur/`), `InMemoryStoredMail` (tests).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Column, Connection, String, Table, and_, cast, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB

from therapy_platform.communication.adapters.follow_up import ERASED_RECIPIENT
from therapy_platform.communication.adapters.tables import (
    COMMUNICATION_SCHEMA,
    audit_log,
    delivery_attempts,
    emails,
    inbound_replies,
    phone_call_tasks,
    reply_reviews,
    sent_bundles,
)
from therapy_platform.communication.domain.patient_erasure import (
    CANCELLED_FOR_ERASURE,
    ErasureReport,
    HeldValues,
    search_ids_of,
)
from therapy_platform.contracts.erasure import REDACTED, ErasureTerms, scrub, scrub_text
from therapy_platform.platform.idempotency import redact_stored_answers
from therapy_platform.platform.tables import outbox_table

_outbox = outbox_table(COMMUNICATION_SCHEMA)

# Every table and column that can hold a patient's value in free text or JSON.
SCRUBBED: Final[tuple[tuple[Table, tuple[str, ...]], ...]] = (
    (emails, ("recipient_name", "subject", "html", "text", "last_error")),
    (delivery_attempts, ("error",)),
    (inbound_replies, ("from_address", "subject", "text", "html", "references", "in_reply_to")),
    (reply_reviews, ("from_address", "subject", "text", "reasons", "verdicts")),
    (phone_call_tasks, ("outcome_notes",)),
    (audit_log, ("detail",)),
    (sent_bundles, ("members",)),
    (_outbox, ("envelope", "last_error")),
)


def _is_json(column: Column[Any]) -> bool:
    return isinstance(column.type, JSONB)


def _fit(value: Any, column: Column[Any]) -> Any:
    length = getattr(column.type, "length", None)
    return value[:length] if isinstance(value, str) and length else value


class SqlPatientErasure:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def held_values(self, patient_id: uuid.UUID) -> HeldValues:
        c = emails.c
        rows = self._connection.execute(
            select(c.recipient, c.recipient_name).where(
                c.recipient_type == "patient", c.recipient_id == patient_id
            )
        ).all()
        keys = self._connection.execute(
            select(c.idempotency_key).where(c.recipient_type == "patient", c.recipient_id == patient_id)
        ).scalars()
        search_ids = search_ids_of(keys)
        references = sorted(
            {
                str(member["reference"])
                for members in self._members_of(search_ids)
                for member in members
                if str(member.get("search_id")) in {str(i) for i in search_ids}
            }
        )
        addresses = tuple(sorted({row.recipient for row in rows if row.recipient != ERASED_RECIPIENT}))
        names = tuple(sorted({row.recipient_name for row in rows if row.recipient_name}))
        # The contact read model (owned by the event-minimisation work, which may remove it):
        # one separate statement, read only while the table exists; nothing else depends on it.
        contacts = f"{COMMUNICATION_SCHEMA}.patient_contacts"
        exists = self._connection.execute(text("SELECT to_regclass(:name)"), {"name": contacts}).scalar()
        contact = (
            self._connection.execute(
                text(f"SELECT data FROM {contacts} WHERE id = :id"), {"id": patient_id}
            ).scalar_one_or_none()
            if exists
            else None
        )
        return HeldValues(
            addresses=addresses,
            names=names,
            contact=contact,
            search_ids=search_ids,
            member_references=tuple(references),
        )

    def _members_of(self, search_ids: Iterable[uuid.UUID]) -> list[list[dict[str, Any]]]:
        ids = [str(i) for i in search_ids]
        if not ids:
            return []
        b = sent_bundles.c
        found = self._connection.execute(
            select(b.members).where(or_(*[b.members.contains([{"search_id": i}]) for i in ids]))
        ).scalars()
        return [list(members) for members in found]

    def forget_members(self, search_ids: Iterable[uuid.UUID], *, at: datetime) -> int:
        """Remove the patient's member entries (their summaries) from the tracked bundles. Only
        finished searches are erased, so each entry is withdrawn or in a closed bundle."""
        ids = [str(i) for i in search_ids]
        if not ids:
            return 0
        b = sent_bundles.c
        rows = self._connection.execute(
            select(b.id, b.members).where(or_(*[b.members.contains([{"search_id": i}]) for i in ids]))
        ).all()
        for row in rows:
            kept = [member for member in row.members if str(member.get("search_id")) not in ids]
            self._connection.execute(
                update(sent_bundles).where(b.id == row.id).values(members=kept, updated_at=at)
            )
        return len(rows)

    def erase(
        self,
        patient_id: uuid.UUID,
        terms: ErasureTerms,
        *,
        at: datetime,
        search_ids: Sequence[uuid.UUID] = (),
    ) -> ErasureReport:
        c = emails.c
        members = self.forget_members(search_ids, at=at)
        to_patient = and_(c.recipient_type == "patient", c.recipient_id == patient_id)
        cancelled = self._connection.execute(
            update(emails)
            .where(to_patient, c.status.in_(["draft", "queued", "sending"]))
            .values(
                status="failed",
                failed_at=at,
                claim_token=None,
                lease_until=None,
                next_attempt_at=None,
                last_error=CANCELLED_FOR_ERASURE,
                updated_at=at,
            )
        ).rowcount
        redacted = self._connection.execute(
            update(emails)
            .where(to_patient, or_(c.recipient != ERASED_RECIPIENT, c.html != "", c.text != ""))
            .values(
                recipient=ERASED_RECIPIENT,
                recipient_name=None,
                subject=REDACTED,
                html="",
                text="",
                updated_at=at,
            )
        ).rowcount
        # Staff alerts about the patient (unknown location: postcode and city with the id).
        alerts = self._connection.execute(
            update(emails)
            .where(c.idempotency_key == f"unknown-location:patient:{patient_id}", c.text != "")
            .values(subject=REDACTED, html="", text="", updated_at=at)
        ).rowcount
        scrubbed = sum(self._scrub(table, columns, terms) for table, columns in SCRUBBED) if terms else 0
        scrubbed += int(alerts) + members
        needles = [str(patient_id), *map(str, search_ids)]
        scrubbed += redact_stored_answers(self._connection, COMMUNICATION_SCHEMA, needles)
        return ErasureReport(
            emails_cancelled=int(cancelled), emails_redacted=int(redacted), rows_scrubbed=scrubbed
        )

    def _scrub(self, table: Table, names: tuple[str, ...], terms: ErasureTerms) -> int:
        pattern = terms.sql_pattern
        assert pattern is not None
        columns = [table.c[name] for name in names]
        key = next(iter(table.primary_key.columns))
        found = self._connection.execute(
            select(key, *columns).where(
                or_(*[(cast(col, String) if _is_json(col) else col).op("~*")(pattern) for col in columns])
            )
        ).mappings()
        changed = 0
        for row in list(found):
            values = {
                col.name: _fit(
                    scrub(row[col.name], terms) if _is_json(col) else scrub_text(row[col.name], terms), col
                )
                for col in columns
                if row[col.name] is not None
            }
            values = {name: value for name, value in values.items() if value != row[name]}
            if values:
                self._connection.execute(update(table).where(key == row[key.name]).values(**values))
                changed += 1
        return changed


def count_mentions(connection: Connection, terms: ErasureTerms) -> int:
    """How many rows of the scrubbed tables still mention the terms (tests, checks)."""
    pattern = terms.sql_pattern
    if pattern is None:
        return 0
    total = 0
    for table, names in SCRUBBED:
        columns = [table.c[name] for name in names]
        condition = or_(*[(cast(col, String) if _is_json(col) else col).op("~*")(pattern) for col in columns])
        total += int(
            connection.execute(select(func.count()).select_from(table).where(condition)).scalar_one()
        )
    return total


# --------------------------------------------------------------------------- stored mails


class S3StoredMail:
    """The raw replies under the reply bucket's processed prefix."""

    def __init__(self, client: Any, bucket: str, *, prefix: str = "processed/") -> None:
        self._client, self.bucket, self.prefix = client, bucket, prefix

    def keys(self) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):
                    yield item["Key"]

    def read(self, key: str) -> bytes | None:
        try:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self._client.exceptions.NoSuchKey:
            return None
        return body

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=key)


class MaildirStoredMail:
    """The local Maildir's taken-in messages (`cur/`; reply intake moves them there)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path) / "cur"

    def keys(self) -> Iterator[str]:
        if self.path.is_dir():
            yield from sorted(name for name in os.listdir(self.path) if not name.startswith("."))

    def read(self, key: str) -> bytes | None:
        try:
            return (self.path / key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        (self.path / key).unlink(missing_ok=True)


@dataclass
class InMemoryStoredMail:
    messages: dict[str, bytes] = field(default_factory=dict)

    def keys(self) -> Iterable[str]:
        return sorted(self.messages)

    def read(self, key: str) -> bytes | None:
        return self.messages.get(key)

    def delete(self, key: str) -> None:
        self.messages.pop(key, None)
