"""What the matching service measures (docs/metrics.md), as pure functions over a round's own
result and over the events a transaction committed. Nothing here trusts the code that built a
round: the cooling-period check recomputes the rule from the round's inputs and output."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date

from therapy_platform.contracts.bundles import BundleResponseReceived, ResponseType
from therapy_platform.contracts.searches import SearchStatus, SearchStatusChanged
from therapy_platform.matching.domain.models import TherapistCandidate
from therapy_platform.matching.domain.round import PlannedBundle
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.metrics import Measurement, Unit

ACTIVE = "active"
ACCEPTED = {ResponseType.FULL_ACCEPTANCE, ResponseType.PARTIAL_ACCEPTANCE}


def cooling_period_violations(
    bundles: Iterable[PlannedBundle], therapists: Iterable[TherapistCandidate], today: date
) -> int:
    """Bundles addressed to a practice still inside a cooling period on `today`: the addressee
    must not be contacted before `next_contact_allowed_on` (docs/domain.md), and neither may any
    other active member of the practice, who reads the same mailbox (docs/matching.md).
    Must be 0 for every round; a bundle to an unknown therapist counts as a violation too
    (nothing proves it was allowed)."""
    by_id = {therapist.id: therapist for therapist in therapists}
    cooling_practices = {
        therapist.practice
        for therapist in by_id.values()
        if therapist.status == ACTIVE
        and therapist.next_contact_allowed_on is not None
        and therapist.next_contact_allowed_on > today
    }
    violations = 0
    for bundle in bundles:
        addressee = by_id.get(bundle.therapist_id)
        if addressee is None:
            violations += 1
            continue
        cooling = addressee.next_contact_allowed_on is not None and addressee.next_contact_allowed_on > today
        if cooling or addressee.practice in cooling_practices:
            violations += 1
    return violations


def round_measurements(
    bundles: Sequence[PlannedBundle],
    therapists: Iterable[TherapistCandidate],
    searches_considered: Iterable[uuid.UUID],
    today: date,
    *,
    duration_ms: float,
) -> list[Measurement]:
    """One written round: its duration, the bundles it created, the searches it considered that
    entered no bundle, and the cooling-period check."""
    in_a_bundle = {member.search_id for bundle in bundles for member in bundle.members}
    without = len(set(searches_considered) - in_a_bundle)
    return [
        Measurement("RoundDuration", Unit.MILLISECONDS, duration_ms),
        Measurement("BundlesCreated", Unit.COUNT, len(bundles)),
        Measurement("SearchesWithoutBundle", Unit.COUNT, without),
        Measurement(
            "CoolingPeriodViolations", Unit.COUNT, cooling_period_violations(bundles, therapists, today)
        ),
    ]


def committed_event_measurements(events: Sequence[EventEnvelope]) -> list[Measurement]:
    """The bundle life cycle as the committed events tell it, whichever use case wrote them:
    sent, answered (accepted: at least one member accepted; declined: all rejected), expired,
    and placements (searches that became placed). An identical repeat of a response commits
    no event, so it is not counted twice."""
    counts = dict.fromkeys(
        (
            "BundlesSent",
            "BundlesAnswered",
            "BundlesAccepted",
            "BundlesDeclined",
            "BundlesExpired",
            "Placements",
        ),
        0,
    )
    for event in events:
        if event.event_type == "bundle.sent":
            counts["BundlesSent"] += 1
        elif event.event_type == "bundle.expired":
            counts["BundlesExpired"] += 1
        elif event.event_type == "bundle.response_received":
            response = BundleResponseReceived.model_validate(event.payload)
            if response.repeated:
                continue
            counts["BundlesAnswered"] += 1
            if response.bundle.response_type in ACCEPTED:
                counts["BundlesAccepted"] += 1
            elif response.bundle.response_type is ResponseType.FULL_REJECTION:
                counts["BundlesDeclined"] += 1
        elif event.event_type == "search.status_changed":
            change = SearchStatusChanged.model_validate(event.payload)
            if change.status is SearchStatus.PLACED and change.previous_status is not SearchStatus.PLACED:
                counts["Placements"] += 1
    return [Measurement(name, Unit.COUNT, value) for name, value in counts.items() if value]
