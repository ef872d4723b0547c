"""Set-based chunks of the operators' bulk loads against real PostgreSQL (issue 15): a chunk
is matched with one read and written with one statement per table; a row the validator
rejects, or a value only the database refuses, rejects that row alone (the database's refusal
sends the chunk row by row through savepoints) and the report is the one the row-by-row load
gives."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from therapist_fakes import FakeGeocoder
from therapy_platform.patients.adapters.field_cipher import default_field_cipher
from therapy_platform.patients.adapters.staging import PatientStage
from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
from therapy_platform.patients.use_cases import PatientService
from therapy_platform.patients.use_cases import bulk_upsert as bulk_upsert_patients
from therapy_platform.platform.bulk_load import BulkReport
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.unit_of_work import SharedTransaction
from therapy_platform.therapists.adapters.staging import TherapistStage
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.use_cases import bulk_upsert

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def therapist_engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url("therapist_service"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def patient_engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url("patient_service"))
    yield engine
    engine.dispose()


def _empty(admin_engine: Engine) -> None:
    with admin_engine.begin() as connection:
        connection.execute(
            text(
                "TRUNCATE therapist_service.therapists, therapist_service.audit_log,"
                " therapist_service.outbox, patient_service.patients, patient_service.audit_log,"
                " patient_service.outbox"
            )
        )


@pytest.fixture(autouse=True)
def empty_tables(admin_engine: Engine) -> None:
    _empty(admin_engine)


def _counts(admin_engine: Engine, schema: str, table: str) -> dict[str, int]:
    with admin_engine.connect() as connection:
        return {
            name: int(connection.execute(text(f"SELECT count(*) FROM {schema}.{name}")).scalar_one())
            for name in (table, "audit_log", "outbox")
        }


def _summary(report: BulkReport) -> tuple[Any, ...]:
    return (
        report.created,
        report.updated,
        report.unchanged,
        [(row.number, row.code, row.reason) for row in report.rejections],
        len(report.event_ids),
    )


def _therapist(number: int, **changes: Any) -> dict[str, Any]:
    return {
        "directory_id": f"S-{number}",
        "first_name": "Hanna",
        "last_name": f"Schäfer{number}",
        "postcode": "52062",
        "email": f"praxis{number}@schaefer.example",
        "procedures": ["VT"],
        **changes,
    }


def _load_therapists(engine: Engine, rows: Sequence[object], *, staged: bool) -> BulkReport:
    shared = SharedTransaction(engine)
    try:
        return bulk_upsert(
            SqlTherapistUnitOfWork(engine, shared=shared),
            FakeGeocoder(),
            rows,
            actor="operator:ci",
            now=NOW,
            chunks=shared,
            staging=TherapistStage(shared) if staged else None,
        ).value
    finally:
        shared.close()


def _therapist_rows() -> list[object]:
    rows: list[object] = [_therapist(number) for number in range(1, 10)]
    # Only the database refuses it: PostgreSQL cannot store a NUL character in text.
    rows[3] = _therapist(4, first_name="Han\x00na")
    rows[5] = _therapist(6, postcode="12")  # the validator refuses it
    rows[7] = _therapist(2, city="Aachen")  # the same therapist as row 2: updates what row 2 created
    return rows


def test_a_staged_chunk_rejects_only_its_bad_rows_and_reports_as_row_by_row(
    therapist_engine: Engine, admin_engine: Engine
) -> None:
    staged = _load_therapists(therapist_engine, _therapist_rows(), staged=True)
    stored = _counts(admin_engine, "therapist_service", "therapists")
    assert staged.created == 6 and staged.updated == 1
    assert [(row.number, row.code) for row in staged.rejections] == [
        (4, "conflict"),
        (6, "validation_failed"),
    ]
    assert "SQLSTATE" in staged.rejections[0].reason and "Han" not in staged.rejections[0].reason
    assert stored == {"therapists": 6, "audit_log": 7, "outbox": 7}

    _empty(admin_engine)
    row_by_row = _load_therapists(therapist_engine, _therapist_rows(), staged=False)
    assert _summary(row_by_row) == _summary(staged)
    assert _counts(admin_engine, "therapist_service", "therapists") == stored


def test_a_staged_load_run_again_changes_nothing(therapist_engine: Engine, admin_engine: Engine) -> None:
    rows: list[object] = [_therapist(number) for number in range(1, 8)]
    first = _load_therapists(therapist_engine, rows, staged=True)
    assert (first.created, first.rejections) == (7, [])
    stored = _counts(admin_engine, "therapist_service", "therapists")
    again = _load_therapists(therapist_engine, rows, staged=True)
    assert (again.created, again.updated, again.unchanged, again.event_ids) == (0, 0, 7, [])
    assert _counts(admin_engine, "therapist_service", "therapists") == stored
    # Matched by email, name and postcode once the directory id is gone: still the same people.
    without_ids: list[object] = [{**_therapist(number), "directory_id": None} for number in range(1, 8)]
    third = _load_therapists(therapist_engine, without_ids, staged=True)
    assert (third.created, third.unchanged) == (0, 7)


def _patient(number: int, **changes: Any) -> dict[str, Any]:
    return {
        "first_name": "Lea",
        "last_name": f"Bauer{number}",
        "birth_date": "1990-04-0" + str(1 + number % 9),
        "email": f"lea{number}@bauer.example",
        "postcode": "52062",
        "symptoms": ["depression"],
        **changes,
    }


def _load_patients(engine: Engine, rows: Sequence[dict[str, Any]], *, staged: bool) -> BulkReport:
    shared = SharedTransaction(engine)
    cipher = default_field_cipher()
    service = PatientService(
        unit_of_work=lambda: SqlPatientUnitOfWork(engine, cipher=cipher, shared=shared),
        geocoder=postcode_directory(),
        clock=lambda: NOW,
    )
    try:
        return bulk_upsert_patients(
            service,
            rows,
            actor="operator:ci",
            chunks=shared,
            staging=PatientStage(shared, cipher) if staged else None,
        )
    finally:
        shared.close()


def test_a_staged_patient_chunk_rejects_only_its_bad_row_and_reports_as_row_by_row(
    patient_engine: Engine, admin_engine: Engine
) -> None:
    rows = [_patient(number) for number in range(1, 8)]
    rows[2] = _patient(3, birth_date="31.02.1990")  # refused by the validator
    rows[4] = _patient(1, city="Aachen")  # row 1 again: updates it
    staged = _load_patients(patient_engine, rows, staged=True)
    assert (staged.created, staged.updated) == (5, 1)
    assert [row.number for row in staged.rejections] == [3]
    stored = _counts(admin_engine, "patient_service", "patients")
    again = _load_patients(patient_engine, rows, staged=True)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)

    _empty(admin_engine)
    row_by_row = _load_patients(patient_engine, rows, staged=False)
    assert _summary(row_by_row) == _summary(staged)
    assert _counts(admin_engine, "patient_service", "patients") == stored
