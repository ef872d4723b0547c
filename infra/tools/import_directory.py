"""Operator import of 116117 directory files: the same import (and report) as the one the
scraper's S3 files trigger, for a local file or a folder of them.

    python -m tools.import_directory PATH [PATH ...] [--actor NAME]

(run from infra/ or with infra/ and layers/shared on PYTHONPATH). PATH is a raw run file
(`raw/YYYY-MM-DD/<region>.json` as the scraper stores it), a directory answer
(`{"arztPraxisDatas": [...]}`) or a list of answers, or a folder: every `*.json` below it, in
name order. Connects with DATABASE_URL, by default the local PostgreSQL's admin URL; against a
deployed database use the therapist service's role.

Each file gets its own report, stored like the automatic ones (GET /api/v2/imports/{id}).
Importing a file again writes nothing for entries that did not change. Exit code: 0 every
entry imported, 1 some entries skipped, 2 a file is unusable (or no file found), 3 interrupted
(database unreachable).
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from therapy_platform.platform.database import make_engine
from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.therapists.imports.adapters.store import (
    SqlImportReportStore,
    chunked_import,
)
from therapy_platform.therapists.imports.domain.reports import (
    ImportItem,
    ImportReportSummary,
    ImportSource,
    ImportStatus,
)
from therapy_platform.therapists.imports.use_cases import import_directory_file

EXIT_OK, EXIT_SKIPPED, EXIT_UNUSABLE, EXIT_INTERRUPTED = 0, 1, 2, 3


def files_in(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(candidate for candidate in path.rglob("*.json") if candidate.is_file()))
        else:
            found.append(path)
    return found


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from localcloud import postgres

    return postgres.admin_url()


def print_report(
    console: Console, path: Path, report: ImportReportSummary, items: Sequence[ImportItem], *, shown: int = 50
) -> None:
    console.print(f"{path}: import {report.id} ({report.status})", style="bold", markup=False)
    if report.error:
        console.print(f"  error: {report.error}", style="red", markup=False)
    table = Table()
    table.add_column("result")
    table.add_column("entries", justify="right")
    counts = report.counts
    for label, value in (
        ("new", counts.new),
        ("updated", counts.updated),
        ("unchanged", counts.unchanged),
        ("skipped", counts.skipped),
        ("identical repeats", counts.repeats),
        ("vanished (marked for review)", counts.vanished),
        ("back in the directory", counts.reappeared),
    ):
        table.add_row(label, str(value), style="red" if label == "skipped" and value else None)
    console.print(table)
    for reason, count in sorted(report.skip_reasons.items()):
        console.print(f"  skipped, {reason}: {count}", style="red", markup=False)
    for item in list(items)[:shown]:
        where = item.position or item.directory_id or ""
        console.print(
            f"  {item.outcome} {where} {item.name or ''}: {item.reason}: {item.message}",
            style="red" if item.outcome == "skipped" else "yellow",
            markup=False,
            highlight=False,
        )
    if len(items) > shown:
        console.print(f"  ... and {len(items) - shown} more (GET /api/v2/imports/{report.id})")


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.import_directory", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("paths", nargs="+", type=Path, help="raw directory files or folders of them")
    parser.add_argument("--actor", default=None, help="who imports (audit log); default: operator:$USER")
    args = parser.parse_args(argv)
    console = console or Console()
    files = files_in(args.paths)
    missing = [path for path in files if not path.is_file()]
    if not files or missing:
        console.print(f"error: no such file: {', '.join(map(str, missing or args.paths))}", style="red")
        return EXIT_UNUSABLE
    actor = args.actor or f"operator:{getpass.getuser()}"
    # Entries commit in chunks, staged: one read of what a chunk's entries may match, one
    # statement per table; a chunk the database refuses runs again entry by entry in savepoints
    # (imports/use_cases.py). The chunk's transaction holds one connection, the import report
    # is written on the other.
    engine = make_engine(_database_url(), pool_size=2)
    worst = EXIT_OK
    try:
        with chunked_import(engine) as chunked:
            for path in files:
                data = path.read_bytes()
                progress = Progress(
                    TextColumn(f"importing {path.name}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=console,
                )
                with progress:
                    task = progress.add_task("import", total=None)

                    def advance(
                        done: int, total: int, task_id: TaskID = task, bar: Progress = progress
                    ) -> None:
                        bar.update(task_id, completed=done, total=total)

                    result = import_directory_file(
                        chunked.unit_of_work,
                        SqlImportReportStore(engine),
                        postcode_directory(),
                        data,
                        source=ImportSource(str(path.resolve()), hashlib.sha256(data).hexdigest()[:32]),
                        actor=actor,
                        now=datetime.now(UTC),
                        clock=lambda: datetime.now(UTC),
                        on_progress=advance,
                        chunks=chunked.chunks,
                        # Set-based chunks: one read and one statement per table for 500 entries.
                        staging=chunked.staging,
                    ).value
                print_report(console, path, result.report, result.items)
                if result.report.status is ImportStatus.FAILED:
                    worst = max(worst, EXIT_UNUSABLE)
                elif result.report.counts.skipped:
                    worst = max(worst, EXIT_SKIPPED)
    except DependencyUnavailableError as error:
        console.print(f"error: {error.message}", style="red", markup=False)
        return EXIT_INTERRUPTED
    finally:
        engine.dispose()
    return worst


if __name__ == "__main__":
    sys.exit(main())
