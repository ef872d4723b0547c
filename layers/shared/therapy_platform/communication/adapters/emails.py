"""PostgreSQL repositories of emails and their delivery attempts (schema `communication_service`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Final

from sqlalchemy import Connection, RowMapping, TextClause, and_, or_, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert

from therapy_platform.communication.adapters.tables import delivery_attempts, emails
from therapy_platform.communication.domain.emails import DELIVERABLE_FROM, Email, EmailStatus
from therapy_platform.communication.ports import AttemptOutcome, StartedAttempt

# What changes after an email is stored: its delivery state. Content and addressing are fixed
# when it is queued, so updates never rewrite the (large) bodies.
_DELIVERY_STATE: Final = frozenset(
    {
        "status",
        "attempts",
        "max_attempts",
        "interrupted_attempts",
        "last_error",
        "provider_message_id",
        "claim_token",
        "lease_until",
        "next_attempt_at",
        "queued_at",
        "sent_at",
        "failed_at",
        "updated_at",
    }
)


# What a successful send changes (Email.delivered); the attempt counts stay as stored.
_DELIVERED: Final = frozenset(
    {"status", "sent_at", "provider_message_id", "last_error", "claim_token", "lease_until", "updated_at"}
)


def _to_row(email: Email, *, include: set[str] | None = None) -> dict[str, Any]:
    # Enum members as their plain values: the driver binds str, not str subclasses.
    return {
        key: value.value if isinstance(value, Enum) else value
        for key, value in email.model_dump(include=include).items()
    }


def _from_row(row: RowMapping) -> Email:
    return Email.model_validate({key: value for key, value in row.items() if key != "last_enqueued_at"})


class SqlEmailRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, email: Email) -> bool:
        statement = insert(emails).values(**_to_row(email))
        if email.idempotency_key is not None:
            statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
        return self._connection.execute(statement).rowcount == 1

    def _one(self, *conditions: Any, lock: bool = False) -> Email | None:
        query = select(emails).where(*conditions)
        if lock:
            query = query.with_for_update()
        row = self._connection.execute(query).mappings().first()
        return _from_row(row) if row else None

    def get(self, email_id: uuid.UUID) -> Email | None:
        return self._one(emails.c.id == email_id)

    def get_for_update(self, email_id: uuid.UUID) -> Email | None:
        return self._one(emails.c.id == email_id, lock=True)

    def find_by_idempotency_key(self, key: str) -> Email | None:
        return self._one(emails.c.idempotency_key == key)

    def get_many_for_update(self, email_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Email]:
        if not email_ids:
            return {}
        query = (
            select(emails)
            .where(emails.c.id.in_(list(email_ids)))
            .order_by(emails.c.id)  # one lock order for every sender: no deadlock
            .with_for_update()
        )
        found = (_from_row(row) for row in self._connection.execute(query).mappings())
        return {email.id: email for email in found}

    def update(self, email: Email) -> None:
        values = _to_row(email, include=set(_DELIVERY_STATE))
        self._connection.execute(update(emails).where(emails.c.id == email.id).values(**values))

    def update_many(self, many: Sequence[Email]) -> None:
        """One statement for the whole batch: the delivery states travel as one JSON array,
        unpacked by `jsonb_to_recordset` with each column's own type."""
        if not many:
            return
        rows = [{"id": str(email.id), **_to_row(email, include=set(_DELIVERY_STATE))} for email in many]
        self._connection.execute(_UPDATE_MANY, {"rows": json.dumps(rows, default=_json_value)})

    def store_delivered(self, sent: Email, claim_token: uuid.UUID) -> Email | None:
        finished = (
            update(delivery_attempts)
            .where(delivery_attempts.c.claim_token == claim_token)
            .values(finished_at=sent.updated_at, outcome="sent", error=None)
            .cte("finished")
        )
        values = _to_row(sent, include=set(_DELIVERED))
        row = self._connection.execute(
            update(emails)
            .add_cte(finished)
            .where(emails.c.id == sent.id, emails.c.status.in_([status.value for status in DELIVERABLE_FROM]))
            .values(**values)
            .returning(emails.c.attempts, emails.c.interrupted_attempts)
        ).first()
        if row is None:
            return None
        return sent.model_copy(
            update={"attempts": row.attempts, "interrupted_attempts": row.interrupted_attempts}
        )

    def mark_enqueued(self, email_ids: Sequence[uuid.UUID], at: datetime) -> None:
        if email_ids:
            self._connection.execute(
                update(emails).where(emails.c.id.in_(list(email_ids))).values(last_enqueued_at=at)
            )

    def due_for_requeue(self, *, now: datetime, offered_before: datetime, limit: int) -> list[uuid.UUID]:
        c = emails.c
        due = or_(
            and_(
                c.status == EmailStatus.QUEUED.value,
                or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now),
            ),
            and_(c.status == EmailStatus.SENDING.value, c.lease_until <= now),
        )
        not_offered_lately = or_(c.last_enqueued_at.is_(None), c.last_enqueued_at < offered_before)
        rows = self._connection.execute(
            select(c.id).where(due, not_offered_lately).order_by(c.created_at, c.id).limit(limit)
        )
        return [row.id for row in rows]


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


_DIALECT: Final = postgresql.dialect()  # type: ignore[no-untyped-call]


def _update_many_statement() -> TextClause:
    columns = sorted(_DELIVERY_STATE)
    record = ", ".join(
        ["id uuid"] + [f"{name} {emails.c[name].type.compile(dialect=_DIALECT)}" for name in columns]
    )
    assignments = ", ".join(f"{name} = v.{name}" for name in columns)
    return text(
        f"UPDATE {emails.fullname} AS e SET {assignments}"
        f" FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v({record}) WHERE e.id = v.id"
    )


_UPDATE_MANY: Final = _update_many_statement()


class SqlDeliveryAttemptLog:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def started(self, email_id: uuid.UUID, attempt: int, claim_token: uuid.UUID, at: datetime) -> None:
        self._connection.execute(
            delivery_attempts.insert().values(
                email_id=email_id, attempt=attempt, claim_token=claim_token, started_at=at
            )
        )

    def started_many(self, attempts: Sequence[StartedAttempt]) -> None:
        if attempts:
            self._connection.execute(
                delivery_attempts.insert().values(
                    [
                        {
                            "email_id": attempt.email_id,
                            "attempt": attempt.attempt,
                            "claim_token": attempt.claim_token,
                            "started_at": attempt.at,
                        }
                        for attempt in attempts
                    ]
                )
            )

    def finished(
        self, claim_token: uuid.UUID, outcome: AttemptOutcome, at: datetime, error: str | None = None
    ) -> None:
        self._connection.execute(
            update(delivery_attempts)
            .where(delivery_attempts.c.claim_token == claim_token)
            .values(finished_at=at, outcome=outcome, error=error)
        )
