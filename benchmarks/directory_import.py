"""Figures for the 116117 directory import at national scale.

1. Import 35,000 directory entries (made-up data in the directory's shape on the real postcode
   geography, about 4 % of them entries the import must skip) with the operators' command
   (`python -m tools.import_directory FILE`): wall time and peak memory (RSS of the process).
2. Import the same file again: wall time and the number of rows written, counted by
   PostgreSQL itself (pg_stat_user_tables) for the therapist tables, listings, audit log and
   outbox. Target: zero. The import report itself (one row plus its skipped items) is counted
   apart: it is the record that the import ran.
3. The deployed function's way (`--function-path`, on by default): the same file as an S3 event
   names it, imported by `therapists.bootstrap.import_file` with the function's set-based chunks
   and after-commit publishing, in a fresh database. The raw file is read from disk instead of
   S3 and the events go to an in-memory bus (LocalStack's EventBridge would measure LocalStack).

Runs against a separate database (`platform_bench_directory`) on the local PostgreSQL, which it
starts if needed. Prints the figures and writes benchmarks/results/directory_import.json.

    .venv/bin/python benchmarks/directory_import.py [--entries 35000]
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
for extra in ("infra", "infra/migrations", "layers/shared", "benchmarks"):
    sys.path.insert(0, str(ROOT / extra))

import psutil  # type: ignore[import-untyped]  # noqa: E402
from calibration import pure_planning  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from localcloud import postgres  # noqa: E402
from localcloud.directory_data import DirectoryDataGenerator, answers  # noqa: E402
from runner import upgrade  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "directory_import.json"
DATABASE = "platform_bench_directory"
ENTRY_TABLES = ("therapists", "audit_log", "outbox", "directory_listings")
REPORT_TABLES = ("directory_imports", "directory_import_items")


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


def rows_written(url: str) -> dict[str, int]:
    """Inserted + updated + deleted rows per therapist_service table since the database began
    (statistics of finished backends; the import process has exited when this is read)."""
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        rows = connection.execute(
            text(
                "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS written FROM pg_stat_user_tables"
                " WHERE schemaname = 'therapist_service'"
            )
        ).all()
    engine.dispose()
    return {row.relname: int(row.written) for row in rows}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_import(
    path: Path,
    url: str,
    root: Path = ROOT,
    command: list[str] | None = None,
    ok_codes: tuple[int, ...] = (0, 1),  # the command's 1: some entries skipped, as the data intends
) -> dict[str, Any]:
    """Import `path` with the operators' command of the checkout at `root` (another checkout's
    code gives a before figure), or with `command`."""
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": f"{root / 'infra'}:{root / 'layers' / 'shared'}"}
    before = rows_written(url)
    cpu_before = _children_cpu()
    started = time.perf_counter()
    process = subprocess.Popen(
        command or [sys.executable, "-m", "tools.import_directory", str(path), "--actor", "benchmark"],
        cwd=root / "infra",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watched = psutil.Process(process.pid)
    peak = 0
    output: list[str] = []
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    process.wait()
    cpu = _children_cpu() - cpu_before
    output.append(process.stdout.read() if process.stdout else "")
    if process.returncode not in ok_codes:
        raise RuntimeError(f"import failed ({process.returncode}):\n{''.join(output)[-3000:]}")
    time.sleep(1.5)  # statistics of the finished backend reach the shared counters
    after = rows_written(url)
    written = {table: after.get(table, 0) - before.get(table, 0) for table in after}
    return {
        "seconds": round(elapsed, 2),
        # The command's own CPU time (start-up and reading the file included; PostgreSQL's not):
        # on a busy machine the wall time is mostly waiting for a core.
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(peak / 2**20, 1),
        "rows_written": sum(written.get(table, 0) for table in ENTRY_TABLES),
        "rows_written_by_table": {table: written.get(table, 0) for table in ENTRY_TABLES},
        "report_rows_written": sum(written.get(table, 0) for table in REPORT_TABLES),
    }


FUNCTION_CHILD = """
import os, sys
sys.path[:0] = {paths!r}
os.environ.setdefault("EVENT_BUS_NAME", "benchmark-bus")  # the module reads its settings at import
from datetime import UTC, datetime
from pathlib import Path
from fakes import FakeBus
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.outbox import SqlOutboxStore
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.therapists.bootstrap import DirectoryImportService, import_file
from therapy_platform.therapists.imports.adapters.store import chunked_import
from therapy_platform.therapists.imports.adapters.store import (
    SqlDirectoryImportUnitOfWork, SqlImportReportStore,
)
from therapy_platform.therapists.imports.domain.reports import ImportResult, StoredFile
from therapy_platform.therapists.imports.ports import RawFile

body = Path({path!r}).read_bytes()
engine = make_engine({url!r}, pool_size=2)  # as the function's import engine
bus = FakeBus()
publish = PublishNow(store=lambda: SqlOutboxStore(engine, "therapist_service"), publisher=lambda: bus)

class LocalRawFiles:
    def get(self, key):
        return RawFile(body, "benchmark-1")

