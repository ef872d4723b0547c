"""The communication service's part of a personal-data export: every record of
`communication_service` about one patient or one therapist (one transaction).

- patient: the contact copy, the emails to them with their delivery attempts, audit entries
  (how they were presented in bundle inquiries is in the matching part: `bundle_members`);
- therapist: the contact copy, the emails to them with delivery attempts, the bundles sent to
  them (without members), phone-call tasks, their replies (to those emails or bundles), audit
  entries.
Internal columns of the sending machinery (claim tokens, leases) are left out: they say nothing
about the person.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, or_, select

from therapy_platform.communication.adapters.tables import (
    audit_log,
    delivery_attempts,
    emails,
    inbound_replies,
    phone_call_tasks,
    sent_bundles,
)
from therapy_platform.contracts.personal_data import DataSubject
from therapy_platform.platform.sql_records import json_records

Records = dict[str, list[dict[str, Any]]]
_MACHINERY = {"claim_token", "lease_until", "next_attempt_at", "last_enqueued_at"}
_EMAIL_COLUMNS = [column for column in emails.c if column.name not in _MACHINERY]


class SqlCommunicationPersonalData:
    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine

    def records_of(self, subject: DataSubject, subject_id: uuid.UUID) -> Records:
        with self._engine().connect() as connection, connection.begin():
            records = self._emails(connection, subject, subject_id)
            if subject is DataSubject.PATIENT:
                records.update(self._patient(connection, subject_id))
            else:
                records.update(self._therapist(connection, subject_id, records["emails"]))
            records["audit_log"] = json_records(
                connection,
                select(audit_log).where(audit_log.c.entity_id == subject_id).order_by(audit_log.c.id),
            )
            return records

    @staticmethod
    def _emails(connection: Any, subject: DataSubject, subject_id: uuid.UUID) -> Records:
        email_rows = json_records(
            connection,
            select(*_EMAIL_COLUMNS)
            .where(emails.c.recipient_type == subject.value, emails.c.recipient_id == subject_id)
            .order_by(emails.c.created_at),
        )
        email_ids = [uuid.UUID(row["id"]) for row in email_rows]
        attempts = json_records(
            connection,
            select(
                delivery_attempts.c.email_id,
                delivery_attempts.c.attempt,
                delivery_attempts.c.started_at,
                delivery_attempts.c.finished_at,
                delivery_attempts.c.outcome,
                delivery_attempts.c.error,
            )
            .where(delivery_attempts.c.email_id.in_(email_ids))
            .order_by(delivery_attempts.c.id),
        )
        return {"emails": email_rows, "delivery_attempts": attempts}

    @staticmethod
    def _patient(connection: Any, patient_id: uuid.UUID) -> Records:
        # Contact data is the patient service's (looked up when needed, contracts/contacts.py):
        # nothing here beyond the emails.
        return {}

    @staticmethod
    def _therapist(connection: Any, therapist_id: uuid.UUID, email_rows: list[dict[str, Any]]) -> Records:
        bundle_rows = json_records(
            connection,
            select(*[column for column in sent_bundles.c if column.name != "members"])
            .where(sent_bundles.c.therapist_id == therapist_id)
            .order_by(sent_bundles.c.created_at),
        )
        references = [row["reference"] for row in bundle_rows]
        email_ids = [uuid.UUID(row["id"]) for row in email_rows]
        return {
            "sent_bundles": bundle_rows,
            "phone_call_tasks": json_records(
                connection,
                select(phone_call_tasks)
                .where(phone_call_tasks.c.therapist_id == therapist_id)
                .order_by(phone_call_tasks.c.created_at),
            ),
            "inbound_replies": json_records(
                connection,
                select(inbound_replies)
                .where(
                    or_(
                        inbound_replies.c.email_id.in_(email_ids),
                        inbound_replies.c.bundle_reference.in_(references),
                    )
                )
                .order_by(inbound_replies.c.received_at),
            ),
        }
