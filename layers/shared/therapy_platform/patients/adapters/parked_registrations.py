"""PostgreSQL store of parked self-registrations (`patient_service.parked_registrations`).

Its own short transaction per record: parking happens when nothing else is written, and a
redelivered record (same topic, partition, offset) parks once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert

from therapy_platform.patients.adapters.tables import parked_registrations
from therapy_platform.patients.domain.registration import ParkedRegistration


class SqlParkedRegistrations:
    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine

    def park(self, parked: ParkedRegistration) -> bool:
        """Stores `parked`; False when that record was parked before."""
        with self._engine().begin() as connection:
            row = connection.execute(
                insert(parked_registrations)
                .values(**_row(parked))
                .on_conflict_do_nothing(constraint="parked_registrations_position")
                .returning(parked_registrations.c.id)
            ).first()
        return row is not None

    def recent(self, *, limit: int, offset: int) -> tuple[list[ParkedRegistration], int]:
        table = parked_registrations
        with self._engine().connect() as connection:
            total = int(connection.execute(select(func.count()).select_from(table)).scalar_one())
            rows = connection.execute(
                select(table).order_by(table.c.parked_at.desc(), table.c.id).limit(limit).offset(offset)
            ).mappings()
            return [ParkedRegistration.model_validate(dict(row)) for row in rows], total


def _row(parked: ParkedRegistration) -> dict[str, Any]:
    values = parked.model_dump()
    values["problems"] = list(parked.problems)
    return values
