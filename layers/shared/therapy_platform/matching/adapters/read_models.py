"""Read models in the `matching_service` schema (patient_profiles, therapist_profiles)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, Uuid, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert

from therapy_platform.matching.domain.read_models import ProfileChange, ProfileKind
from therapy_platform.platform.database import transaction

SCHEMA = "matching_service"
_metadata = MetaData()


def _profile_table(name: str) -> Table:
    return Table(
        name,
        _metadata,
        Column("id", Uuid, primary_key=True),
        Column("data", JSONB(none_as_null=True)),  # NULL: tombstone (deleted / erased)
        Column("source_event_id", Uuid, nullable=False),
        Column("source_timestamp", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


PROFILE_TABLES = {
    ProfileKind.PATIENT: _profile_table("patient_profiles"),
    ProfileKind.THERAPIST: _profile_table("therapist_profiles"),
}

processed_events = Table(
    "processed_events",
    _metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("consumer", String(60), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False),
    schema=SCHEMA,
)


class SqlProfileStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def apply(self, change: ProfileChange) -> bool:
        table = PROFILE_TABLES[change.kind]
        with transaction(self._engine) as connection:
            # Remember the event first: a redelivery finds it and changes nothing.
            first_time = connection.execute(
                insert(processed_events)
                .values(event_id=change.event_id, consumer="read-models", processed_at=func.now())
                .on_conflict_do_nothing()
                .returning(processed_events.c.event_id)
            ).first()
            if first_time is None:
                return False
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
            changed = connection.execute(statement.returning(table.c.id)).first()
            return changed is not None

    def get(self, kind: ProfileKind, entity_id: str) -> dict[str, object] | None:
        table = PROFILE_TABLES[kind]
        with transaction(self._engine) as connection:
            row = connection.execute(select(table).where(table.c.id == entity_id)).mappings().first()
            return dict(row) if row else None
