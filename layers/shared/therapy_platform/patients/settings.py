"""Environment of the patient service's functions: the bus its events go to (EVENT_BUS_NAME,
EVENT_SOURCE) and the in-process geocoder's Nominatim settings (all optional; offline postcode
centroids unless NOMINATIM_ENABLED=true). Database settings are read by platform.database when
the engine is first used. A missing or malformed variable fails at cold start naming it."""

from __future__ import annotations

from dataclasses import dataclass

from therapy_platform.platform.geography.nominatim import NominatimSettings
from therapy_platform.platform.settings import EventPublisherSettings


@dataclass(frozen=True)
class PatientSettings:
    events: EventPublisherSettings
    nominatim: NominatimSettings

    @classmethod
    def from_env(cls) -> PatientSettings:
        return cls(events=EventPublisherSettings.from_env(), nominatim=NominatimSettings.from_env())