service = DirectoryImportService(
    unit_of_work=lambda: SqlDirectoryImportUnitOfWork(engine, publish=publish),
    reports=lambda: SqlImportReportStore(engine),
    raw_files=lambda bucket: LocalRawFiles(),
    geocoder=postcode_directory,
    chunked=(lambda: chunked_import(engine, publish)) if {chunked!r} else None,
)
result = import_file(service, StoredFile("bench-raw", "raw/2026-11-22/de.json", "benchmark-1"))
assert isinstance(result, ImportResult), result
print("published", len(bus.messages))
"""


def run_function_import(path: Path, url: str, *, chunked: bool = True) -> dict[str, Any]:
    """Import `path` the way the deployed function does (FUNCTION_CHILD), in a subprocess;
    `chunked=False`: entry by entry, as the function did before it took chunks."""
    paths = [str(ROOT / extra) for extra in ("layers/shared", "tests/unit")]
    code = FUNCTION_CHILD.format(paths=paths, path=str(path), url=url, chunked=chunked)
    return run_import(path, url, command=[sys.executable, "-c", code], ok_codes=(0,))


def last_report(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT counts, skip_reasons FROM therapist_service.directory_imports"
                " ORDER BY started_at DESC LIMIT 1"
            )
        ).one()
    engine.dispose()
    return {"counts": row.counts, "skip_reasons": row.skip_reasons}


def main() -> int:
    global DATABASE
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=35_000)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--database", default=DATABASE, help="database of this benchmark (dropped, created)")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another checkout (e.g. `git archive main`): its first import of --before-entries entries"
        " runs right after, in a database of its own, for a before/after figure",
    )
    parser.add_argument("--before-entries", type=int, default=5_000)
    parser.add_argument(
        "--no-function-path",
        dest="function_path",
        action="store_false",
        help="skip the import the deployed function's way",
    )
    args = parser.parse_args()
    DATABASE = args.database

    machine_speed = pure_planning()  # before the imports, on the same machine state
    url = fresh_database()
    data = DirectoryDataGenerator(args.seed).dataset(args.entries)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
        json.dump(answers(data), handle, ensure_ascii=False)
        path = Path(handle.name)
    size_mb = path.stat().st_size / 2**20
    print(f"{len(data['entries'])} entries, {size_mb:.1f} MB; first import ...", flush=True)
    first = run_import(path, url)
    first["report"] = last_report(url)
    print(json.dumps(first), flush=True)
    print("second import of the same file ...", flush=True)
    second = run_import(path, url)
    second["report"] = last_report(url)
    print(json.dumps(second), flush=True)
    function_path: dict[str, Any] = {}
    if args.function_path:
        print("first import the deployed function's way ...", flush=True)
        function_url = fresh_database(f"{DATABASE}_function")
        function_path = run_function_import(path, function_url)
        function_path["report"] = last_report(function_url)
        function_path["entries_per_s"] = round(len(data["entries"]) / function_path["seconds"], 1)
        print(json.dumps(function_path), flush=True)
        # The same moment's figure of the function entry by entry (its way before), on a sample.
        sample = DirectoryDataGenerator(args.seed).dataset(args.before_entries)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
            json.dump(answers(sample), handle, ensure_ascii=False)
            sample_path = Path(handle.name)
        print(f"the function entry by entry, {len(sample['entries'])} entries ...", flush=True)
        entry_by_entry = run_function_import(
            sample_path, fresh_database(f"{DATABASE}_function_entries"), chunked=False
        )
        sample_path.unlink(missing_ok=True)
        entry_by_entry["entries"] = len(sample["entries"])
        entry_by_entry["entries_per_s"] = round(len(sample["entries"]) / entry_by_entry["seconds"], 1)
        function_path["entry_by_entry_before"] = entry_by_entry
        print(json.dumps(entry_by_entry), flush=True)
    path.unlink(missing_ok=True)

    before: dict[str, Any] = {}
    if args.before is not None:
        # Per-entry work does not grow with the tables, so a smaller file gives the old rate.
        sample = DirectoryDataGenerator(args.seed).dataset(args.before_entries)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
            json.dump(answers(sample), handle, ensure_ascii=False)
            sample_path = Path(handle.name)
        print(f"before: {args.before}, first import of {len(sample['entries'])} entries ...", flush=True)
        old = run_import(sample_path, fresh_database(f"{DATABASE}_before"), args.before)
        sample_path.unlink(missing_ok=True)
        before = {
            "code": str(args.before),
            "entries": len(sample["entries"]),
            "first_import": {
                **old,
                "entries_per_s": round(len(sample["entries"]) / old["seconds"], 1),
                "entries_per_cpu_s": round(len(sample["entries"]) / old["cpu_seconds"], 1),
            },
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        }
        print(json.dumps(before), flush=True)

    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        # Other work on the machine slows the first import (CPU-bound per-entry transactions).
        "machine": {"cpus": os.cpu_count(), "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()]},
        "calibration": machine_speed,
        "entries": len(data["entries"]),
        "file_mb": round(size_mb, 1),
        "first_import": {
            **first,
            "entries_per_s": round(len(data["entries"]) / first["seconds"], 1),
            "entries_per_cpu_s": round(len(data["entries"]) / first["cpu_seconds"], 1),
        },
        "second_import": second,
        "function_first_import": function_path,
        "before": before,
        "run_id": str(uuid.uuid4()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
