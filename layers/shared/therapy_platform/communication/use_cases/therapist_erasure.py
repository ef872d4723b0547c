"""`therapist.deleted` in the communication service (GDPR Art. 17): scrub what it holds about
the erased therapist (communication/adapters/therapist_erasure.py), cancel queued emails to
them, and audit the erasure with numbers only. Runs inside the
consumer's transaction with the eventId claim, so a redelivery changes nothing; the scrub
itself is idempotent too (a second `therapist.deleted` finds nothing left)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from therapy_platform.communication.domain.therapist_erasure import ERASE_ACTION
from therapy_platform.contracts.therapists import TherapistDeleted
from therapy_platform.platform.events import EventEnvelope

if TYPE_CHECKING:
    from therapy_platform.communication.use_cases.events import Actions


def erased_before(actions: Actions, therapist_id: uuid.UUID) -> bool:
    """Whether the therapist was erased already: a `bundle.sent` delayed past the erasure must
    write nothing about them (no inquiry, no bundle snapshot)."""
    if not actions.uow.therapist_erasure.was_erased(therapist_id):
        return False
    actions.effects.notes.append(f"therapist {therapist_id} was erased; bundle.sent ignored")
    return True


def erase_therapist(actions: Actions, deleted: TherapistDeleted, envelope: EventEnvelope) -> None:
    """The reaction to `therapist.deleted` (events.py reads the payload through its contract)."""
    counts = actions.uow.therapist_erasure.erase(deleted.id, at=actions.now)
    actions.uow.audit.record(
        at=actions.now,
        actor="system:therapist.deleted",
        action=ERASE_ACTION,
        entity_type="therapist",
        entity_id=deleted.id,
        detail=counts.model_dump(mode="json"),
    )
    actions.effects.notes.append(
        f"therapist {deleted.id} erased; {counts.emails_scrubbed} email(s) scrubbed, "
        f"{counts.emails_cancelled} cancelled, {counts.calls_cancelled} call(s) cancelled"
    )
