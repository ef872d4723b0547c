"""What field-level encryption of patient fields costs (patients/adapters/field_cipher.py).

Registers and reads patients, and lists pages of 50, through the use cases (register_patient,
get_patient, list_patients: geocoding offline, the unit of work, the audit rows) against the
local PostgreSQL, three ways:

1. `plaintext`: no encryption (PlaintextFieldCipher), the baseline;
2. `cached_data_key`: one KmsFieldCipher for the whole run, as in a warm Lambda environment
   (a data key seals up to 10,000 values / 5 minutes; reads of values sealed under a known data
   key need no KMS call);
3. `cold_data_key`: a fresh KmsFieldCipher per operation, as in a cold Lambda environment: every
   register calls KMS GenerateDataKey once, every read KMS Decrypt once, a page of 50 (each
   patient sealed under its own data key here) KMS Decrypt 50 times: the worst case.

The variants are interleaved (patient 1 in each, then patient 2 ...), so load from elsewhere on
the machine slows them alike.

KMS is LocalStack's (on this machine, over HTTP): its latency is not AWS KMS's (single-digit
milliseconds inside a region), so the cold figures show the shape, not AWS's numbers. Also
reports the KMS calls per run and the stored size of a sealed value. Runs against a separate
database (`encryption_bench`), which it creates; needs the local PostgreSQL and LocalStack
running (`localcloud up`). Prints the figures and writes benchmarks/results/field_encryption.json.

    .venv/bin/python benchmarks/field_encryption.py [--patients 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in ("infra", "infra/migrations", "layers/shared", "tests", "tests/unit", "benchmarks"):
    sys.path.insert(0, str(ROOT / extra))

from datagen import DataGenerator  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from localcloud import postgres  # noqa: E402
from localcloud.aws import client  # noqa: E402
from runner import upgrade  # noqa: E402
from therapy_platform.patients.adapters.field_cipher import PLAINTEXT, KmsFieldCipher  # noqa: E402
from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork  # noqa: E402
from therapy_platform.patients.domain.patient import PatientDraft, PatientQuery  # noqa: E402
from therapy_platform.patients.ports import FieldCipher  # noqa: E402
from therapy_platform.patients.use_cases import (  # noqa: E402
    PatientService,
    get_patient,
    list_patients,
    register_patient,
)
from therapy_platform.platform.geography.postcodes import postcode_directory  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "field_encryption.json"
DATABASE = "encryption_bench"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def fresh_database() -> str:
    server = create_engine(postgres.admin_url("postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    server.dispose()
    url = postgres.admin_url(DATABASE)
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _insurer(variant: str) -> str:
    """Each variant's patients get their own insurer name: its pages list only them."""
    return "Benchkasse " + variant.replace("_", " ")


def measure(
    url: str, drafts: list[PatientDraft], variants: dict[str, Callable[[], FieldCipher]]
) -> dict[str, Any]:
    """Registers, then reads, each patient once per variant, the variants interleaved so that a
    busy machine slows them alike."""
    engine = create_engine(url)
    timings: dict[str, dict[str, list[float]]] = {
        name: {"register": [], "read": [], "list50": []} for name in variants
    }
    kms_calls = dict.fromkeys(variants, 0)
    ids: dict[str, list[uuid.UUID]] = {name: [] for name in variants}

    def service(current: FieldCipher) -> PatientService:
        return PatientService(
            unit_of_work=lambda: SqlPatientUnitOfWork(engine, cipher=current), geocoder=postcode_directory()
        )

    def timed(name: str, operation: str, action: Callable[[PatientService], Any]) -> Any:
        current = variants[name]()
        before = getattr(current, "kms_calls", 0)
        started = time.perf_counter()
        result = action(service(current))
        timings[name][operation].append((time.perf_counter() - started) * 1000)
        kms_calls[name] += getattr(current, "kms_calls", 0) - before
        return result

    for draft in drafts:
        for name in variants:
            tagged = PatientDraft.model_validate(draft.model_dump() | {"health_insurer": _insurer(name)})
            patient = timed(
                name, "register", lambda s, d=tagged: register_patient(s, d, actor="benchmark").value
            )
            ids[name].append(patient.id)
    for index in range(len(drafts)):
        for name in variants:
            timed(name, "read", lambda s, i=ids[name][index]: get_patient(s, i, actor="benchmark"))
    # A page of 50: with a cold cipher one KMS Decrypt per distinct data key on the page (in the
    # cold variant every patient was sealed under its own data key: the worst case).
    for round_number in range(max(1, len(drafts) // 10)):
        for name in variants:
            query = PatientQuery(insurer=_insurer(name), limit=50, page=1 + round_number % 2)
            page = timed(name, "list50", lambda s, q=query: list_patients(s, q, actor="benchmark").value)
            assert len(page.items) == min(50, len(drafts)), (name, len(page.items))
    figures: dict[str, Any] = {}
    with engine.connect() as connection:
        for name in variants:
            email_chars = connection.execute(
                text("SELECT avg(length(email)) FROM patient_service.patients WHERE id = ANY(:ids)"),
                {"ids": ids[name]},
            ).scalar_one()
            figures[name] = {
                operation: {
                    "p50_ms": percentile(values, 0.5),
                    "p95_ms": percentile(values, 0.95),
                    "n": len(values),
                }
                for operation, values in timings[name].items()
            } | {"kms_calls": kms_calls[name], "stored_email_chars_avg": float(email_chars or 0)}
    engine.dispose()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

    generator = DataGenerator(seed=20261205)
    drafts = []
    for _ in range(args.patients):
        row = generator.patient()
        row["email"] = row.get("email") or f"bench.{uuid.uuid4().hex[:8]}@example.org"
        drafts.append(
            PatientDraft.model_validate({k: v for k, v in row.items() if k in PatientDraft.model_fields})
        )
    url = fresh_database()
    kms = client("kms")
    key_id = kms.create_key(Description="field encryption benchmark")["KeyMetadata"]["Arn"]
    warm = KmsFieldCipher(key_id, kms)
    try:
        variants: dict[str, Callable[[], FieldCipher]] = {
            "plaintext": lambda: PLAINTEXT,
            "cached_data_key": lambda: warm,
            "cold_data_key": lambda: KmsFieldCipher(key_id, kms),
        }
        print(f"{args.patients} registers and reads per variant ({', '.join(variants)}) ...", flush=True)
        figures = measure(url, drafts, variants)
    finally:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)

    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count()},
        "kms": "LocalStack (local HTTP); AWS KMS latency differs",
        "patients": args.patients,
        "variants": figures,
        "run_id": str(uuid.uuid4()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
