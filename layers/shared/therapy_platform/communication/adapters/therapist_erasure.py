"""Erasing a therapist in the `communication_service` schema (`therapist.deleted`, GDPR Art. 17;
rules in communication/domain/therapist_erasure.py). One method, run inside the consumer's
transaction; every statement is idempotent (a redelivery or a second erasure changes nothing).

- emails to the therapist: queued or draft ones cancelled (failed, "cancelled: recipient
  erased"), every one scrubbed (recipient, name, subject, bodies, errors) like a patient's;
- other emails, delivery errors, outbox payloads and stored idempotent answers: the therapist's
  identifying values replaced by `[gelöscht]`;
- replies from them (by sender or by their bundles' references) and review-list entries from
  their address: sender, subject, text, html and message ids cleared;
- phone-call tasks for them: scheduled ones cancelled, name, number and notes cleared;
- bundles sent to them: the therapist snapshot cleared (members are the patients' data);
- what is searched for in other text: the values this schema holds of the therapist (bundle
  snapshots, call tasks, the address and name of emails to them). The therapist service has
  erased its record before this event arrives, so there is nothing to look up there;
- the audit log: details of the therapist, their emails and calls cleared.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, and_, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

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
from therapy_platform.communication.domain.therapist_erasure import (
    ERASE_ACTION,
    ERASED_MARK,
    TherapistErasureCounts,
    identifying_values,
)
from therapy_platform.platform.sql_redaction import mentions as _mentions
from therapy_platform.platform.sql_redaction import redacted
from therapy_platform.platform.tables import idempotency_keys_table, outbox_table

CANCELLED_ERROR = "cancelled: recipient erased (GDPR Art. 17)"


def _redacted(column: Any, values: list[str]) -> ColumnElement[Any]:
    return redacted(column, values, ERASED_MARK)


class SqlTherapistErasure:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def was_erased(self, therapist_id: uuid.UUID) -> bool:
        a = audit_log.c
        found = self._connection.execute(
            select(a.id)
            .where(a.entity_type == "therapist", a.entity_id == therapist_id, a.action == ERASE_ACTION)
            .limit(1)
        ).first()
        return found is not None

    def erase(self, therapist_id: uuid.UUID, *, at: datetime) -> TherapistErasureCounts:
        run = self._connection.execute
        e = emails.c
        # To them: by id, or by address (an ad-hoc email typed in by staff has no recipient id).
        by_id = and_(e.recipient_type == "therapist", e.recipient_id == therapist_id)
        addressed = [
            {"email": row.recipient, "therapist_name": row.recipient_name}
            for row in run(
                select(e.recipient, e.recipient_name).where(by_id, e.recipient != ERASED_RECIPIENT)
            )
        ]
        snapshots = list(
            run(select(sent_bundles.c.therapist).where(sent_bundles.c.therapist_id == therapist_id)).scalars()
        )
        t = phone_call_tasks.c
        tasks = [
            dict(row)
            for row in run(
                select(t.id, t.therapist_name, t.phone).where(t.therapist_id == therapist_id)
            ).mappings()
        ]
        values = identifying_values([*addressed, *snapshots, *tasks])
        references = list(
            run(select(sent_bundles.c.reference).where(sent_bundles.c.therapist_id == therapist_id)).scalars()
        )
        addresses = [value.lower() for value in values if "@" in value]

        email_ids = list(
            run(
                select(e.id).where(or_(by_id, func.lower(e.recipient).in_(addresses)) if addresses else by_id)
            ).scalars()
        )
        to_them = e.id.in_(email_ids)
        scrubbed = run(
            update(emails)
            .where(to_them, e.recipient != ERASED_RECIPIENT)
            .values(
                recipient=ERASED_RECIPIENT,
                recipient_name=None,
                subject=ERASED_MARK,
                html="",
                text="",
                last_error=None,
                updated_at=at,
            )
        ).rowcount
        cancelled = run(
            update(emails)
            .where(to_them, e.status.in_(["draft", "queued"]))
            .values(
                status="failed", failed_at=at, last_error=CANCELLED_ERROR, next_attempt_at=None, updated_at=at
            )
        ).rowcount
        mentioning = 0
        if values:
            mentioning = run(
                update(emails)
                .where(
                    ~to_them,
                    or_(
                        _mentions(e.subject, values),
                        _mentions(e.text, values),
                        _mentions(e.html, values),
                        _mentions(func.coalesce(e.recipient_name, ""), values),
                        _mentions(func.coalesce(e.last_error, ""), values),
                    ),
                )
                .values(
                    subject=_redacted(e.subject, values),
                    text=_redacted(e.text, values),
                    html=_redacted(e.html, values),
                    recipient_name=_redacted(e.recipient_name, values),
                    last_error=_redacted(e.last_error, values),
                    updated_at=at,
                )
            ).rowcount
        a = delivery_attempts.c
        run(update(delivery_attempts).where(a.email_id.in_(email_ids)).values(error=None))

        r = inbound_replies.c
        from_them = [r.bundle_reference.in_(references)] if references else []
        if addresses:
            from_them.append(func.lower(r.from_address).in_(addresses))
        replies = 0
        if from_them:
            replies = run(
                update(inbound_replies)
                .where(or_(*from_them), r.from_address != ERASED_RECIPIENT)
                .values(
                    from_address=ERASED_RECIPIENT,
                    subject=None,
                    text=None,
                    html=None,
                    message_id=None,
                    in_reply_to=None,
                    references=None,
                )
            ).rowcount
        reviews = 0
        if addresses:
            v = reply_reviews.c
            reviews = run(
                update(reply_reviews)
                .where(func.lower(v.from_address).in_(addresses))
                .values(from_address=None, subject=None, text=None, message_id=None)
            ).rowcount

        calls_cancelled = run(
            update(phone_call_tasks)
            .where(t.therapist_id == therapist_id, t.status == "scheduled")
            .values(status="cancelled", updated_at=at)
        ).rowcount
        calls = run(
            update(phone_call_tasks)
            .where(t.therapist_id == therapist_id, t.therapist_name != ERASED_MARK)
            .values(therapist_name=ERASED_MARK, phone=None, outcome_notes=None, updated_at=at)
        ).rowcount

        bundles = run(
            update(sent_bundles)
            .where(sent_bundles.c.therapist_id == therapist_id, sent_bundles.c.therapist.is_not(None))
            .values(therapist=None, updated_at=at)
        ).rowcount

        entity_ids = [therapist_id, *email_ids, *(task["id"] for task in tasks)]
        run(update(audit_log).where(audit_log.c.entity_id.in_(entity_ids)).values(detail=None))
        if values:
            outbox = outbox_table(COMMUNICATION_SCHEMA)
            envelope_text = cast(outbox.c.envelope, Text)
            run(
                update(outbox)
                .where(_mentions(envelope_text, values))
                .values(envelope=cast(_redacted(envelope_text, values), JSONB))
            )
            keys = idempotency_keys_table(COMMUNICATION_SCHEMA)
            run(
                update(keys).where(_mentions(keys.c.body, values)).values(body=_redacted(keys.c.body, values))
            )

        return TherapistErasureCounts(
            emails_scrubbed=scrubbed,
            emails_cancelled=cancelled,
            emails_mentioning_redacted=mentioning,
            replies_scrubbed=replies,
            reviews_scrubbed=reviews,
            calls_scrubbed=calls,
            calls_cancelled=calls_cancelled,
            bundles_scrubbed=bundles,
        )
