"""`patient.deleted` in the communication service (GDPR Art. 17): what is erased and why is
domain/patient_erasure.py; the SQL is adapters/patient_erasure.py. Runs inside the event's unit
of work (one transaction with the eventId claim: a redelivery changes nothing), BEFORE the
contact is tombstoned, because the patient's values are gathered from what this service holds.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from therapy_platform.communication.domain.patient_erasure import mail_mentions, patient_terms
from therapy_platform.communication.ports import CommunicationUnitOfWork, StoredMail
from therapy_platform.contracts.erasure import ErasureTerms


def erase_patient(
    uow: CommunicationUnitOfWork, stored_mail: StoredMail | None, patient_id: uuid.UUID, *, now: datetime
) -> str:
    """Erase the patient from the service's tables and stored mails; answers a note for the log
    (counts only)."""
    held = uow.patient_erasure.held_values(patient_id)
    terms = patient_terms(held)
    report = uow.patient_erasure.erase(patient_id, terms, at=now, search_ids=held.search_ids)
    mails = delete_stored_mails(stored_mail, terms) if stored_mail else 0
    return f"erasure: {report.describe()}; {mails} stored mail(s) deleted"


def delete_stored_mails(stored_mail: StoredMail, terms: ErasureTerms) -> int:
    """Delete every stored raw mail that names the person (before the transaction commits: a
    failure retries the whole event, and a redelivery finds the same terms in the database)."""
    if not terms:
        return 0
    deleted = 0
    for key in list(stored_mail.keys()):
        raw = stored_mail.read(key)
        if raw is not None and mail_mentions(raw, terms):
            stored_mail.delete(key)
            deleted += 1
    return deleted
