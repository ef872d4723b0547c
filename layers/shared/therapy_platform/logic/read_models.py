"""Feeds the matching service's read models from patient and therapist events."""

from __future__ import annotations

from therapy_platform.domain.events import EventEnvelope
from therapy_platform.domain.read_models import change_from_event
from therapy_platform.ports.read_models import ProfileStore


def apply_profile_event(store: ProfileStore, envelope: EventEnvelope) -> bool:
    return store.apply(change_from_event(envelope))
