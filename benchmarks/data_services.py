"""Figures for the patient and therapist services at national scale.

1. Bulk-load 35,000 therapists (about 20,000 practices) with the operators' command
   (`python -m tools.bulk_load therapists FILE.json`, its default processes side by side, or
   `--jobs N`): wall time, CPU time of all its processes, peak memory (largest process).
2. Bulk-load 100,000 patients the same way. With `--also-one-process`, both loads run again
   with `--jobs 1` in a database of their own: the one-process figure of the same moment.
3. With both loaded: p50/p95 handler latency of list, read, create and update for both APIs,
   calling the Lambda handlers in-process against the same PostgreSQL (so the figure is the
   handler + database; the EventBridge publish is replaced by an in-memory bus to keep
   LocalStack out of the measurement).

Runs against a separate database (`platform_bench`) on the local PostgreSQL, which it starts if
needed. Prints the figures and writes benchmarks/results/data_services.json.

    .venv/bin/python benchmarks/data_services.py [--therapists 35000] [--patients 100000] [--requests 200]
        [--jobs N] [--also-one-process]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in ("infra", "infra/migrations", "layers/shared", "tests", "tests/unit", "benchmarks"):
    sys.path.insert(0, str(ROOT / extra))

from calibration import pure_planning  # noqa: E402
from datagen import DataGenerator  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from fakes import FakeBus  # noqa: E402
from localcloud import postgres  # noqa: E402
from runner import upgrade  # noqa: E402
from support import api_event, call, load_function  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "data_services.json"
DATABASE = "platform_bench"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def fresh_database(name: str | None = None) -> str:
    name = name or DATABASE
    postgres.start()
    server = create_engine(postgres.admin_url("postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    server.dispose()
    url = postgres.admin_url(name)
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bulk_load(
    kind: str, rows: list[dict[str, Any]], url: str, root: Path = ROOT, jobs: int | None = None
) -> dict[str, Any]:
    """Load `rows` with the operators' command of the checkout at `root` (another checkout's
    code gives a before figure), with `--jobs` if given."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
        json.dump(rows, handle, ensure_ascii=False)
        path = handle.name
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": f"{root / 'infra'}:{root / 'layers' / 'shared'}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cpu_before = _children_cpu()
    started = time.perf_counter()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.bulk_load",
            kind,
            path,
            "--actor",
            "benchmark",
            *(["--jobs", str(jobs)] if jobs is not None else []),
        ],
        cwd=root / "infra",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    Path(path).unlink(missing_ok=True)
    if completed.returncode != 0:
        raise RuntimeError(
            f"bulk load of {kind} failed ({completed.returncode}):\n{completed.stdout[-3000:]}"
        )
    return {
        "rows": len(rows),
        "jobs": jobs if jobs is not None else "default",
        "seconds": elapsed,
        "rows_per_s": len(rows) / elapsed,
        # The command's own CPU time, all its processes (start-up included; PostgreSQL's not): on
        # a busy machine the wall time is mostly waiting for a core, and rows per CPU second says
        # what one core does.
        "cpu_seconds": round(cpu, 2),
        "rows_per_cpu_s": round(len(rows) / cpu, 1) if cpu else None,
        # ru_maxrss of children is the largest child (or its side-by-side process) so far: a new
        # maximum means this load set it. Side by side, each process holds its part only.
        "peak_rss_mb": max(after, before) / 1024,
    }


