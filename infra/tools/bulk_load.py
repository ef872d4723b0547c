"""Operator bulk load: create or update records from a CSV or JSON file.

    python -m tools.bulk_load therapists FILE.csv|FILE.json [--actor NAME] [--dry-run] [--jobs N]

(run from infra/ or with infra/ on PYTHONPATH). Connects with DATABASE_URL, by default the local
PostgreSQL's admin URL (`localcloud.postgres.admin_url()`); against a deployed database use the
service's own role, e.g. therapist_service_app for therapists.

CSV: a header row with the field names of the API (e.g. first_name, last_name, postcode, email,
procedures), comma or semicolon separated, UTF-8 (a BOM is fine). Blank cells mean "not given";
lists as "VT, TP"; schedules as JSON text ({"mon": ["08:00-09:00"]}); flags true/false or ja/nein.
JSON: a list of objects with the same keys, or {"<kind>": [...]}.

Rows load in chunks of 500, one transaction each (a dry run: each row its own transaction): a
chunk reads what its rows may match with one query and writes with one statement per table;
should the database refuse any of it, the chunk runs again with each row in its own savepoint,
so a rejected row never undoes others; an interrupted load keeps the chunks committed
before (the report counts only those; loading the file again picks up the rest). A file of at
least 1,000 rows loads in up to `--jobs` processes side by side (default: one per CPU, at most 4,
at least 500 rows each), each with its own connection and chunks: rows that may describe the
same person (same last name, or same directory id) always go to the same process, in file
order, so the outcome is that of loading the rows one after the other; the report merges the
processes' reports. Rows that change something write their events to the service's outbox;
the scheduled outbox relay publishes them. Exit code: 0 all rows loaded, 1 some rows rejected,
2 the file or arguments are unusable, 3 interrupted.

Adding a kind: write its use case on `platform.bulk_load.load_rows` (one transaction per row,
the shared `BulkReport`, `BulkLoadInterruptedError` when the database goes away; for speed a
`ChunkStaging` backed by the service's `ChunkStage`), and register a `Loader` in `LOADERS` below.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
import multiprocessing
import os
import queue
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import Engine

from therapy_platform.patients.adapters.field_cipher import default_field_cipher
from therapy_platform.patients.adapters.staging import PatientStage
from therapy_platform.patients.adapters.store import SqlPatientUnitOfWork
from therapy_platform.patients.use_cases import BULK_COLUMNS as PATIENT_BULK_COLUMNS
from therapy_platform.patients.use_cases import PatientService
from therapy_platform.patients.use_cases import bulk_partition_keys as patient_partition_keys
from therapy_platform.patients.use_cases import bulk_upsert as bulk_upsert_patients
from therapy_platform.platform.bulk_load import BulkLoadInterruptedError, BulkReport, combined, partition_rows
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.errors import DomainError
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.unit_of_work import SharedTransaction
from therapy_platform.therapists.adapters.staging import TherapistStage
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.domain.therapist import TherapistImportRow
from therapy_platform.therapists.use_cases import bulk_partition_keys as therapist_partition_keys
from therapy_platform.therapists.use_cases import bulk_upsert

EXIT_OK, EXIT_REJECTED, EXIT_UNUSABLE, EXIT_INTERRUPTED = 0, 1, 2, 3
# Below this many rows per process, starting processes costs more than it saves.
ROWS_PER_JOB = 500
DEFAULT_MAX_JOBS = 4


@dataclass(frozen=True)
class LoadRun:
    engine: Engine
    actor: str
    now: datetime
    first_row_number: int
    on_progress: Callable[[int], None]
    dry_run: bool
    row_numbers: Sequence[int] | None = None  # a part of the file: each row's number in it


@dataclass(frozen=True)
class Loader:
    description: str
    columns: frozenset[str]  # accepted keys; a file with any other column is refused up front
    load: Callable[[Iterable[object], LoadRun], BulkReport]
    partition_keys: Callable[[object], Iterable[Hashable]]  # rows sharing one load in one process


class _DryRunTherapistUnitOfWork(SqlTherapistUnitOfWork):
    """Runs every statement, then rolls back on leaving: validation and matching, no writes.
    (Rows of the same file do not see each other in a dry run.)"""

    def commit(self) -> None:
        pass


def _load_therapists(rows: Iterable[object], run: LoadRun) -> BulkReport:
    unit_of_work: SqlTherapistUnitOfWork
    shared: SharedTransaction | None = None
    if run.dry_run:
        unit_of_work = _DryRunTherapistUnitOfWork(run.engine)
    else:
        shared = SharedTransaction(run.engine)
        unit_of_work = SqlTherapistUnitOfWork(run.engine, shared=shared)
    try:
        return bulk_upsert(
            unit_of_work,
            # Offline postcode centroids: fast and never rate-limited, right for thousands of rows.
            postcode_directory(),
            rows,
            actor=run.actor,
            now=run.now,
            first_row_number=run.first_row_number,
            on_progress=run.on_progress,
            chunks=shared,
            # Set-based chunks: one read and one statement per table for 500 rows.
            staging=None if shared is None else TherapistStage(shared),
            row_numbers=run.row_numbers,
        ).value
    finally:
        if shared is not None:
            shared.close()


class _DryRunPatientUnitOfWork(SqlPatientUnitOfWork):
    """Validation and matching without writes (rolled back on leaving)."""

    def commit(self) -> None:
        pass


def _load_patients(rows: Iterable[object], run: LoadRun) -> BulkReport:
    shared = None if run.dry_run else SharedTransaction(run.engine)
    cipher = default_field_cipher()

    def unit_of_work() -> SqlPatientUnitOfWork:
        if shared is None:
            return _DryRunPatientUnitOfWork(run.engine, cipher=cipher)
        return SqlPatientUnitOfWork(run.engine, cipher=cipher, shared=shared)

    # No after-commit hook: the scheduled outbox relay publishes the rows' events. Offline
    # postcode centroids: fast and never rate-limited, right for thousands of rows.
    service = PatientService(unit_of_work=unit_of_work, geocoder=postcode_directory(), clock=lambda: run.now)
    try:
        return bulk_upsert_patients(
            service,
            cast(Iterable[Mapping[str, Any]], rows),  # non-objects are rejected per row
            actor=run.actor,
            first_row_number=run.first_row_number,
            on_progress=run.on_progress,
            chunks=shared,
            # Set-based chunks: one read and one statement per table for 500 rows.
            staging=None if shared is None else PatientStage(shared, cipher),
            row_numbers=run.row_numbers,
        )
    finally:
        if shared is not None:
            shared.close()


LOADERS: dict[str, Loader] = {
    "therapists": Loader(
        description="therapists (matched by directory_id, else email + last name + postcode)",
        columns=frozenset(TherapistImportRow.model_fields),
        load=_load_therapists,
        partition_keys=therapist_partition_keys,
    ),
    "patients": Loader(
        description="patients (matched by email + last name + birth date; those three are required)",
        columns=PATIENT_BULK_COLUMNS,
        load=_load_patients,
        partition_keys=patient_partition_keys,
    ),
}


@dataclass(frozen=True)
class _PartResult:
    report: BulkReport
    stopped: str | None  # why the part stopped early (e.g. the database went away); None: done


def _load_part(
    loader: Loader,
    part: list[tuple[int, object]],
    run: LoadRun,
    url: str,
    done: Any,
    results: Any,
) -> None:
    """One process's part of the file (in a forked child, with a connection of its own)."""
    engine = make_engine(url)

    def advance(_: int) -> None:
        with done.get_lock():
            done.value += 1

    rows = [row for _, row in part]
    part_run = replace(run, engine=engine, row_numbers=[number for number, _ in part], on_progress=advance)
    try:
        results.put(_PartResult(loader.load(rows, part_run), None))
    except BulkLoadInterruptedError as error:
        results.put(_PartResult(error.report, error.message))
    except DomainError as error:
        results.put(_PartResult(BulkReport(), error.message))
    finally:
        engine.dispose()


