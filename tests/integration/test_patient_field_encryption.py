"""Field-level encryption of patient fields against real PostgreSQL and LocalStack KMS: what the
API stores is ciphertext (a raw SQL read shows none of the sealed values, in the row or the
audit log), the API reads it back, legacy plaintext rows stay readable and the backfill tool
seals them (idempotently), duplicate detection still finds a sealed email, and a value moved to
another patient is refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, text

from fakes import FakeBus
from localcloud.aws import client
from support import api_event, call, least_roles, load_function, with_if_match
from therapy_platform.patients.adapters.field_cipher import PLAINTEXT, PREFIX, KmsFieldCipher
from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
from therapy_platform.patients.bootstrap import build
from therapy_platform.patients.domain.patient import PatientDraft
from therapy_platform.patients.ports import ENCRYPTED_FIELDS, FieldDecryptionError
from therapy_platform.patients.use_cases import PatientService, register_patient
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.geography.postcodes import postcode_directory
from tools.encrypt_patient_fields import backfill

pytestmark = pytest.mark.integration

STAFF = "sabine.staff@example.org"


@pytest.fixture(scope="module")
def kms_key(localstack_server: None) -> Iterator[str]:
    """One customer-managed key in LocalStack KMS for this module (scheduled for deletion after)."""
    kms = client("kms")
    key_id = str(kms.create_key(Description="patient fields (integration test)")["KeyMetadata"]["Arn"])
    yield key_id
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)


@pytest.fixture(scope="module", autouse=True)
def no_sealed_rows_left_behind(admin_engine: Engine) -> Iterator[None]:
    """The other modules share this database without a key (plaintext mode), and some list every
    patient: the rows sealed here under this module's key go with it."""
    yield
    sealed = " OR ".join(f"{name} LIKE 'enc1:%'" for name in ("email", "phone", "street", "notes"))
    with admin_engine.begin() as connection:
        connection.execute(
            text(
                "DELETE FROM patient_service.audit_log WHERE entity_id IN"
                f" (SELECT id FROM patient_service.patients WHERE {sealed})"
                " OR before::text LIKE '%enc1:%' OR after::text LIKE '%enc1:%'"
            )
        )
        connection.execute(text(f"DELETE FROM patient_service.patients WHERE {sealed}"))


@pytest.fixture
def cipher(kms_key: str) -> KmsFieldCipher:
    return KmsFieldCipher(kms_key, client("kms"))


@pytest.fixture
def engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url("patient_service"))
    yield engine
    engine.dispose()


def _canaries() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {
        "email": f"kanarie.{tag}@example.org",
        "phone": f"+49 30 {int(tag[:6], 16) % 10**7:07d}",
        "street": f"Kanarienweg {tag}",
        "notes": f"Vertraulich {tag}: nur vormittags erreichbar",
    }


