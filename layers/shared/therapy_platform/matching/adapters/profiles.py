"""The read models in PostgreSQL (`patient_profiles`, `therapist_profiles`): applying a
producer's event order-safely, and reading profiles by id.

Order-safety lives in the upsert: an older event (envelope timestamp) never overwrites a newer
copy, and nothing overwrites a tombstone, so a late `updated` cannot resurrect an erased
patient. Redeliveries are caught before, by the eventId claim in `processed_events` that
commits in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert

from therapy_platform.matching.adapters.tables import PROFILE_TABLES, patient_profiles, therapist_profiles
from therapy_platform.matching.domain.profiles import PatientProfile, TherapistProfile
from therapy_platform.matching.domain.read_models import ProfileChange


class SqlProfileRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def apply(self, change: ProfileChange) -> bool:
        table = PROFILE_TABLES[change.kind]
        statement = insert(table).values(
            id=change.entity_id,
            data=change.data,
            source_event_id=change.event_id,
            source_timestamp=change.occurred_at,
            updated_at=func.now(),
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={
                "data": statement.excluded.data,
                "source_event_id": statement.excluded.source_event_id,
                "source_timestamp": statement.excluded.source_timestamp,
                "updated_at": func.now(),
            },
            # Older events never overwrite newer ones; nothing overwrites a tombstone.
            where=(table.c.source_timestamp < statement.excluded.source_timestamp)
            & table.c.data.is_not(None),
        )
        return self._connection.execute(statement.returning(table.c.id)).first() is not None

    def patient(self, patient_id: uuid.UUID) -> tuple[bool, PatientProfile | None]:
        row = self._connection.execute(
            select(patient_profiles.c.data).where(patient_profiles.c.id == patient_id)
        ).first()
        if row is None:
            return False, None
        return True, None if row.data is None else PatientProfile.from_payload(row.data)

    def patients(self, patient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PatientProfile]:
        ids = list(set(patient_ids))
        if not ids:
            return {}
        rows = self._connection.execute(
            select(patient_profiles.c.id, patient_profiles.c.data).where(
                patient_profiles.c.id.in_(ids), patient_profiles.c.data.is_not(None)
            )
        )
        return {row.id: PatientProfile.from_payload(row.data) for row in rows}

    def therapists(self, therapist_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, TherapistProfile]:
        ids = list(set(therapist_ids))
        if not ids:
            return {}
        rows = self._connection.execute(
            select(therapist_profiles.c.id, therapist_profiles.c.data).where(
                therapist_profiles.c.id.in_(ids), therapist_profiles.c.data.is_not(None)
            )
        )
        return {row.id: TherapistProfile.from_payload(row.data) for row in rows}