class SideBySideLoad:
    """A file split by the loader's partition keys and loaded by one process per part. The
    processes start (fork) before the progress display's thread does; `finish` waits for them
    and merges their reports (BulkLoadInterruptedError if any part stopped early)."""

    def __init__(self, loader: Loader, rows: InputRows, run: LoadRun, url: str, jobs: int) -> None:
        numbered = list(enumerate(rows.rows, start=rows.first_row_number))
        context = multiprocessing.get_context("fork")
        self._done = context.Value("q", 0)
        self._results: Any = context.Queue()
        self._processes = [
            context.Process(
                target=_load_part,
                args=(loader, part, run, url, self._done, self._results),
                name=f"bulk-load-{index}",
            )
            for index, part in enumerate(partition_rows(numbered, loader.partition_keys, jobs), start=1)
        ]
        for process in self._processes:
            process.start()

    def finish(self, on_progress: Callable[[int], None]) -> BulkReport:
        parts: list[_PartResult] = []
        reported = 0
        while len(parts) < len(self._processes):
            try:
                parts.append(self._results.get(timeout=0.2))
            except queue.Empty:
                if not any(process.is_alive() for process in self._processes):
                    break
            finally:
                if self._done.value > reported:
                    on_progress(self._done.value - reported)
                    reported = self._done.value
        while len(parts) < len(self._processes):  # what the last ones put just before exiting
            try:
                parts.append(self._results.get(timeout=1))
            except queue.Empty:
                break
        for process in self._processes:
            process.join()
        report = combined(part.report for part in parts)
        stopped = sorted({part.stopped for part in parts if part.stopped is not None})
        if len(parts) < len(self._processes):
            codes = ", ".join(str(process.exitcode) for process in self._processes if process.exitcode)
            stopped.append(f"a loading process ended unexpectedly (exit code {codes or 'unknown'})")
        if stopped:
            raise BulkLoadInterruptedError(report, "; ".join(stopped))
        return report


class UnusableFileError(Exception):
    pass


@dataclass(frozen=True)
class InputRows:
    rows: list[object]
    first_row_number: int  # so reported row numbers match what the operator sees in the file
    columns: frozenset[str]


