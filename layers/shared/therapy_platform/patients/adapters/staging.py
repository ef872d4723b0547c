"""Set-based chunks for the operators' patient bulk load (platform.unit_of_work.ChunkStage):
one query reads (and locks) every live patient a chunk's rows may match by last name and birth
date, the rows run against that in memory, and what they committed is written with one
statement per table (patients inserted, patients updated, audit rows, outbox events)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import date, datetime

from sqlalchemy import Connection, Date, Text, and_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from therapy_platform.patients.adapters.store import (
    audit_rows,
    open_row,
    patient_from_row,
    patient_row,
    seal_row,
)
from therapy_platform.patients.adapters.tables import PATIENT_SCHEMA, patient_audit_log, patients
from therapy_platform.patients.domain.patient import Patient, PatientQuery
from therapy_platform.patients.domain.statistics import PatientStatistics
from therapy_platform.patients.ports import ENCRYPTED_FIELDS, FieldCipher, PatientAuditEntry
from therapy_platform.platform.sql_bulk import bulk_insert, bulk_update
from therapy_platform.platform.unit_of_work import ChunkStage, SharedTransaction

_Identity = tuple[str, date]  # last name (lower case), birth date


class StagedPatientRepository:
    """The live patients a chunk may match (read once, locked) plus those its rows staged."""

    def __init__(self, stage: ChunkStage) -> None:
        self._stage = stage
        self.clear()

    def clear(self) -> None:
        self._by_id: dict[uuid.UUID, Patient] = {}
        self._by_identity: defaultdict[_Identity, set[uuid.UUID]] = defaultdict(set)
        self.inserted: dict[uuid.UUID, Patient] = {}
        self.updated: dict[uuid.UUID, Patient] = {}

    @staticmethod
    def _identity(patient: Patient) -> _Identity | None:
        if patient.last_name is None or patient.birth_date is None:
            return None
        return patient.last_name.lower(), patient.birth_date

    def _index(self, patient: Patient) -> None:
        before = self._by_id.get(patient.id)
        if before is not None and (identity := self._identity(before)) is not None:
            self._by_identity[identity].discard(before.id)
        self._by_id[patient.id] = patient
        if (identity := self._identity(patient)) is not None:
            self._by_identity[identity].add(patient.id)

    def load(self, found: Collection[Patient]) -> None:
        for patient in found:
            self._index(patient)

    def _store(self, patient: Patient, *, new: bool) -> None:
        self._index(patient)
        if new or patient.id in self.inserted:
            self.inserted[patient.id] = patient
        else:
            self.updated[patient.id] = patient

    def add(self, patient: Patient) -> None:
        self._stage.later(lambda: self._store(patient, new=True))

    def update(self, patient: Patient) -> None:
        self._stage.later(lambda: self._store(patient, new=False))

    def get(self, patient_id: uuid.UUID, *, for_update: bool = False) -> Patient | None:
        return self._by_id.get(patient_id)  # read with FOR UPDATE when the chunk began

    def erased_at(self, patient_id: uuid.UUID) -> datetime | None:
        return None  # only live patients are read

    def erase(self, patient_id: uuid.UUID, *, erased_at: datetime, statistics: PatientStatistics) -> None:
        raise NotImplementedError("a staged chunk does not erase")

    def search(self, query: PatientQuery) -> tuple[list[Patient], int]:
        raise NotImplementedError("a staged chunk does not search")

    def find_by_identity(self, *, email: str, last_name: str, birth_date: date) -> list[Patient]:
        found = [
            self._by_id[patient_id]
            for patient_id in self._by_identity.get((last_name.lower(), birth_date), ())
        ]
        return sorted(
            (
                patient
                for patient in found
                if patient.email is not None and patient.email.lower() == email.lower()
            ),
            key=lambda patient: (patient.created_at, str(patient.id)),
        )


class StagedPatientAuditLog:
    def __init__(self, stage: ChunkStage) -> None:
        self._stage = stage
        self.entries: list[PatientAuditEntry] = []

    def record(self, entries: Sequence[PatientAuditEntry]) -> None:
        kept = list(entries)
        self._stage.later(lambda: self.entries.extend(kept))

    def redact(self, entity_id: uuid.UUID) -> None:
        raise NotImplementedError("a staged chunk does not redact")

    def entries_of(self, entity_id: uuid.UUID) -> list[dict[str, object]]:
        raise NotImplementedError("a staged chunk does not read the audit log")


class PatientStage(ChunkStage):
    """A chunk of patient rows, staged (see the module docstring)."""

    def __init__(self, shared: SharedTransaction, cipher: FieldCipher) -> None:
        super().__init__(shared, PATIENT_SCHEMA)
        self._cipher = cipher
        self.patients = StagedPatientRepository(self)
        self.audit = StagedPatientAuditLog(self)

    def _clear(self) -> None:
        super()._clear()
        self.patients.clear()
        self.audit.entries = []

    def begin_identities(self, identities: Collection[tuple[str, date]]) -> None:
        """Read and lock the live patients with one of these last names (any case) and birth
        dates."""
        connection = self._start()
        if not identities:
            return
        pairs = sorted({(name.lower(), birth) for name, birth in identities})
        wanted = (
            func.unnest(
                bindparam(None, [name for name, _ in pairs], type_=ARRAY(Text())),
                bindparam(None, [birth for _, birth in pairs], type_=ARRAY(Date())),
            )
            .table_valued("name", "birth")
            .render_derived()
        )
        # Exact (last name, birth date) pairs: the patients_identity index answers each.
        rows = (
            connection.execute(
                select(patients)
                .join(
                    wanted,
                    and_(
                        func.lower(patients.c.last_name) == wanted.c.name,
                        patients.c.birth_date == wanted.c.birth,
                    ),
                )
                .where(patients.c.erased_at.is_(None))
                .with_for_update(of=patients)
            )
            .mappings()
            .all()
        )
        self._cipher.prefetch(
            row[name] for row in rows for name in ENCRYPTED_FIELDS if isinstance(row[name], str)
        )
        self.patients.load([patient_from_row(open_row(row, self._cipher)) for row in rows])

    def _write(self, connection: Connection) -> None:
        cipher = self._cipher
        bulk_insert(
            connection,
            patients,
            [
                seal_row(patient_row(patient), cipher, patient.id)
                for patient in self.patients.inserted.values()
            ],
        )
        updated = [
            seal_row(patient_row(patient), cipher, patient.id) for patient in self.patients.updated.values()
        ]
        for row in updated:
            del row["created_at"]
        bulk_update(connection, patients, updated, key="id")
        bulk_insert(connection, patient_audit_log, audit_rows(self.audit.entries, cipher))
        self._write_events(connection)
