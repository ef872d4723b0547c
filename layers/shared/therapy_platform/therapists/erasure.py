"""Erasing a therapist (GDPR Art. 17): the use case behind POST /api/v2/therapists/{id}/erase.

One transaction in the therapist service: the therapist's record, directory listings, import-
report items, stored idempotent answers and outbox rows are deleted; the audit trail keeps who
did what when, without the values; an `erased_therapists` row keeps the id and the suppression
keys (domain/erasure.py) so imports never re-create the therapist; an audit entry `erase`
(no personal data) and `therapist.deleted` (the id and the time) are written with it. The other
services erase their parts when `therapist.deleted` reaches them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from therapy_platform.contracts.therapists import TherapistDeleted
from therapy_platform.platform.errors import NotFoundError
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.publishing import record_event
from therapy_platform.therapists.domain.erasure import (
    ERASE_ACTION,
    ErasureResult,
    TherapistErasure,
    suppression_keys,
)
from therapy_platform.therapists.domain.therapist import PRODUCER, TherapistAuditEntry
from therapy_platform.therapists.ports import TherapistUnitOfWork

DELETED_EVENT = "therapist.deleted"


def erase_therapist(
    uow: TherapistUnitOfWork, therapist_id: uuid.UUID, *, actor: str, now: datetime
) -> Outcome[ErasureResult]:
    """Erase one therapist. Already erased: nothing is done (`erased_now` False, no event).
    Never known: NotFoundError (404)."""
    with uow:
        current = uow.therapists.get_for_update(therapist_id)
        if current is None:
            earlier = uow.erasures.get(therapist_id)
            if earlier is None:
                raise NotFoundError(f"therapist {therapist_id} does not exist")
            again = ErasureResult(therapist_id=therapist_id, erased_now=False, erased_at=earlier.erased_at)
            return Outcome(again)
        directory_ids = uow.erasures.listed_directory_ids(therapist_id)
        if current.directory_id:
            directory_ids.add(current.directory_id)
        erasure = TherapistErasure(
            therapist_id=therapist_id,
            suppression_keys=suppression_keys(
                directory_ids=directory_ids,
                first_name=current.first_name,
                last_name=current.last_name,
                postcode=current.postcode,
            ),
            erased_at=now,
        )
        uow.erasures.erase_personal_data(therapist_id)
        uow.erasures.add(erasure)
        uow.audit.add(
            TherapistAuditEntry(
                actor=actor,
                action=ERASE_ACTION,
                entity_id=therapist_id,
                before=None,
                after={"suppression_keys": len(erasure.suppression_keys)},
                at=now,
            )
        )
        event = record_event(
            uow.outbox,
            DELETED_EVENT,
            producer=PRODUCER,
            key=therapist_id,
            payload=TherapistDeleted(id=therapist_id, erased_at=now).model_dump(mode="json"),
            now=now,
        )
        uow.commit()
    return Outcome(ErasureResult(therapist_id=therapist_id, erased_now=True, erased_at=now), (event,))
