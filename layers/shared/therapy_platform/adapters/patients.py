"""Patient persistence in the `patient_service` schema."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, select

from therapy_platform.adapters.database import connect
from therapy_platform.adapters.outbox import SqlOutbox
from therapy_platform.adapters.tables import PATIENT_SCHEMA, patients
from therapy_platform.domain.patients import Patient


class SqlPatientRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, patient: Patient) -> None:
        self._connection.execute(patients.insert().values(**patient.model_dump()))

    def get(self, patient_id: uuid.UUID) -> Patient | None:
        row = self._connection.execute(select(patients).where(patients.c.id == patient_id)).mappings().first()
        return Patient.model_validate(dict(row)) if row else None


class SqlPatientUnitOfWork:
    """One transaction: the patient change and its outbox events commit together or not at all.
    Leaving the block without commit() rolls everything back."""

    patients: SqlPatientRepository
    outbox: SqlOutbox

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __enter__(self) -> Self:
        self._connection = connect(self._engine)
        self._transaction = self._connection.begin()
        self.patients = SqlPatientRepository(self._connection)
        self.outbox = SqlOutbox(self._connection, PATIENT_SCHEMA)
        return self

    def commit(self) -> None:
        self._transaction.commit()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._connection.close()
