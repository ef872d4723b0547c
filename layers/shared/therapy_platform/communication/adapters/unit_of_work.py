"""The communication service's PostgreSQL unit of work: one transaction over its schema
(`communication_service`), binding every repository to the block's connection. Its outbox and
`processed_events` (the event consumer's eventId claims) are the platform's."""

from __future__ import annotations

from sqlalchemy import Connection

from therapy_platform.communication.adapters.emails import SqlDeliveryAttemptLog, SqlEmailRepository
from therapy_platform.communication.adapters.follow_up import (
    SqlCommunicationAuditLog,
    SqlContacts,
    SqlEmailHistory,
    SqlPhoneCalls,
    SqlReplies,
    SqlTrackedBundles,
)
from therapy_platform.communication.adapters.patient_erasure import SqlPatientErasure
from therapy_platform.communication.adapters.tables import COMMUNICATION_SCHEMA
from therapy_platform.communication.adapters.therapist_erasure import SqlTherapistErasure
from therapy_platform.platform.unit_of_work import SqlUnitOfWork


class SqlCommunicationUnitOfWork(SqlUnitOfWork):
    """Emails and their attempts, tracked bundles, calls, contacts, replies, the email history
    and the audit log, with the events they write, in one transaction."""

    schema = COMMUNICATION_SCHEMA
    emails: SqlEmailRepository
    attempts: SqlDeliveryAttemptLog
    bundles: SqlTrackedBundles
    calls: SqlPhoneCalls
    contacts: SqlContacts
    replies: SqlReplies
    history: SqlEmailHistory
    audit: SqlCommunicationAuditLog
    therapist_erasure: SqlTherapistErasure
    patient_erasure: SqlPatientErasure

    def _bind(self, connection: Connection) -> None:
        self.emails = SqlEmailRepository(connection)
        self.attempts = SqlDeliveryAttemptLog(connection)
        self.bundles = SqlTrackedBundles(connection)
        self.calls = SqlPhoneCalls(connection)
        self.contacts = SqlContacts(connection)
        self.replies = SqlReplies(connection)
        self.history = SqlEmailHistory(connection)
        self.audit = SqlCommunicationAuditLog(connection)
        self.therapist_erasure = SqlTherapistErasure(connection)
        self.patient_erasure = SqlPatientErasure(connection)
