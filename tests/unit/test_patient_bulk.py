"""Operators' bulk load of patients (patients.use_cases.bulk_upsert) with in-memory adapters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fakes import FakeGeocoder, InMemoryDatabase, InMemoryPatientUnitOfWork, patient_service
from therapy_platform.patients.domain.patient import PatientStatus
from therapy_platform.patients.ports import PatientAuditAction
from therapy_platform.patients.use_cases import BULK_COLUMNS, PatientService, bulk_upsert
from therapy_platform.platform.bulk_load import BulkLoadInterruptedError
from therapy_platform.platform.errors import DependencyUnavailableError

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
ROW: dict[str, Any] = {
    "first_name": "Jürgen",
    "last_name": "Weiß",
    "birth_date": "1978-03-14",
    "email": "juergen.weiss@example.org",
    "postcode": "10115",
    "symptoms": "depression; sleep",
}


def _load(database: InMemoryDatabase, rows: list[Any], **kwargs: Any) -> Any:
    return bulk_upsert(patient_service(database, clock=lambda: NOW), rows, **kwargs)


def test_rows_create_then_update_matching_by_email_last_name_and_birth_date() -> None:
    database = InMemoryDatabase()
    report = _load(database, [ROW, {**ROW, "first_name": "Anna", "email": "anna@example.org"}])
    assert (report.created, report.updated, report.unchanged, report.rejected) == (2, 0, 0, [])
    (juergen,) = [p for p in database.patients.values() if p.first_name == "Jürgen"]
    assert juergen.symptoms == ["depression", "sleep"] and juergen.location.is_known

    # Same person (email in other case), only some cells filled: PATCH semantics.
    again = {
        "email": "JUERGEN.WEISS@example.org",
        "last_name": "weiß",
        "birth_date": "1978-03-14",
        "city": "Berlin",
    }
    report = _load(database, [{**again, "phone": ""}, again])
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    updated = database.patients[juergen.id]
    assert updated.city == "Berlin" and updated.symptoms == juergen.symptoms and updated.phone is None
    assert updated.email == "JUERGEN.WEISS@example.org"  # the file's value is taken
    assert len(database.patients) == 2
    events = [row.envelope.event_type for row in database.outbox]
    assert events == ["patient.created", "patient.created", "patient.updated"]
    assert report.event_ids == [database.outbox[-1].envelope.event_id]
    reasons = [entry.reason for entry in database.patient_audit]
    assert reasons == ["bulk load row 1", "bulk load row 2", "bulk load row 1", "bulk load row 2"]
    assert {entry.actor for entry in database.patient_audit} == {"bulk-load"}
    actions = [entry.action for entry in database.patient_audit]
    assert actions == [PatientAuditAction.CREATE] * 2 + [PatientAuditAction.UPDATE] * 2


def test_spreadsheet_cells_are_understood() -> None:
    database = InMemoryDatabase()
    row = {
        **ROW,
        "therapy_procedures": "VT, TP",
        "languages": "tr;de",
        "group_only": "ja",
        "previous_therapy": "nein",
        "availability": '{"mon": ["08:00-12:00"]}',
        "max_travel_km": "30",
        "status": "searching",
    }
    report = _load(database, [row])
    assert report.created == 1, report.rejected
    (patient,) = database.patients.values()
    assert patient.therapy_procedures == ["VT", "TP"] and patient.languages == ["tr", "de"]
    assert patient.group_only and patient.open_to_group_therapy and not patient.previous_therapy
    assert patient.availability == {"mon": ["08:00-12:00"]} and patient.max_travel_km == 30
    assert patient.status is PatientStatus.SEARCHING


def test_bad_rows_are_reported_by_number_and_the_rest_load() -> None:
    database = InMemoryDatabase()
    rows: list[Any] = [
        ROW,
        {**ROW, "email": None, "first_name": "Ohne Mail"},
        {**ROW, "email": "x@example.org", "symptoms": ""},
        {**ROW, "email": "y@example.org", "availability": "{not json"},
        {**ROW, "email": "z@example.org", "favourite_colour": "blau"},
        "not an object",
        {**ROW, "email": "ok@example.org"},
    ]
    report = _load(database, rows, first_row_number=2)
    assert report.created == 2
    rejected = dict(report.rejected)
    assert sorted(rejected) == [3, 4, 5, 6, 7]
    assert rejected[3] == "email: Pflichtfeld: damit wird mit vorhandenen Patienten abgeglichen"
    assert rejected[4].startswith("symptoms: ")
    assert "availability" in rejected[5]
    assert "favourite_colour" in rejected[6]
    assert rejected[7].startswith("row: ") and "Objekt" in rejected[7]
    # The API's codes and German field messages: a row is refused as the API refuses the record.
    third = report.rejections[0]
    assert (third.number, third.code) == (3, "validation_failed")
    assert [(entry.field, entry.code) for entry in third.errors] == [("email", "missing")]
    assert third.line() == (
        "row 3: validation_failed (Ungültige oder fehlende Angaben): "
        "email: Pflichtfeld: damit wird mit vorhandenen Patienten abgeglichen"
    )
    assert {row.code for row in report.rejections} == {"validation_failed"}


def test_duplicates_already_stored_are_not_guessed_between() -> None:
    database = InMemoryDatabase()
    _load(database, [ROW])
    (existing,) = database.patients.values()
    twin = existing.model_copy(update={"id": existing.id.__class__(int=existing.id.int + 1)})
    database.patients[twin.id] = twin
    report = _load(database, [{**ROW, "city": "Berlin"}])
    ((number, reason),) = report.rejected
    assert number == 1 and "matches 2 patients" in reason
    assert report.rejections[0].code == "conflict"


def test_progress_is_reported_per_row() -> None:
    seen: list[int] = []
    _load(InMemoryDatabase(), [ROW, {"bad": 1}], on_progress=seen.append, first_row_number=2)
    assert seen == [2, 3]


def test_a_database_outage_stops_the_load_with_the_report_so_far() -> None:
    database = InMemoryDatabase()
    calls = {"count": 0}

    def flaky() -> InMemoryPatientUnitOfWork:
        calls["count"] += 1
        if calls["count"] > 2:  # row 1 needs two units of work (match, create)
            raise DependencyUnavailableError("the database cannot be reached right now")
        return InMemoryPatientUnitOfWork(database)

    service = PatientService(unit_of_work=flaky, geocoder=FakeGeocoder(), clock=lambda: NOW)
    with pytest.raises(BulkLoadInterruptedError) as error:
        bulk_upsert(service, [ROW, {**ROW, "email": "b@example.org"}])
    assert error.value.report.created == 1
    assert error.value.report.rejected == [(2, "the database cannot be reached right now")]


def test_the_operator_cli_offers_a_patient_loader() -> None:
    from tools import bulk_load

    loader = bulk_load.LOADERS["patients"]
    assert loader.columns == BULK_COLUMNS
    assert {"first_name", "symptoms", "availability", "status"} <= loader.columns
