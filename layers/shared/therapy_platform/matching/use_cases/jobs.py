"""Wiring shared by the matching service's background functions: configuration from the
environment and the reactions to other services' events."""

from __future__ import annotations

import uuid
from datetime import datetime

from therapy_platform.matching.domain.models import MatchingConfig
from therapy_platform.matching.ports import MatchingUnitOfWork
from therapy_platform.matching.use_cases.bundles import BundleTimings, discard_drafts_of_blocked_therapist
from therapy_platform.matching.use_cases.searches import cancel_searches_of_erased_patient
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.settings import MatchingSettings

_UNCONTACTABLE = frozenset({"blocked", "inactive"})


def matching_config(settings: MatchingSettings) -> MatchingConfig:
    return MatchingConfig(
        min_bundle_size=settings.min_bundle_size,
        max_bundle_size=settings.max_bundle_size,
        max_open_bundles_per_search=settings.max_open_bundles_per_search,
        cooling_days=settings.cooling_days,
    )


def bundle_timings(settings: MatchingSettings) -> BundleTimings:
    return BundleTimings(
        reminder_after_days=settings.reminder_after_days, expire_after_days=settings.expire_after_days
    )


def react_to_profile_event(
    uow: MatchingUnitOfWork, envelope: EventEnvelope, *, now: datetime
) -> list[uuid.UUID]:
    """What matching does beyond its read model when a patient or therapist changes:
    - `patient.deleted`: the patient's unfinished search is cancelled and withdrawn;
    - a therapist blocked or deactivated: their draft bundles are discarded, patients freed.
    Returns the ids acted on (searches or bundles). Idempotent: a redelivery finds nothing."""
    entity = envelope.payload.get("id")
    if not isinstance(entity, str):
        return []
    if envelope.event_type == "patient.deleted":
        return cancel_searches_of_erased_patient(uow, uuid.UUID(entity), now=now).value
    if envelope.event_type.startswith("therapist.") and envelope.payload.get("status") in _UNCONTACTABLE:
        status, why = envelope.payload.get("status"), envelope.payload.get("block_reason") or "by staff"
        reason = f"therapist {status}: {why}"
        return discard_drafts_of_blocked_therapist(uow, uuid.UUID(entity), now=now, reason=reason).value
    return []
