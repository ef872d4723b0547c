"""Figures for the self-registration intake (docs/registration-intake.md).

Produces N signed registrations (plus every tenth one replayed and every twentieth forged) to a
fresh topic on the local Tansu broker, then drains it through the local event-source stand-in
(infra/localcloud/kafka_source.py: poll, Lambda's Kafka event shape, commit after success) into
RegistrationIntakeFunction's handler, called in-process against PostgreSQL (its own database
`platform_bench_intake`, migrated to head; the bus replaced by an in-memory publisher so LocalStack
is out of the measurement; the field cipher is off as locally). Reports records per second end to
end and the handler's p50/p95 per batch. Needs the local cloud's PostgreSQL and Tansu running
(`localcloud up`). Prints the figures and writes benchmarks/results/registration_intake.json.

    .venv/bin/python benchmarks/registration_intake.py [--registrations 500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in ("infra", "infra/migrations", "layers/shared", "tests", "tests/unit", "benchmarks"):
    sys.path.insert(0, str(ROOT / extra))

# What the handler module validates at import (nothing here reaches AWS: the adapters are replaced).
os.environ.update(
    {
        "EVENT_BUS_NAME": "bench",
        "EVENT_SOURCE": "therapy-platform.patient-service",
        "REGISTRATION_SECRET_ARN": "arn:aws:secretsmanager:eu-central-1:000000000000:secret:bench",
        "FEATURE_FLAGS_STORE": "ssm",
        "FEATURE_FLAGS_LOCATION": "/therapy-platform/bench/feature-flags",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)

from sqlalchemy import create_engine, text  # noqa: E402

from fakes import FakeBus  # noqa: E402
from localcloud import kafka, postgres  # noqa: E402
from localcloud.kafka_source import KafkaEventSource, consumer_for  # noqa: E402
from localcloud.registrations import publish, signed_record  # noqa: E402
from runner import upgrade  # noqa: E402
from support import FakeLambdaContext, load_function  # noqa: E402
from therapy_platform.patients.adapters.parked_registrations import SqlParkedRegistrations  # noqa: E402
from therapy_platform.patients.bootstrap import build  # noqa: E402
from therapy_platform.platform.feature_flags import FixedFlags  # noqa: E402
from therapy_platform.platform.metrics import RecordingMetrics  # noqa: E402

DATABASE = "platform_bench_intake"
RESULTS = ROOT / "benchmarks" / "results" / "registration_intake.json"
SECRET = b"benchmark-registration-key"


def _engine() -> Any:
    server = create_engine(postgres.admin_url("postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    server.dispose()
    engine = create_engine(postgres.admin_url(DATABASE))
    upgrade(engine)
    return engine


def _registration(index: int) -> dict[str, Any]:
    return {
        "registration_id": str(uuid.uuid4()),
        "submitted_at": datetime.now(UTC).isoformat(),
        "patient": {
            "first_name": "Bench",
            "last_name": f"Anmeldung{index}",
            "postcode": f"{10115 + index % 800:05d}",
            "email": f"bench{index}@example.org",
            "symptoms": ["anxiety", "sleep"],
            "birth_date": "1988-03-02",
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--registrations", type=int, default=500)
    args = parser.parse_args()
    engine = _engine()
    topic = f"patient-registrations-bench-{uuid.uuid4().hex[:8]}"
    module = load_function("registration_intake")
    module.service = build(engine=lambda: engine, publisher=lambda: FakeBus())
    module.parked = SqlParkedRegistrations(lambda: engine)
    module.secret = lambda: SECRET
    module.flags = FixedFlags()
    module.metrics = RecordingMetrics()

    records = []
    for index in range(args.registrations):
        signed = signed_record(_registration(index), SECRET)
        records.append(signed)
        if index % 10 == 0:
            records.append(signed)  # replayed
        if index % 20 == 0:
            records.append(signed_record(_registration(index), b"forged"))
    began = time.perf_counter()
    for kafka_record in records:
        publish(replace(kafka_record, topic=topic))
    produce_s = time.perf_counter() - began

    batches: list[float] = []

    def deliver(event: dict[str, Any]) -> None:
        started = time.perf_counter()
        module.lambda_handler(event, FakeLambdaContext())
        batches.append((time.perf_counter() - started) * 1000)

    source = KafkaEventSource(
        consumer_for(kafka.bootstrap_servers(), topic=topic, group=f"bench-{topic}"),
        deliver,
        kafka.bootstrap_servers(),
    )
    began = time.perf_counter()
    delivered = 0
    deadline = time.monotonic() + 600
    while delivered < len(records) and time.monotonic() < deadline:
        delivered += source.poll_once(timeout_ms=1000)
    drain_s = time.perf_counter() - began
    source.consumer.close()

    with engine.connect() as connection:
        patients = connection.execute(text("SELECT count(*) FROM patient_service.patients")).scalar_one()
        parked = connection.execute(
            text("SELECT count(*) FROM patient_service.parked_registrations")
        ).scalar_one()
    metrics = module.metrics
    results = {
        "registrations": args.registrations,
        "records": len(records),
        "delivered": delivered,
        "patients_created": int(patients),
        "parked": int(parked),
        "replayed": int(metrics.total("RegistrationsReplayed")),
        "produce_s": round(produce_s, 2),
        "drain_s": round(drain_s, 2),
        "records_per_s": round(delivered / drain_s, 1) if drain_s else None,
        "batches": len(batches),
        "batch_ms_p50": round(statistics.median(batches), 1) if batches else None,
        "batch_ms_p95": round(statistics.quantiles(batches, n=20)[-1], 1) if len(batches) >= 2 else None,
        "note": "2 shared cores, other runs in parallel: noisy; handler in-process, local PostgreSQL + Tansu",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    engine.dispose()
    server = create_engine(postgres.admin_url("postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
    server.dispose()
    return 0 if delivered == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
