"""The operators' bulk load side by side (infra/tools/bulk_load.SideBySideLoad), with a loader
that needs no database: the parts' reports merge with the file's row numbers, progress counts
every row once, and a part that stops early, or whose process dies, makes the whole load an
interrupted one that still reports what the other parts did."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from therapy_platform.platform.bulk_load import BulkLoadInterruptedError, BulkReport, RejectedRow
from tools.bulk_load import InputRows, Loader, LoadRun, SideBySideLoad

# Never connected to: the fake loader below does not touch the engine each process makes.
UNUSED_URL = "postgresql+pg8000://nobody@127.0.0.1:9/nothing"


def _fake_load(rows: Iterable[object], run: LoadRun) -> BulkReport:
    report = BulkReport()
    for number, row in zip(run.row_numbers or [], rows, strict=True):
        run.on_progress(number)
        if row == "crash":
            os._exit(9)  # the process dies without a word, as an out-of-memory kill would
        if row == "stop":
            raise BulkLoadInterruptedError(report, "the database went away")
        if row == "bad":
            report.rejections.append(RejectedRow(number, "validation_failed", "kaputt"))
        else:
            report.created += 1
    return report


LOADER = Loader(
    description="test rows",
    columns=frozenset(),
    load=_fake_load,
    partition_keys=lambda row: [row] if row in ("same", "stop", "crash") else [],
)


def _run() -> LoadRun:
    return LoadRun(
        engine=None,  # type: ignore[arg-type]  # each process makes its own
        actor="operator:test",
        now=datetime(2026, 12, 6, tzinfo=UTC),
        first_row_number=2,
        on_progress=lambda _: None,
        dry_run=False,
    )


def _load(rows: list[object], jobs: int) -> tuple[BulkReport, int]:
    progress: list[int] = []
    side_by_side = SideBySideLoad(LOADER, InputRows(rows, 2, frozenset()), _run(), UNUSED_URL, jobs)
    return side_by_side.finish(progress.append), sum(progress)


def test_parts_merge_with_the_files_row_numbers_and_progress_counts_every_row() -> None:
    rows: list[object] = [*["ok"] * 20, "bad", "same", "ok", "same", "bad"]
    report, progressed = _load(rows, 3)
    assert report.created == 23 and progressed == 25
    # CSV numbering: the header is row 1, so the 21st row is row 22.
    assert [row.number for row in report.rejections] == [22, 26]


def test_a_part_that_stops_early_interrupts_the_load_with_what_every_part_did() -> None:
    rows: list[object] = [*["ok"] * 10, "stop", *["ok"] * 10]
    with pytest.raises(BulkLoadInterruptedError) as stopped:
        _load(rows, 2)
    assert "the database went away" in stopped.value.message
    assert 10 <= stopped.value.report.created < 20  # the other part finished, this one did not


def test_a_part_whose_process_dies_interrupts_the_load_naming_the_exit_code() -> None:
    rows: list[object] = [*["ok"] * 6, "crash"]
    with pytest.raises(BulkLoadInterruptedError) as stopped:
        _load(rows, 2)
    assert "ended unexpectedly (exit code 9)" in stopped.value.message
