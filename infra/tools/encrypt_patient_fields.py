"""Seal the patient fields written before field-level encryption (or open them all again).

    FIELD_ENCRYPTION_KEY_ID=<key> python -m tools.encrypt_patient_fields [--decrypt] [--batch-size N]

(run from infra/ or with infra/ on PYTHONPATH). Connects with DATABASE_URL, by default the local
PostgreSQL's admin URL; against a deployed database use `patient_service_app`. The caller's AWS
credentials need kms:GenerateDataKey and kms:Decrypt on the key (PatientFieldKeyUsePolicy).

Walks `patient_service.patients` and `patient_service.audit_log` in id order, one transaction per
batch (rows locked while sealed), and seals every value of `ENCRYPTED_FIELDS` that is still
plaintext; sealed values are left alone, so running it again changes nothing (idempotent) and an
interrupted run is simply started again. `--decrypt` opens every sealed value instead (before a
migration downgrade below 0016, or a key change: decrypt with the old key, seal with the new).
Nothing is published and `updated_at` is not touched: the values do not change, only their
form. Prints counts, never values.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update

from therapy_platform.patients.adapters.field_cipher import field_cipher_for, is_sealed
from therapy_platform.patients.adapters.tables import patient_audit_log, patients
from therapy_platform.patients.ports import ENCRYPTED_FIELDS, FieldCipher
from therapy_platform.patients.settings import FieldEncryptionSettings
from therapy_platform.platform.database import make_engine

FIELDS = sorted(ENCRYPTED_FIELDS)


@dataclass
class BackfillReport:
    patients_changed: int = 0
    audit_entries_changed: int = 0
    values_changed: int = 0


def _converter(cipher: FieldCipher, *, decrypt: bool) -> Callable[[str, str, uuid.UUID], str | None]:
    """The new form of one value, or None when it already has the wanted form."""

    def convert(value: str, field: str, record_id: uuid.UUID) -> str | None:
        if decrypt:
            return cipher.decrypt(value, field=field, record_id=record_id) if is_sealed(value) else None
        return None if is_sealed(value) else cipher.encrypt(value, field=field, record_id=record_id)

    return convert


def _converted_values(
    values: Any, record_id: uuid.UUID, convert: Callable[[str, str, uuid.UUID], str | None]
) -> tuple[dict[str, Any] | None, int]:
    if not isinstance(values, dict):
        return None, 0
    changed = {}
    for field in FIELDS:
        value = values.get(field)
        if isinstance(value, str) and (new := convert(value, field, record_id)) is not None:
            changed[field] = new
    return ({**values, **changed} if changed else None), len(changed)


def backfill(
    engine: Engine, cipher: FieldCipher, *, decrypt: bool = False, batch_size: int = 500
) -> BackfillReport:
    """Seal (or with `decrypt` open) every patient field value and audit value not yet in that form."""
    convert = _converter(cipher, decrypt=decrypt)
    report = BackfillReport()
    after: Any = None
    while True:
        with engine.begin() as connection:
            statement = select(patients.c.id, *(patients.c[field] for field in FIELDS)).order_by(
                patients.c.id
            )
            if after is not None:
                statement = statement.where(patients.c.id > after)
            rows = connection.execute(statement.limit(batch_size).with_for_update()).mappings().all()
            for row in rows:
                changes = {
                    field: new
                    for field in FIELDS
                    if isinstance(row[field], str)
                    and (new := convert(row[field], field, row["id"])) is not None
                }
                if changes:
                    connection.execute(update(patients).where(patients.c.id == row["id"]).values(**changes))
                    report.patients_changed += 1
                    report.values_changed += len(changes)
        if len(rows) < batch_size:
            break
        after = rows[-1]["id"]
    last = 0
    while True:
        with engine.begin() as connection:
            audit = patient_audit_log
            rows = (
                connection.execute(
                    select(audit.c.id, audit.c.entity_id, audit.c.before, audit.c.after)
                    .where(audit.c.id > last)
                    .order_by(audit.c.id)
                    .limit(batch_size)
                    .with_for_update()
                )
                .mappings()
                .all()
            )
            for row in rows:
                before, before_count = _converted_values(row["before"], row["entity_id"], convert)
                after_values, after_count = _converted_values(row["after"], row["entity_id"], convert)
                if before_count or after_count:
                    values = {"before": before} if before_count else {}
                    values |= {"after": after_values} if after_count else {}
                    connection.execute(update(audit).where(audit.c.id == row["id"]).values(**values))
                    report.audit_entries_changed += 1
                    report.values_changed += before_count + after_count
        if len(rows) < batch_size:
            break
        last = rows[-1]["id"]
    return report


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from localcloud import postgres

    return postgres.admin_url()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.encrypt_patient_fields", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--decrypt", action="store_true", help="open every sealed value instead")
    parser.add_argument("--batch-size", type=int, default=500)
    arguments = parser.parse_args(argv)
    settings = FieldEncryptionSettings.from_env()
    if settings.key_id is None:
        print("FIELD_ENCRYPTION_KEY_ID is not set: nothing to seal with", file=sys.stderr)
        return 2
    engine = make_engine(_database_url())
    try:
        report = backfill(
            engine, field_cipher_for(settings), decrypt=arguments.decrypt, batch_size=arguments.batch_size
        )
    finally:
        engine.dispose()
    verb = "opened" if arguments.decrypt else "sealed"
    print(
        f"{verb} {report.values_changed} values: {report.patients_changed} patients, "
        f"{report.audit_entries_changed} audit entries"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
