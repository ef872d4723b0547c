"""Patient persistence in the `patient_service` schema: the patient table, its audit log and
its outbox, all written through one transaction per unit of work.

The fields in `ENCRYPTED_FIELDS` are sealed by a `FieldCipher` on every write (row and audit
values) and opened on every read (adapters/field_cipher.py, docs/privacy.md#encryption)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    RowMapping,
    and_,
    delete,
    func,
    nulls_last,
    or_,
    select,
    text,
    update,
)

from therapy_platform.patients.adapters.field_cipher import default_field_cipher
from therapy_platform.patients.adapters.tables import (
    PATIENT_SCHEMA,
    patient_audit_log,
    patient_statistics,
    patients,
)
from therapy_platform.patients.domain.patient import STATISTICS_FIELDS, Patient, PatientQuery, PatientSort
from therapy_platform.patients.domain.statistics import PatientStatistics
from therapy_platform.patients.ports import ENCRYPTED_FIELDS, FieldCipher, PatientAuditEntry
from therapy_platform.platform.geography.locations import Location, LocationPrecision
from therapy_platform.platform.idempotency import redact_stored_answers
from therapy_platform.platform.ports import AfterCommit
from therapy_platform.platform.sql_records import json_records
from therapy_platform.platform.tables import outbox_table
from therapy_platform.platform.unit_of_work import ChunkStage, SharedTransaction, SqlUnitOfWork

# Everything an erasure empties: every column not kept for statistics.
PERSONAL_COLUMNS = tuple(column.name for column in patients.columns if column.name not in STATISTICS_FIELDS)


def patient_row(patient: Patient) -> dict[str, Any]:
    """Column values of a live patient (derived columns included)."""
    data = patient.model_dump(exclude={"location", "location_flagged", "shared_language_required"})
    location = patient.location
    return {
        # The driver binds plain strings, not enum members.
        **{name: str(value) if isinstance(value, StrEnum) else value for name, value in data.items()},
        "symptoms": [str(code) for code in patient.symptoms],
        "therapy_procedures": [str(code) for code in patient.therapy_procedures],
        "availability": {str(day): windows for day, windows in patient.availability.items()},
        "birth_year": patient.birth_date.year if patient.birth_date else None,
        "postcode_prefix": patient.postcode[:2],
        "latitude": location.latitude,
        "longitude": location.longitude,
        "location_precision": str(location.precision),
        "erased_at": None,
    }


def patient_from_row(row: Mapping[str, Any] | RowMapping) -> Patient:
    values = {name: row[name] for name in Patient.model_fields if name in row}
    values["location"] = Location(
        latitude=row["latitude"],
        longitude=row["longitude"],
        precision=LocationPrecision(row["location_precision"] or LocationPrecision.UNKNOWN),
    )
    values["availability"] = row["availability"] or {}
    values["languages"] = row["languages"] or []
    values["excluded_therapist_ids"] = row["excluded_therapist_ids"] or []
    return Patient.model_validate(values)


def seal_row(row: dict[str, Any], cipher: FieldCipher, record_id: uuid.UUID) -> dict[str, Any]:
    """The row with its `ENCRYPTED_FIELDS` sealed (None stays None)."""
    return {
        name: cipher.encrypt(value, field=name, record_id=record_id)
        if name in ENCRYPTED_FIELDS and isinstance(value, str)
        else value
        for name, value in row.items()
    }


def open_row(row: Mapping[str, Any] | RowMapping, cipher: FieldCipher) -> dict[str, Any]:
    """The row with its `ENCRYPTED_FIELDS` opened (legacy plaintext passes unchanged)."""
    return open_fields(row, cipher, row["id"])


def open_fields(
    row: Mapping[str, Any] | RowMapping, cipher: FieldCipher, record_id: uuid.UUID
) -> dict[str, Any]:
    return {
        name: cipher.decrypt(value, field=name, record_id=record_id)
        if name in ENCRYPTED_FIELDS and isinstance(value, str)
        else value
        for name, value in dict(row).items()
    }


def _sort_columns(sort: PatientSort) -> list[Any]:
    keys: dict[str, list[ColumnElement[Any]]] = {
        "created_at": [patients.c.created_at],
        "updated_at": [patients.c.updated_at],
        "last_name": [func.lower(patients.c.last_name), func.lower(patients.c.first_name)],
        "birth_date": [patients.c.birth_date],
        "postcode": [patients.c.postcode],
    }
    ordered = [nulls_last(key.desc() if sort.descending else key.asc()) for key in keys[sort.field]]
    return [*ordered, patients.c.id.asc()]


def _filters(query: PatientQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [patients.c.erased_at.is_(None)]
    if query.status:
        conditions.append(patients.c.status.in_([str(status) for status in query.status]))
    if query.postcode_prefix:
        conditions.append(patients.c.postcode.startswith(query.postcode_prefix, autoescape=True))
    if query.insurer:
        conditions.append(patients.c.health_insurer.icontains(query.insurer, autoescape=True))
    for term in query.name_terms:
        conditions.append(
            or_(
                patients.c.first_name.icontains(term, autoescape=True),
                patients.c.last_name.icontains(term, autoescape=True),
            )
        )
    start, end = query.created_bounds()
    if start is not None:
        conditions.append(patients.c.created_at >= start)
    if end is not None:
        conditions.append(patients.c.created_at < end)
    return conditions


class SqlPatientRepository:
    def __init__(self, connection: Connection, cipher: FieldCipher) -> None:
        self._connection = connection
        self._cipher = cipher

    def _read(self, row: Mapping[str, Any] | RowMapping) -> Patient:
        return patient_from_row(open_row(row, self._cipher))

    def _prefetch(self, rows: Sequence[RowMapping]) -> None:
        # A page of rows sealed under many data keys: unwrap them together, not one by one.
        self._cipher.prefetch(
            row[name] for row in rows for name in ENCRYPTED_FIELDS if isinstance(row[name], str)
        )

    def add(self, patient: Patient) -> None:
        self._connection.execute(
            patients.insert().values(**seal_row(patient_row(patient), self._cipher, patient.id))
        )

    def get(self, patient_id: uuid.UUID, *, for_update: bool = False) -> Patient | None:
        statement = select(patients).where(patients.c.id == patient_id, patients.c.erased_at.is_(None))
        if for_update:
            statement = statement.with_for_update()
        row = self._connection.execute(statement).mappings().first()
        return self._read(row) if row else None

    def erased_at(self, patient_id: uuid.UUID) -> datetime | None:
        value: datetime | None = self._connection.execute(
            select(patients.c.erased_at).where(patients.c.id == patient_id)
        ).scalar_one_or_none()
        return value

    def update(self, patient: Patient) -> None:
        row = seal_row(patient_row(patient), self._cipher, patient.id)
        del row["id"], row["created_at"]
        self._connection.execute(
            update(patients).where(patients.c.id == patient.id, patients.c.erased_at.is_(None)).values(**row)
        )

    def erase(self, patient_id: uuid.UUID, *, erased_at: datetime, statistics: PatientStatistics) -> None:
        self._connection.execute(patient_statistics.insert().values(**statistics.model_dump()))
        self._connection.execute(
            update(patients)
            .where(patients.c.id == patient_id)
            .values(dict.fromkeys(PERSONAL_COLUMNS) | {"erased_at": erased_at})
        )
        outbox = outbox_table(PATIENT_SCHEMA)
        self._connection.execute(delete(outbox).where(outbox.c.aggregate_key == str(patient_id)))
        # A registration's stored answer (Idempotency-Key) holds the whole record.
        redact_stored_answers(self._connection, PATIENT_SCHEMA, [str(patient_id)])

    def search(self, query: PatientQuery) -> tuple[list[Patient], int]:
        conditions = _filters(query)
        total = self._connection.execute(
            select(func.count()).select_from(patients).where(and_(*conditions))
        ).scalar_one()
        rows = (
            self._connection.execute(
                select(patients)
                .where(and_(*conditions))
                .order_by(*_sort_columns(query.sort))
                .limit(query.limit)
                .offset(query.offset)
            )
            .mappings()
            .all()
        )
        self._prefetch(rows)
        return [self._read(row) for row in rows], int(total)

    def find_by_identity(self, *, email: str, last_name: str, birth_date: date) -> list[Patient]:
        # The email is sealed: narrow by last name and birth date in SQL (a handful of rows),
        # then compare the opened emails.
        rows = (
            self._connection.execute(
                select(patients)
                .where(
                    func.lower(patients.c.last_name) == last_name.lower(),
                    patients.c.birth_date == birth_date,
                    patients.c.erased_at.is_(None),
                )
                .order_by(patients.c.created_at, patients.c.id)
            )
            .mappings()
            .all()
        )
        self._prefetch(rows)
        found = [self._read(row) for row in rows]
        return [
            patient
            for patient in found
            if patient.email is not None and patient.email.lower() == email.lower()
        ]


# Keeps the keys (which fields changed) and replaces every value with JSON null.
_BLANK = (
    "CASE WHEN jsonb_typeof({0}) = 'object' THEN (SELECT coalesce(jsonb_object_agg(key, 'null'::jsonb), "
    "'{{}}'::jsonb) FROM jsonb_object_keys({0}) AS key) ELSE {0} END"
)
_REDACT = text(
    f"UPDATE {PATIENT_SCHEMA}.audit_log SET before = {_BLANK.format('before')}, "
    f"after = {_BLANK.format('after')}, reason = NULL WHERE entity_id = :entity_id"
)


def _printable(value: str) -> str:
    # The actor comes from a header or token claim: never let a control character (PostgreSQL
    # refuses NUL) turn an audited request into a server error.
    return "".join(char if char.isprintable() else "?" for char in value)


def _seal_values(
    values: dict[str, Any] | None, cipher: FieldCipher, record_id: uuid.UUID
) -> dict[str, Any] | None:
    return None if values is None else seal_row(values, cipher, record_id)


def _open_values(values: Any, cipher: FieldCipher, record_id: uuid.UUID) -> Any:
    if not isinstance(values, dict):
        return values
    return open_fields(values, cipher, record_id)


def audit_rows(entries: Sequence[PatientAuditEntry], cipher: FieldCipher) -> list[dict[str, Any]]:
    return [
        {
            "at": entry.at,
            "actor": _printable(entry.actor)[:200] or "unknown",
            "action": str(entry.action),
            "entity_type": entry.entity_type,
            "entity_id": entry.entity_id,
            # The audit keeps the changed values: the sealed fields are sealed here too.
            "before": _seal_values(entry.before, cipher, entry.entity_id),
            "after": _seal_values(entry.after, cipher, entry.entity_id),
            "reason": entry.reason,
        }
        for entry in entries
    ]


class SqlAuditLog:
    def __init__(self, connection: Connection, cipher: FieldCipher) -> None:
        self._connection = connection
        self._cipher = cipher

    def record(self, entries: Sequence[PatientAuditEntry]) -> None:
        if not entries:
            return
        self._connection.execute(patient_audit_log.insert(), audit_rows(entries, self._cipher))

    def redact(self, entity_id: uuid.UUID) -> None:
        self._connection.execute(_REDACT, {"entity_id": entity_id})

    def entries_of(self, entity_id: uuid.UUID) -> list[dict[str, Any]]:
        records = json_records(
            self._connection,
            select(patient_audit_log)
            .where(patient_audit_log.c.entity_id == entity_id)
            .order_by(patient_audit_log.c.id),
        )
        for record in records:
            for side in ("before", "after"):
                record[side] = _open_values(record.get(side), self._cipher, entity_id)
        return records


class SqlPatientUnitOfWork(SqlUnitOfWork):
    """The patient service's transaction: the patient change, its audit rows and its events."""

    schema = PATIENT_SCHEMA
    patients: SqlPatientRepository
    audit: SqlAuditLog

    def __init__(
        self,
        engine: Engine,
        *,
        publish: AfterCommit | None = None,
        cipher: FieldCipher | None = None,
        shared: SharedTransaction | None = None,
    ) -> None:
        super().__init__(engine, publish=publish, shared=shared)
        # Without a cipher: this function's (FIELD_ENCRYPTION_KEY_ID; plaintext when unset locally).
        self._cipher = cipher if cipher is not None else default_field_cipher()

    def _bind(self, connection: Connection) -> None:
        self.patients = SqlPatientRepository(connection, self._cipher)
        self.audit = SqlAuditLog(connection, self._cipher)

    def _bind_stage(self, stage: ChunkStage) -> None:
        # A PatientStage (adapters/staging.py): its repositories answer and record the chunk.
        staged: Any = stage
        self.patients = staged.patients
        self.audit = staged.audit
