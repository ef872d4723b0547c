"""`therapist.deleted` in the matching service (GDPR Art. 17), inside the consumer's open
transaction (the caller commits; the eventId claim makes a redelivery a no-op, and a second
erasure finds nothing open): the therapist's data is scrubbed first (so no event written here
carries their practice key), then their open bundles close (domain/therapist_erasure.py):
drafts discarded, sent bundles expired with pending members withdrawn, no cooling period, no
message to the therapist. `bundle.expired` tells the communication service to stop following
up. The read model's tombstone is the consumer's generic `*.deleted` handling."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from therapy_platform.matching.domain.therapist_erasure import ERASURE_REASON, close_for_erased_therapist
from therapy_platform.matching.ports import MatchingUnitOfWork
from therapy_platform.matching.use_cases.changes import Changes
from therapy_platform.platform.outcome import Outcome

ERASURE_ACTOR: Final = "system:therapist.deleted"


def close_bundles_of_erased_therapist(
    uow: MatchingUnitOfWork, therapist_id: uuid.UUID, *, now: datetime
) -> Outcome[list[uuid.UUID]]:
    """Returns the ids of the bundles closed."""
    scrubbed = uow.therapist_erasure.scrub(therapist_id)
    changes = Changes(now, ERASURE_ACTOR)
    closed: list[uuid.UUID] = []
    for bundle_id in uow.therapist_erasure.open_bundle_ids(therapist_id):
        bundle = uow.bundles.get(bundle_id, for_update=True)
        if bundle is None or not bundle.is_open:
            continue
        previous = bundle.status
        withdrawn = close_for_erased_therapist(bundle, now=now)
        uow.bundles.save(bundle)
        closed.append(bundle.id)
        changes.record(
            f"bundle.{bundle.status.value}",
            "bundle",
            bundle.id,
            before={"status": previous.value},
            after={"status": bundle.status.value, "withdrawn_searches": [str(s) for s in withdrawn]},
            reason=ERASURE_REASON,
        )
        if previous.value == "sent":
            changes.event("bundle.expired", bundle.id, bundle.view().model_dump(mode="json"))
    changes.record(
        "therapist.erased",
        "therapist",
        therapist_id,
        after={"bundles_scrubbed": scrubbed, "bundles_closed": len(closed)},
    )
    return Outcome(closed, changes.write(uow))