def read_rows(path: Path, kind: str) -> InputRows:
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return _read_json(path, kind)
        if suffix == ".csv":
            return _read_csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UnusableFileError(f"cannot read {path}: {error}") from error
    raise UnusableFileError(f"{path}: expected a .csv or .json file")


def _read_json(path: Path, kind: str) -> InputRows:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise UnusableFileError(f"{path} is not valid JSON: {error}") from error
    if isinstance(data, dict) and isinstance(data.get(kind), list):
        data = data[kind]
    if not isinstance(data, list):
        raise UnusableFileError(f'{path}: expected a list of objects (or {{"{kind}": [...]}})')
    columns = frozenset(key for row in data if isinstance(row, Mapping) for key in row)
    return InputRows(data, 1, columns)


def _read_csv(path: Path) -> InputRows:
    text = path.read_text(encoding="utf-8-sig")
    header = text.split("\n", 1)[0]
    # German spreadsheets export with semicolons; pick whichever separates the header.
    delimiter = max(",;\t", key=header.count)
    # Cells beyond the header land under "extra_cells", which the row model rejects by name.
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, restkey="extra_cells")
    columns = frozenset(name.strip() for name in reader.fieldnames or [])
    rows: list[object] = [{(key or "").strip(): value for key, value in record.items()} for record in reader]
    # Row numbers count the header as row 1, like a spreadsheet.
    return InputRows(rows, 2, columns)


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from localcloud import postgres

    return postgres.admin_url()


def _print_summary(
    console: Console, kind: str, report: BulkReport, *, dry_run: bool, shown: int = 50
) -> None:
    console.print(
        f"{kind}: bulk load{' (dry run, nothing written)' if dry_run else ''}", style="bold", markup=False
    )
    table = Table()
    table.add_column("result")
    table.add_column("rows", justify="right")
    table.add_row("created", str(report.created))
    table.add_row("updated", str(report.updated))
    table.add_row("unchanged", str(report.unchanged))
    table.add_row("rejected", str(len(report.rejected)), style="red" if report.rejected else None)
    console.print(table)
    # The API's codes and German field messages (platform/problems.py), one line per row.
    for row in report.rejections[:shown]:
        console.print(f"  {row.line()}", style="red", markup=False, highlight=False)
    if len(report.rejections) > shown:
        console.print(f"  ... and {len(report.rejections) - shown} more rejected rows", style="red")


def _jobs(asked: int | None, rows: int) -> int:
    """Processes for a file: as asked (never more than rows), else one per CPU up to
    DEFAULT_MAX_JOBS and one per ROWS_PER_JOB rows."""
    if asked is not None:
        return max(1, min(asked, rows))
    return max(1, min(DEFAULT_MAX_JOBS, os.cpu_count() or 1, rows // ROWS_PER_JOB))


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bulk_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(LOADERS), help="what the file holds")
    parser.add_argument("file", type=Path, help="a .csv or .json file")
    parser.add_argument(
        "--actor", default=None, help="who runs the load (audit log); default: operator:$USER"
    )
    parser.add_argument("--dry-run", action="store_true", help="validate and match every row, write nothing")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help=f"processes loading side by side (default: one per CPU, at most {DEFAULT_MAX_JOBS}, "
        f"and one per {ROWS_PER_JOB} rows)",
    )
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    console = console or Console()
    loader = LOADERS[args.kind]

    try:
        rows = read_rows(args.file, args.kind)
    except UnusableFileError as error:
        console.print(f"error: {error}", style="red", markup=False)
        return EXIT_UNUSABLE
    unknown = sorted(rows.columns - loader.columns)
    if unknown:
        console.print(
            f"error: {args.file} has columns {args.kind} do not have: {', '.join(unknown)}\n"
            f"known columns: {', '.join(sorted(loader.columns))}",
            style="red",
            markup=False,
        )
        return EXIT_UNUSABLE

    url = _database_url()
    engine = make_engine(url)
    actor = args.actor or f"operator:{getpass.getuser()}"
    progress = Progress(
        TextColumn(f"loading {args.kind}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    jobs = _jobs(args.jobs, len(rows.rows))
    try:
        task = progress.add_task("load", total=len(rows.rows))
        run = LoadRun(
            engine=engine,
            actor=actor,
            now=datetime.now(UTC),
            first_row_number=rows.first_row_number,
            on_progress=lambda _: progress.advance(task),
            dry_run=args.dry_run,
        )
        side_by_side = SideBySideLoad(loader, rows, run, url, jobs) if jobs > 1 else None
        with progress:
            if side_by_side is None:
                report = loader.load(rows.rows, run)
            else:
                report = side_by_side.finish(lambda count: progress.advance(task, count))
    except BulkLoadInterruptedError as error:
        _print_summary(console, args.kind, error.report, dry_run=args.dry_run)
        console.print(f"error: {error.message}", style="red", markup=False)
        return EXIT_INTERRUPTED
    except DomainError as error:
        console.print(f"error: {error.message}", style="red", markup=False)
        return EXIT_INTERRUPTED
    finally:
        engine.dispose()
    _print_summary(console, args.kind, report, dry_run=args.dry_run)
    return EXIT_REJECTED if report.rejected else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
