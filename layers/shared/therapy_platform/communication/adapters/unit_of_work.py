"""The communication service's PostgreSQL unit of work: one transaction over its schema
(`communication_service`), binding every repository to the block's connection. Its outbox and
`processed_events` (the event consumer's eventId claims) are the platform's."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine

from therapy_platform.communication.adapters.emails import SqlDeliveryAttemptLog, SqlEmailRepository
from therapy_platform.communication.adapters.follow_up import (
    SqlCommunicationAuditLog,
    SqlEmailHistory,
    SqlPhoneCalls,
    SqlReplies,
    SqlTrackedBundles,
)
from therapy_platform.communication.adapters.patient_erasure import SqlPatientErasure
from therapy_platform.communication.adapters.tables import COMMUNICATION_SCHEMA
from therapy_platform.communication.adapters.therapist_erasure import SqlTherapistErasure
from therapy_platform.communication.ports import ContactDirectory
from therapy_platform.platform.ports import AfterCommit
from therapy_platform.platform.unit_of_work import SqlUnitOfWork


class SqlCommunicationUnitOfWork(SqlUnitOfWork):
    """Emails and their attempts, tracked bundles, calls, contacts, replies, the email history
    and the audit log, with the events they write, in one transaction."""

    schema = COMMUNICATION_SCHEMA
    emails: SqlEmailRepository
    attempts: SqlDeliveryAttemptLog
    bundles: SqlTrackedBundles
    calls: SqlPhoneCalls
    contacts: ContactDirectory  # looked up in the owning services, not in this schema
    replies: SqlReplies
    history: SqlEmailHistory
    audit: SqlCommunicationAuditLog
    therapist_erasure: SqlTherapistErasure
    patient_erasure: SqlPatientErasure

    def __init__(
        self,
        engine: Engine,
        *,
        publish: AfterCommit | None = None,
        contacts: Callable[[], ContactDirectory] | None = None,
    ) -> None:
        super().__init__(engine, publish=publish)
        self._contact_directory = contacts

    def _bind(self, connection: Connection) -> None:
        self.emails = SqlEmailRepository(connection)
        self.attempts = SqlDeliveryAttemptLog(connection)
        self.bundles = SqlTrackedBundles(connection)
        self.calls = SqlPhoneCalls(connection)
        if self._contact_directory is None:
            from therapy_platform.communication.adapters.contact_directory import deployed_contact_directory

            self._contact_directory = deployed_contact_directory
        self.contacts = self._contact_directory()
        self.replies = SqlReplies(connection)
        self.history = SqlEmailHistory(connection)
        self.audit = SqlCommunicationAuditLog(connection)
        self.therapist_erasure = SqlTherapistErasure(connection)
        self.patient_erasure = SqlPatientErasure(connection)
