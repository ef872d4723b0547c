"""Composition root of the patient service: what its functions use, as deployed.

`build()` gives the `PatientService` the API handler works with: the PostgreSQL unit of work in
`patient_service` whose committed events are published at once (after-commit hook; the scheduled
relay sends what that misses), the in-process geocoder (postcode centroids offline, Nominatim
only when NOMINATIM_ENABLED=true, no cache: docs/geocoding.md) and the clock. Nothing connects
while building: the engine and the bus client are created on first use.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
from therapy_platform.patients.adapters.tables import PATIENT_SCHEMA
from therapy_platform.patients.settings import PatientSettings
from therapy_platform.patients.use_cases import PatientService
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.eventbridge import default_publisher
from therapy_platform.platform.geography.locator import default_locator
from therapy_platform.platform.outbox import SqlOutboxStore
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.platform.ports import EventPublisher

SETTINGS = PatientSettings.from_env()  # at import = cold start: a bad variable fails naming it

__all__ = ["SETTINGS", "PatientService", "build"]


def build(
    settings: PatientSettings = SETTINGS,
    *,
    engine: Callable[[], Engine] = default_engine,
    publisher: Callable[[], EventPublisher] = default_publisher,
) -> PatientService:
    """The deployed service (tests pass their own engine and bus)."""
    publish = PublishNow(store=lambda: SqlOutboxStore(engine(), PATIENT_SCHEMA), publisher=publisher)
    return PatientService(
        unit_of_work=lambda: SqlPatientUnitOfWork(engine(), publish=publish),
        geocoder=default_locator(settings.nominatim),
    )
