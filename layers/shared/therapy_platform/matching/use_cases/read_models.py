"""Feeds the matching service's read models from patient and therapist events."""

from __future__ import annotations

from therapy_platform.matching.domain.read_models import change_from_event
from therapy_platform.matching.read_model_ports import ProfileStore
from therapy_platform.platform.events import EventEnvelope


def apply_profile_event(store: ProfileStore, envelope: EventEnvelope) -> bool:
    return store.apply(change_from_event(envelope))
