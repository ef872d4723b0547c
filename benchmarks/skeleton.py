"""Walking-skeleton figures: stack start-up, API latency through API Gateway, outbox-to-Kafka
throughput and peak memory of the running stack. Prints them and writes
benchmarks/results/skeleton.json. Needs nothing running: it brings the stack up itself.

    .venv/bin/python benchmarks/skeleton.py [--requests 200] [--events 1000] [--skip-fresh]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in ("infra", "layers/shared", "tests"):
    sys.path.insert(0, str(ROOT / extra))

import psutil  # noqa: E402

from localcloud import cli, identity, kafka, localstack, postgres, smtp, stack  # noqa: E402
from localcloud.aws import client  # noqa: E402
from localcloud.paths import STATE_DIR  # noqa: E402
from localcloud.process import read_pid  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "skeleton.json"
SERVERS = (("postgres", postgres), ("kafka", kafka), ("smtp", smtp), ("localstack", localstack))


class MemorySampler(threading.Thread):
    """Samples the summed RSS of every server process tree the project started."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self.peak_by_server: dict[str, float] = {}
        self._stop = threading.Event()

    def sample(self) -> None:
        total = 0.0
        for name, module in SERVERS:
            pid = read_pid(getattr(module, "SERVICE", None) or module.NAME)
            if pid is None:
                continue
            try:
                root = psutil.Process(pid)
                processes = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            rss = 0.0
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += process.memory_info().rss / 2**20
            self.peak_by_server[name] = max(self.peak_by_server.get(name, 0.0), rss)
            total += rss
        self.peak_mb = max(self.peak_mb, total)

    def run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def stop(self) -> None:
        self._stop.set()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def measure_startup(skip_fresh: bool) -> dict[str, float]:
    figures: dict[str, float] = {}
    if not skip_fresh:
        cli.down()
        # "From nothing": no database, no LocalStack state, no build cache (virtualenvs are kept:
        # installing packages measures the registry, not the stack).
        for leftover in ("postgres", "localstack", "stack.json", "seed.json"):
            path = STATE_DIR / leftover
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        shutil.rmtree(ROOT / ".aws-sam", ignore_errors=True)
        started = time.perf_counter()
        cli.up()
        figures["first_run_s"] = time.perf_counter() - started
    started = time.perf_counter()
    cli.up()
    figures["second_run_s"] = time.perf_counter() - started
    return figures


def measure_latency(base_url: str, count: int, cold_starts: int) -> dict[str, float]:
    body = {
        "first_name": "Bench",
        "last_name": "Müller",
        "postcode": "10115",
        "city": "Berlin",
        "symptoms": ["depression"],
    }
    # The API needs a bearer token (the local identity provider's); the latency includes the
    # authorizer, whose verdict API Gateway caches per token.
    staff = identity.BearerSession("staff", user="benchmark@praxisvermittlung.example.de")
    lambda_client = client("lambda")
    function = stack.resolve_function("PatientsApiFunction")
    cold: list[float] = []
    for index in range(cold_starts):
        # A configuration change retires the warm environments: the next request is a cold start.
        config = lambda_client.get_function_configuration(FunctionName=function)
        variables = {**config["Environment"]["Variables"], "BENCH_COLD_START": str(index)}
        lambda_client.update_function_configuration(
            FunctionName=function, Environment={"Variables": variables}
        )
        lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function)
        started = time.perf_counter()
        response = staff.post(f"{base_url}/api/v2/patients", json=body, timeout=120)
        cold.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.text
    warm_post: list[float] = []
    warm_get: list[float] = []
    last_id = None
    for _ in range(count):
        started = time.perf_counter()
        response = staff.post(f"{base_url}/api/v2/patients", json=body, timeout=60)
        warm_post.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.text
        last_id = response.json()["id"]
        started = time.perf_counter()
        response = staff.get(f"{base_url}/api/v2/patients/{last_id}", timeout=60)
        warm_get.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return {
        "cold_post_p50_ms": statistics.median(cold),
        "cold_post_max_ms": max(cold),
        "cold_starts": len(cold),
        "warm_post_p50_ms": percentile(warm_post, 0.50),
        "warm_post_p95_ms": percentile(warm_post, 0.95),
        "warm_get_p50_ms": percentile(warm_get, 0.50),
        "warm_get_p95_ms": percentile(warm_get, 0.95),
        "requests": count,
    }


def measure_outbox_to_kafka(count: int) -> dict[str, float]:
    """Write `count` patients with their outbox rows straight into the database (as the API
    would, minus the immediate publish), then time the relay + bus + queue + bridge until Kafka
    has all (benchmarks/event_throughput.py measures this path in detail: lost and duplicated
    per eventId, the bridge leg alone)."""
    from sqlalchemy import create_engine

    from cloud_support import consume_until
    from therapy_platform.contracts.symptoms import Symptom
    from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
    from therapy_platform.patients.domain.patient import PatientDraft
    from therapy_platform.patients.use_cases import PatientService, register_patient
    from therapy_platform.platform.geography.postcodes import postcode_directory

    engine = create_engine(postgres.admin_url())
    service = PatientService(unit_of_work=lambda: SqlPatientUnitOfWork(engine), geocoder=postcode_directory())
    keys: set[str] = set()
    for index in range(count):
        draft = PatientDraft(
            first_name=f"Durchsatz{index}", last_name="Schäfer", postcode="50667", symptoms=[Symptom.BURNOUT]
        )
        keys.add(str(register_patient(service, draft, actor="benchmark").value.id))
    engine.dispose()

    started = time.perf_counter()
    relay = stack.invoke("PatientOutboxRelayFunction", {"batch_size": 500, "max_batches": 100})
    relayed_s = time.perf_counter() - started
    if relay.error:
        raise RuntimeError(f"relay failed: {relay.payload}")
    seen = consume_until(
        "patient-events", lambda events: keys <= {e["key"] for e in events.values()}, timeout_s=600
    )
    total_s = time.perf_counter() - started
    arrived = len(keys & {e["key"] for e in seen.values()})
    return {
        "events": count,
        "arrived": arrived,
        "relay_to_bus_s": relayed_s,
        "outbox_to_kafka_s": total_s,
        "events_per_s": arrived / total_s if total_s else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--skip-fresh", action="store_true", help="do not wipe state to time a first run")
    args = parser.parse_args()

    sampler = MemorySampler()
    sampler.start()
    startup = measure_startup(args.skip_fresh)
    info = stack.StackInfo.load()
    latency = measure_latency(info.api_base_url, args.requests, args.cold_starts)
    throughput = measure_outbox_to_kafka(args.events)
    sampler.sample()
    sampler.stop()

    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "startup": startup,
        "api_latency": latency,
        "outbox_to_kafka": throughput,
        "peak_memory_mb": {"total": sampler.peak_mb, **sampler.peak_by_server},
        "run_id": str(uuid.uuid4()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