def latency(url: str, requests: int, generator: DataGenerator) -> dict[str, Any]:
    os.environ.update({"DATABASE_URL": url, "EVENT_BUS_NAME": "bench", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    engine = create_engine(url)
    figures: dict[str, Any] = {}
    for resource_name, function, make_body, patch_body, list_query in (
        (
            "patients",
            "patients_api",
            generator.patient,
            {"notes": "Rückruf erbeten"},
            {"postcode_prefix": "10"},
        ),
        (
            "therapists",
            "therapists_api",
            lambda: generator.therapist(None, generator._postcode()),
            {"potentially_available": True},
            {"postcode_prefix": "10", "procedure": "VT"},
        ),
    ):
        os.environ["EVENT_SOURCE"] = f"therapy-platform.{resource_name[:-1]}-service"
        module = load_function(function)
        schema = f"{resource_name[:-1]}_service"
        # The bus is LocalStack's business, not this figure's.
        if hasattr(module, "deps"):
            module.deps.publisher = lambda: FakeBus()
        else:  # a handler on its service's composition root
            module.service = module.bootstrap.build(publisher=FakeBus)
        with engine.connect() as connection:
            ids = [
                str(row[0])
                for row in connection.execute(
                    text(f"SELECT id FROM {schema}.{resource_name} ORDER BY random() LIMIT :n"),
                    {"n": requests},
                )
            ]
        timings: dict[str, list[float]] = {"list": [], "read": [], "create": [], "update": []}
        for index in range(requests):
            for operation, event in (
                ("list", api_event("GET", f"/api/v2/{resource_name}", query={**list_query, "limit": "50"})),
                ("read", api_event("GET", f"/api/v2/{resource_name}/{ids[index % len(ids)]}")),
                ("create", api_event("POST", f"/api/v2/{resource_name}", make_body())),
                (
                    "update",
                    # If-Match * : any current version (the staff frontend sends the ETag it read).
                    api_event(
                        "PATCH",
                        f"/api/v2/{resource_name}/{ids[index % len(ids)]}",
                        patch_body,
                        headers={"If-Match": "*"},
                    ),
                ),
            ):
                started = time.perf_counter()
                status, body = call(module.lambda_handler, event)
                timings[operation].append((time.perf_counter() - started) * 1000)
                if status >= 300:
                    raise RuntimeError(f"{operation} {resource_name} answered {status}: {body}")
        figures[resource_name] = {
            operation: {
                "p50_ms": percentile(values, 0.5),
                "p95_ms": percentile(values, 0.95),
                "n": len(values),
            }
            for operation, values in timings.items()
        }
    engine.dispose()
    return figures


def main() -> int:
    global DATABASE
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--therapists", type=int, default=35_000)
    parser.add_argument("--practices", type=int, default=20_000)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database", default=DATABASE, help="database of this benchmark (dropped, created)")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another checkout (e.g. `git archive main`): its bulk loads run right after, on the first"
        " --before-rows rows of each kind in a database of their own, for a before/after figure",
    )
    parser.add_argument("--before-rows", type=int, default=5_000)
    parser.add_argument("--jobs", type=int, default=None, help="the bulk loads' --jobs (default: theirs)")
    parser.add_argument(
        "--also-one-process",
        action="store_true",
        help="load both files again with --jobs 1 (a database of their own) for a paired figure",
    )
    args = parser.parse_args()
    DATABASE = args.database

    machine_speed = pure_planning()  # before the loads, on the same machine state
    generator = DataGenerator(seed=20261122)
    url = fresh_database()
    therapists = list(generator.therapists(args.therapists, practices=args.practices))
    for number, row in enumerate(therapists):
        row["directory_id"] = f"bench-{number}"
    print(f"bulk-loading {len(therapists)} therapists ...", flush=True)
    therapist_load = bulk_load("therapists", therapists, url, jobs=args.jobs)
    print(json.dumps(therapist_load), flush=True)
    patients = list(generator.patients(args.patients))
    print(f"bulk-loading {len(patients)} patients ...", flush=True)
    patient_load = bulk_load("patients", patients, url, jobs=args.jobs)
    print(json.dumps(patient_load), flush=True)
    handler_latency: dict[str, Any] = {}
    if args.requests:  # --requests 0: the bulk loads only
        print(f"measuring handler latency ({args.requests} requests per operation) ...", flush=True)
        handler_latency = latency(url, args.requests, generator)

    one_process: dict[str, Any] = {}
    if args.also_one_process:
        print("the same loads in one process ...", flush=True)
        one_url = fresh_database(f"{DATABASE}_one_process")
        one_process = {
            "bulk_load_therapists": bulk_load("therapists", therapists, one_url, jobs=1),
            "bulk_load_patients": bulk_load("patients", patients, one_url, jobs=1),
        }
        print(json.dumps(one_process), flush=True)

    before: dict[str, Any] = {}
    if args.before is not None:
        # Per-row work does not grow with the table, so a sample gives the old rate.
        print(f"before: {args.before}, {args.before_rows} rows of each kind ...", flush=True)
        before_url = fresh_database(f"{DATABASE}_before")
        before = {
            "code": str(args.before),
            "bulk_load_therapists": bulk_load(
                "therapists", therapists[: args.before_rows], before_url, args.before
            ),
            "bulk_load_patients": bulk_load(
                "patients", patients[: args.before_rows], before_url, args.before
            ),
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        }
        print(json.dumps(before), flush=True)

    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        # Other work on the machine slows the loads (CPU-bound): the load average says how much.
        "machine": {"cpus": os.cpu_count(), "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()]},
        "calibration": machine_speed,
        "bulk_load_therapists": therapist_load,
        "bulk_load_patients": patient_load,
        "handler_latency": handler_latency,
        "one_process": one_process,
        "before": before,
        "run_id": str(uuid.uuid4()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
