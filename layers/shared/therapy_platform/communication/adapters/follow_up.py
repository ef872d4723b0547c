"""PostgreSQL repositories of the communication service's follow-up work (schema
`communication_service`): tracked bundles, phone-call tasks, contacts, replies, the email
history and the audit log."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Select,
    and_,
    func,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from therapy_platform.communication.adapters.tables import (
    audit_log,
    delivery_attempts,
    email_history,
    emails,
    inbound_replies,
    phone_call_tasks,
    reply_reviews,
    sent_bundles,
)
from therapy_platform.communication.domain.emails import RecipientType
from therapy_platform.communication.domain.phone_calls import (
    SLOT,
    PhoneCallQuery,
    PhoneCallStatus,
    PhoneCallTask,
)
from therapy_platform.communication.domain.replies import AnsweredEmail, InboundReply, ReviewedReply
from therapy_platform.communication.domain.staff_emails import (
    DeliveryAttemptView,
    EmailDetail,
    EmailQuery,
    EmailSummary,
)
from therapy_platform.communication.domain.tracking import (
    EmailHistoryItem,
    TrackedBundle,
)

# pg_advisory_xact_lock key of slot planning (any fixed number no other lock uses).
SLOT_PLANNING_LOCK: Final = zlib.crc32(b"communication_service.phone_call_slots")
ERASED_RECIPIENT: Final = "geloescht@invalid"


def _page_and_total(
    connection: Connection, query: Select[Any], where: ColumnElement[bool], limit: int
) -> tuple[list[RowMapping], int]:
    """The first `limit` rows of an ordered query, and how many rows match `where` in all."""
    table = query.get_final_froms()[0]
    total = connection.execute(select(func.count()).select_from(table).where(where)).scalar_one()
    rows = list(connection.execute(query.where(where).limit(limit)).mappings()) if total else []
    return rows, int(total)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    # The driver binds str, not str subclasses (enum members).
    return {key: value.value if isinstance(value, Enum) else value for key, value in values.items()}


def _bundle_from_row(row: RowMapping) -> TrackedBundle:
    return TrackedBundle.model_validate(dict(row))


class SqlTrackedBundles:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def _one(self, *conditions: Any, for_update: bool = False) -> TrackedBundle | None:
        query = select(sent_bundles).where(*conditions)
        if for_update:
            query = query.with_for_update()
        row = self._connection.execute(query).mappings().first()
        return _bundle_from_row(row) if row else None

    def get(self, bundle_id: uuid.UUID, *, for_update: bool = False) -> TrackedBundle | None:
        return self._one(sent_bundles.c.id == bundle_id, for_update=for_update)

    def by_reference(self, reference: str) -> TrackedBundle | None:
        return self._one(sent_bundles.c.reference == reference)

    def save(self, bundle: TrackedBundle) -> None:
        values = _plain(bundle.model_dump(mode="json"))
        # JSON mode turns datetimes and UUIDs into strings; the columns want them typed.
        values.update(
            {
                key: getattr(bundle, key)
                for key in (
                    "id",
                    "therapist_id",
                    "sent_at",
                    "answered_at",
                    "expired_at",
                    "reminder_sent_at",
                    "created_at",
                    "updated_at",
                )
            }
        )
        statement = insert(sent_bundles).values(**values)
        changing = {key: statement.excluded[key] for key in values if key not in ("id", "created_at")}
        self._connection.execute(statement.on_conflict_do_update(index_elements=["id"], set_=changing))

    def due_for_reminder(self, *, sent_before: datetime, limit: int) -> list[uuid.UUID]:
        c = sent_bundles.c
        rows = self._connection.execute(
            select(c.id)
            .where(
                c.sent_at.is_not(None),
                c.sent_at <= sent_before,
                c.answered_at.is_(None),
                c.expired_at.is_(None),
                c.reminder_sent_at.is_(None),
            )
            .order_by(c.sent_at, c.id)
            .limit(limit)
        )
        return [row.id for row in rows]

    def with_member(self, therapist_id: uuid.UUID, search_id: uuid.UUID) -> TrackedBundle | None:
        c = sent_bundles.c
        row = (
            self._connection.execute(
                select(sent_bundles)
                .where(
                    c.therapist_id == therapist_id,
                    c.members.contains([{"search_id": str(search_id)}]),
                )
                .order_by(c.sent_at.desc().nulls_last())
                .limit(1)
            )
            .mappings()
            .first()
        )
        return _bundle_from_row(row) if row else None

    def latest_to(self, therapist_id: uuid.UUID) -> TrackedBundle | None:
        c = sent_bundles.c
        row = (
            self._connection.execute(
                select(sent_bundles)
                .where(c.therapist_id == therapist_id, c.therapist.is_not(None))
                .order_by(c.sent_at.desc().nulls_last())
                .limit(1)
            )
            .mappings()
            .first()
        )
        return _bundle_from_row(row) if row else None


def _task_from_row(row: RowMapping) -> PhoneCallTask:
    values = dict(row)
    values["slot_end"] = values["slot_start"] + SLOT
    return PhoneCallTask.model_validate(values)


class SqlPhoneCalls:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def lock_schedule(self) -> None:
        self._connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SLOT_PLANNING_LOCK})

    def taken_slots(self, start: datetime, end: datetime) -> set[datetime]:
        c = phone_call_tasks.c
        rows = self._connection.execute(
            select(c.slot_start).where(
                c.status == PhoneCallStatus.SCHEDULED.value, c.slot_start >= start, c.slot_start < end
            )
        )
        return {row.slot_start for row in rows}

    def add(self, task: PhoneCallTask) -> bool:
        values = _plain(task.model_dump(exclude={"slot_end"}))
        values["idempotency_key"] = task.idempotency_key
        statement = insert(phone_call_tasks).values(**values)
        if task.idempotency_key is not None:
            statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
        return self._connection.execute(statement).rowcount == 1

    def _one(self, *conditions: Any, for_update: bool = False) -> PhoneCallTask | None:
        query = select(phone_call_tasks).where(*conditions)
        if for_update:
            query = query.with_for_update()
        row = self._connection.execute(query).mappings().first()
        return _task_from_row(row) if row else None

    def find_by_idempotency_key(self, key: str) -> PhoneCallTask | None:
        return self._one(phone_call_tasks.c.idempotency_key == key)

    def get(self, task_id: uuid.UUID, *, for_update: bool = False) -> PhoneCallTask | None:
        return self._one(phone_call_tasks.c.id == task_id, for_update=for_update)

    def update(self, task: PhoneCallTask) -> None:
        values = _plain(
            task.model_dump(
                include={"status", "outcome", "outcome_notes", "completed_at", "completed_by", "updated_at"}
            )
        )
        self._connection.execute(
            update(phone_call_tasks).where(phone_call_tasks.c.id == task.id).values(**values)
        )

    def cancel_scheduled_for_bundle(self, bundle_id: uuid.UUID, at: datetime) -> list[uuid.UUID]:
        c = phone_call_tasks.c
        rows = self._connection.execute(
            update(phone_call_tasks)
            .where(c.bundle_id == bundle_id, c.status == PhoneCallStatus.SCHEDULED.value)
            .values(status=PhoneCallStatus.CANCELLED.value, updated_at=at)
            .returning(c.id)
        )
        return [row.id for row in rows]

    def find(self, query: PhoneCallQuery) -> tuple[list[PhoneCallTask], int]:
        c = phone_call_tasks.c
        conditions: list[Any] = []
        if query.status is not None:
            conditions.append(c.status == query.status.value)
        bounds = query.day_bounds()
        if bounds is not None:
            conditions += [c.slot_start >= bounds[0], c.slot_start < bounds[1]]
        if query.therapist_id is not None:
            conditions.append(c.therapist_id == query.therapist_id)
        if query.bundle_reference is not None:
            conditions.append(c.bundle_reference == query.bundle_reference)
        where = and_(true(), *conditions)
        total = self._connection.execute(
            select(func.count()).select_from(phone_call_tasks).where(where)
        ).scalar_one()
        rows = self._connection.execute(
            select(phone_call_tasks)
            .where(where)
            .order_by(c.slot_start, c.id)
            .offset(query.offset)
            .limit(query.limit)
        ).mappings()
        return [_task_from_row(row) for row in rows], int(total)

    def for_bundle(self, reference: str, limit: int) -> list[PhoneCallTask]:
        c = phone_call_tasks.c
        rows = self._connection.execute(
            select(phone_call_tasks)
            .where(c.bundle_reference == reference)
            .order_by(c.created_at.desc(), c.id)
            .limit(limit)
        ).mappings()
        return [_task_from_row(row) for row in rows]

    def for_therapist(self, therapist_id: uuid.UUID, limit: int) -> tuple[list[PhoneCallTask], int]:
        c = phone_call_tasks.c
        rows, total = _page_and_total(
            self._connection,
            select(phone_call_tasks).order_by(c.created_at.desc(), c.id.desc()),
            c.therapist_id == therapist_id,
            limit,
        )
        return [_task_from_row(row) for row in rows], total


class SqlReplies:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, reply: InboundReply) -> bool:
        statement = (
            insert(inbound_replies)
            .values(**reply.model_dump(), processed_at=func.now())
            .on_conflict_do_nothing(index_elements=["message_id"])
        )
        return self._connection.execute(statement).rowcount == 1

    def for_bundle(self, reference: str, limit: int) -> list[InboundReply]:
        c = inbound_replies.c
        rows = self._connection.execute(
            select(inbound_replies)
            .where(c.bundle_reference == reference)
            .order_by(c.received_at.desc(), c.id)
            .limit(limit)
        ).mappings()
        return [_reply_from_row(row) for row in rows]

    def for_person(
        self, recipient_type: RecipientType, person_id: uuid.UUID, limit: int
    ) -> tuple[list[InboundReply], int]:
        c = inbound_replies.c
        to_them = select(emails.c.id).where(
            emails.c.recipient_type == recipient_type.value, emails.c.recipient_id == person_id
        )
        where: ColumnElement[bool] = c.email_id.in_(to_them)
        if recipient_type is RecipientType.THERAPIST:
            their_bundles = select(sent_bundles.c.reference).where(sent_bundles.c.therapist_id == person_id)
            where = or_(where, c.bundle_reference.in_(their_bundles))
        rows, total = _page_and_total(
            self._connection,
            select(inbound_replies).order_by(c.received_at.desc(), c.id.desc()),
            where,
            limit,
        )
        return [_reply_from_row(row) for row in rows], total

    def review(self, item: ReviewedReply) -> bool:
        values = _plain(item.model_dump())
        values["reasons"] = [reason.value for reason in item.reasons]
        statement = (
            insert(reply_reviews)
            .values(**values, created_at=func.now())
            .on_conflict_do_nothing(index_elements=["inbox_key"])
        )
        return self._connection.execute(statement).rowcount == 1

    def reviews(self, *, page: int, limit: int) -> tuple[list[ReviewedReply], int]:
        c = reply_reviews.c
        total = self._connection.execute(select(func.count()).select_from(reply_reviews)).scalar_one()
        rows = self._connection.execute(
            select(reply_reviews)
            .order_by(c.received_at.desc(), c.id.desc())
            .offset((page - 1) * limit)
            .limit(limit)
        ).mappings()
        items = [
            ReviewedReply.model_validate({k: v for k, v in row.items() if k != "created_at"}) for row in rows
        ]
        return items, int(total)


def _reply_from_row(row: RowMapping) -> InboundReply:
    return InboundReply.model_validate({k: v for k, v in row.items() if k != "processed_at"})


# What a history shows of an email (no bodies): EmailHistoryItem's fields.
_HISTORY_COLUMNS = (
    email_history.c.id,
    email_history.c.created_at.label("at"),
    email_history.c.kind,
    email_history.c.status,
    email_history.c.recipient_type,
    email_history.c.recipient,
    email_history.c.subject,
    email_history.c.attempts,
    email_history.c.sent_at,
    email_history.c.failed_at,
    email_history.c.last_error,
)


class SqlEmailHistory:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def for_bundle(self, reference: str, limit: int) -> list[EmailHistoryItem]:
        c = email_history.c
        rows = self._connection.execute(
            select(*_HISTORY_COLUMNS)
            .where(c.bundle_reference == reference)
            .order_by(c.created_at.desc(), c.id)
            .limit(limit)
        ).mappings()
        return [EmailHistoryItem.model_validate(dict(row)) for row in rows]

    def for_person(
        self, recipient_type: RecipientType, person_id: uuid.UUID, limit: int
    ) -> tuple[list[EmailHistoryItem], int]:
        c = email_history.c
        rows, total = _page_and_total(
            self._connection,
            select(*_HISTORY_COLUMNS).order_by(c.created_at.desc(), c.id.desc()),
            and_(c.recipient_type == recipient_type.value, c.recipient_id == person_id),
            limit,
        )
        return [EmailHistoryItem.model_validate(dict(row)) for row in rows], total

    def find(self, query: EmailQuery) -> tuple[list[EmailSummary], int]:
        c = emails.c
        conditions: list[ColumnElement[bool]] = []
        if query.status is not None:
            conditions.append(c.status == query.status.value)
        if query.kind is not None:
            conditions.append(c.kind == query.kind.value)
        if query.recipient_type is not None:
            conditions.append(c.recipient_type == query.recipient_type.value)
        if query.recipient_id is not None:
            conditions.append(c.recipient_id == query.recipient_id)
        if query.bundle_reference is not None:
            conditions.append(c.bundle_reference == query.bundle_reference)
        if query.created_from is not None:
            conditions.append(c.created_at >= query.created_from)
        if query.created_to is not None:
            conditions.append(c.created_at < query.created_to)
        where = and_(true(), *conditions)
        total = self._connection.execute(select(func.count()).select_from(emails).where(where)).scalar_one()
        columns = [c[name] for name in EmailSummary.model_fields]
        rows = self._connection.execute(
            select(*columns)
            .where(where)
            .order_by(c.created_at.desc(), c.id.desc())
            .offset(query.offset)
            .limit(query.limit)
        ).mappings()
        return [EmailSummary.model_validate(dict(row)) for row in rows], int(total)

    def detail(self, email_id: uuid.UUID) -> EmailDetail | None:
        fields = set(EmailDetail.model_fields) - {"delivery_attempts"}
        row = (
            self._connection.execute(
                select(*[emails.c[name] for name in fields]).where(emails.c.id == email_id)
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        a = delivery_attempts.c
        attempts = self._connection.execute(
            select(a.attempt, a.started_at, a.finished_at, a.outcome, a.error)
            .where(a.email_id == email_id)
            .order_by(a.started_at, a.id)
        ).mappings()
        return EmailDetail.model_validate(
            {**row, "delivery_attempts": [DeliveryAttemptView.model_validate(dict(r)) for r in attempts]}
        )

    def answered(self, message_ids: Sequence[str]) -> AnsweredEmail | None:
        c = email_history.c
        for message_id in message_ids:
            row = self._connection.execute(
                select(c.id, c.recipient, c.recipient_type, c.recipient_id, c.bundle_reference).where(
                    c.message_id == message_id
                )
            ).first()
            if row is not None:
                return AnsweredEmail(
                    id=uuid.UUID(str(row.id)),
                    recipient=row.recipient,
                    recipient_type=row.recipient_type,
                    recipient_id=row.recipient_id,
                    bundle_reference=row.bundle_reference,
                )
        return None

    def redact_patient(self, patient_id: uuid.UUID, at: datetime) -> int:
        c = email_history.c
        result = self._connection.execute(
            update(email_history)
            .where(
                c.recipient_type == "patient",
                c.recipient_id == patient_id,
                # A queued or sending email is left to its sender (seconds); it is redacted by
                # the next erasure request at the latest.
                c.status.in_(["draft", "sent", "failed"]),
                c.recipient != ERASED_RECIPIENT,
            )
            .values(
                recipient=ERASED_RECIPIENT,
                recipient_name=None,
                subject="[gelöscht]",
                html="",
                text="",
                updated_at=at,
            )
        )
        return int(result.rowcount)


class SqlCommunicationAuditLog:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def record(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        entity_type: str,
        entity_id: uuid.UUID,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self._connection.execute(
            audit_log.insert().values(
                at=at,
                actor=actor[:200],
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                detail=detail,
            )
        )
