"""What the matching service does with a `patient.*` or `therapist.*` event, inside the
consumer's transaction (which also claims the eventId, so a redelivery changes nothing):

- the read model takes the event's payload (older events and anything after an erasure are
  ignored: see `domain/read_models.py`);
- `patient.deleted`: the patient's unfinished search is cancelled and withdrawn, then the
  patient's traces in searches, bundles, audit entries and outbox payloads are erased
  (`PatientErasure`, adapters/patient_erasure.py);
- a therapist blocked or deactivated: their draft bundles are discarded, patients freed;
- a therapist who objected to inquiries (`contact_opt_out`, GDPR Art. 21): their drafts and
  their practice's (one mailbox) are discarded, so a draft made before the objection arrived is
  never sent;
- `therapist.deleted`: their data scrubbed, their open bundles closed (use_cases/therapist_erasure.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from therapy_platform.matching.domain.read_models import NotAProfileEventError, change_from_event
from therapy_platform.matching.ports import MatchingUnitOfWork
from therapy_platform.matching.use_cases.bundles import (
    discard_drafts_after_objection,
    discard_drafts_of_blocked_therapist,
)
from therapy_platform.matching.use_cases.searches import cancel_searches_of_erased_patient
from therapy_platform.matching.use_cases.therapist_erasure import close_bundles_of_erased_therapist
from therapy_platform.platform.consumer import Handled, PoisonMessageError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.outcome import Outcome

_UNCONTACTABLE: Final = frozenset({"blocked", "inactive"})


def react_to_profile_event(
    uow: MatchingUnitOfWork, envelope: EventEnvelope, *, now: datetime
) -> Outcome[list[uuid.UUID]]:
    """Beyond the read model; returns the ids acted on (searches or bundles)."""
    entity = envelope.payload.get("id")
    if not isinstance(entity, str):
        return Outcome([])
    if envelope.event_type == "patient.deleted":
        cancelled = cancel_searches_of_erased_patient(uow, uuid.UUID(entity), now=now)
        # After the cancellation (whose audit entry and event it scrubs too): adapters/patient_erasure.py.
        uow.patient_erasure.erase_patient(uuid.UUID(entity))
        return cancelled
    if envelope.event_type == "therapist.deleted":  # therapist erasure
        return close_bundles_of_erased_therapist(uow, uuid.UUID(entity), now=now)
    if envelope.event_type.startswith("therapist.") and envelope.payload.get("status") in _UNCONTACTABLE:
        status, why = envelope.payload.get("status"), envelope.payload.get("block_reason") or "by staff"
        return discard_drafts_of_blocked_therapist(
            uow, uuid.UUID(entity), now=now, reason=f"therapist {status}: {why}"
        )
    if envelope.event_type.startswith("therapist.") and envelope.payload.get("contact_opt_out") is True:
        practice_key = envelope.payload.get("practice_key")
        return discard_drafts_after_objection(
            uow, uuid.UUID(entity), practice_key if isinstance(practice_key, str) else None, now=now
        )
    return Outcome([])


def apply_profile_event(
    uow: MatchingUnitOfWork, envelope: EventEnvelope, *, now: datetime
) -> Outcome[Handled]:
    """The read model's change and the reaction, in the caller's open transaction."""
    try:
        change = change_from_event(envelope)
    except NotAProfileEventError as error:  # can never be applied: to the dead-letter queue
        raise PoisonMessageError(str(error)) from error
    changed = uow.profiles.apply(change)
    reaction = react_to_profile_event(uow, envelope, now=now)
    detail = {"changed": changed, "acted_on": [str(i) for i in reaction.value]}
    return Outcome(Handled("", envelope.event_type, "applied", detail), reaction.events)