def _request(module: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    event = api_event(
        method,
        path,
        body,
        user=STAFF,
        roles=least_roles(method, path),
        headers=with_if_match(method, path, None),
    )
    return call(module.lambda_handler, event)


def _raw(admin_engine: Engine, sql: str, patient_id: Any) -> list[dict[str, Any]]:
    with admin_engine.connect() as connection:
        return [dict(row) for row in connection.execute(text(sql), {"id": str(patient_id)}).mappings()]


def _draft(**fields: Any) -> PatientDraft:
    base = {
        "first_name": "Kira",
        "last_name": f"Kanarie{uuid.uuid4().hex[:6]}",
        "postcode": "10115",
        "city": "Berlin",
    }
    return PatientDraft.model_validate(base | {"birth_date": "1990-04-01", "symptoms": ["anxiety"]} | fields)


def test_the_api_stores_ciphertext_and_reads_plaintext(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, admin_engine: Engine, cipher: KmsFieldCipher
) -> None:
    module = load_function("patients_api")
    service = build(engine=lambda: engine, publisher=FakeBus, cipher=lambda: cipher)
    monkeypatch.setattr(module, "service", replace(service, geocoder=postcode_directory()))
    canaries = _canaries()
    status, created = _request(
        module,
        "POST",
        "/api/v2/patients",
        {
            "first_name": "Kira",
            "last_name": "Kanarie",
            "postcode": "10115",
            "city": "Berlin",
            "symptoms": ["anxiety"],
        }
        | canaries,
    )
    assert status == 201, created
    patient_id = created["id"]

    (row,) = _raw(admin_engine, "SELECT * FROM patient_service.patients WHERE id = :id", patient_id)
    for field in ENCRYPTED_FIELDS:
        assert str(row[field]).startswith(PREFIX), field
    dump = str(row) + str(
        _raw(admin_engine, "SELECT * FROM patient_service.audit_log WHERE entity_id = :id", patient_id)
    )
    for field, value in canaries.items():
        assert value not in dump, f"{field} readable in a raw SQL read"
    assert row["first_name"] == "Kira"  # searched and sorted on: stays readable

    status, read = _request(module, "GET", f"/api/v2/patients/{patient_id}")
    assert status == 200 and {field: read[field] for field in canaries} == canaries

    # A change is audited with both values, sealed; the export opens them again.
    new_phone = "+49 30 7654321"
    status, patched = _request(module, "PATCH", f"/api/v2/patients/{patient_id}", {"phone": new_phone})
    assert status == 200 and patched["phone"] == new_phone
    audit_dump = str(
        _raw(admin_engine, "SELECT * FROM patient_service.audit_log WHERE entity_id = :id", patient_id)
    )
    assert new_phone not in audit_dump and canaries["phone"] not in audit_dump
    with SqlPatientUnitOfWork(engine, cipher=cipher) as uow:
        entries = uow.audit.entries_of(uuid.UUID(patient_id))
    update = next(entry for entry in entries if entry["action"] == "update")
    assert (update["before"]["phone"], update["after"]["phone"]) == (canaries["phone"], new_phone)


def test_legacy_plaintext_rows_are_read_and_the_backfill_seals_them_once(
    engine: Engine, admin_engine: Engine, cipher: KmsFieldCipher
) -> None:
    canaries = _canaries()
    legacy = PatientService(
        unit_of_work=lambda: SqlPatientUnitOfWork(engine, cipher=PLAINTEXT), geocoder=postcode_directory()
    )
    patient = register_patient(legacy, _draft(**canaries)).value
    (row,) = _raw(admin_engine, "SELECT email FROM patient_service.patients WHERE id = :id", patient.id)
    assert row["email"] == canaries["email"]  # written before encryption was switched on

    with SqlPatientUnitOfWork(engine, cipher=cipher) as uow:
        read = uow.patients.get(patient.id)
    assert read is not None and read.email == canaries["email"]

    first = backfill(admin_engine, cipher, batch_size=7)
    assert first.patients_changed >= 1 and first.audit_entries_changed >= 1
    dump = str(_raw(admin_engine, "SELECT * FROM patient_service.patients WHERE id = :id", patient.id))
    dump += str(
        _raw(admin_engine, "SELECT * FROM patient_service.audit_log WHERE entity_id = :id", patient.id)
    )
    for field, value in canaries.items():
        assert value not in dump, field
    with SqlPatientUnitOfWork(engine, cipher=cipher) as uow:
        sealed = uow.patients.get(patient.id)
    assert sealed is not None and (sealed.email, sealed.phone, sealed.street, sealed.notes) == (
        canaries["email"],
        canaries["phone"],
        canaries["street"],
        canaries["notes"],
    )
    assert backfill(admin_engine, cipher, batch_size=7).values_changed == 0  # idempotent

    # --decrypt (before a downgrade below 0016, or to move to another key) opens them again.
    opened = backfill(admin_engine, cipher, decrypt=True, batch_size=7)
    assert opened.values_changed >= first.values_changed
    (row,) = _raw(
        admin_engine, "SELECT email, notes FROM patient_service.patients WHERE id = :id", patient.id
    )
    assert (row["email"], row["notes"]) == (canaries["email"], canaries["notes"])
    assert backfill(admin_engine, cipher, batch_size=7).values_changed >= first.values_changed


def test_the_backfill_tool_refuses_to_run_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.encrypt_patient_fields import main

    monkeypatch.delenv("FIELD_ENCRYPTION_KEY_ID", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "local")
    assert main([]) == 2


def test_duplicate_detection_finds_a_sealed_email(engine: Engine, cipher: KmsFieldCipher) -> None:
    service = PatientService(
        unit_of_work=lambda: SqlPatientUnitOfWork(engine, cipher=cipher), geocoder=postcode_directory()
    )
    canaries = _canaries()
    patient = register_patient(service, _draft(**canaries)).value
    with SqlPatientUnitOfWork(engine, cipher=cipher) as uow:
        found = uow.patients.find_by_identity(
            email=canaries["email"].upper(),
            last_name=str(patient.last_name).lower(),
            birth_date=date(1990, 4, 1),
        )
        other = uow.patients.find_by_identity(
            email="someone.else@example.org", last_name=str(patient.last_name), birth_date=date(1990, 4, 1)
        )
    assert [match.id for match in found] == [patient.id] and other == []


def test_a_sealed_value_moved_to_another_patient_is_refused(
    engine: Engine, admin_engine: Engine, cipher: KmsFieldCipher
) -> None:
    service = PatientService(
        unit_of_work=lambda: SqlPatientUnitOfWork(engine, cipher=cipher), geocoder=postcode_directory()
    )
    first = register_patient(service, _draft(**_canaries())).value
    second = register_patient(service, _draft(**_canaries())).value
    with admin_engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE patient_service.patients SET notes = (SELECT notes FROM patient_service.patients "
                "WHERE id = :source) WHERE id = :target"
            ),
            {"source": first.id, "target": second.id},
        )
    try:
        with (
            SqlPatientUnitOfWork(engine, cipher=cipher) as uow,
            pytest.raises(FieldDecryptionError, match="notes"),
        ):
            uow.patients.get(second.id)
    finally:  # the backfill test (--decrypt) walks every row: leave none that cannot open
        with admin_engine.begin() as connection:
            connection.execute(
                text("UPDATE patient_service.patients SET notes = NULL WHERE id = :id"), {"id": second.id}
            )
