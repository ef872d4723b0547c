"""load_rows in chunks (issue 15): a chunk's rows are reported once the chunk committed; an
interrupted load reports the committed chunks and the rejections, and drops the open chunk."""

from __future__ import annotations

from typing import Any

import pytest

from therapy_platform.platform.bulk_load import BulkLoadInterruptedError, load_rows
from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.validation import FieldRuleError, FieldValidationError


class _Chunks:
    def __init__(self, fail_on_commit: int | None = None) -> None:
        self.log: list[str] = []
        self._fail_on_commit = fail_on_commit

    def commit(self) -> None:
        self.log.append("commit")
        if self.log.count("commit") == self._fail_on_commit:
            raise DependencyUnavailableError("the database connection was lost")

    def rollback(self) -> None:
        self.log.append("rollback")


def _load(number: int, row: Any) -> Any:
    if row == "bad":
        raise FieldValidationError.for_fields({"email": FieldRuleError("missing", "Pflichtfeld fehlt")})
    if row == "gone":
        raise DependencyUnavailableError("the database cannot be reached right now")
    return "created", []


def test_rows_commit_chunk_by_chunk_and_a_bad_row_is_only_rejected() -> None:
    chunks = _Chunks()
    report = load_rows(["a", "bad", "c", "d", "e"], _load, chunks=chunks, chunk_size=2)
    assert chunks.log == ["commit", "commit", "commit"]  # after rows 2 and 4, and at the end
    assert report.created == 4 and [row.number for row in report.rejections] == [2]


def test_an_interruption_reports_only_what_committed() -> None:
    chunks = _Chunks()
    with pytest.raises(BulkLoadInterruptedError) as interrupted:
        load_rows(["a", "b", "bad", "gone", "e"], _load, chunks=chunks, chunk_size=2)
    assert chunks.log == ["commit", "rollback"]
    report = interrupted.value.report
    assert report.created == 2 and [row.number for row in report.rejections] == [3, 4]


def test_a_failed_chunk_commit_interrupts_the_load() -> None:
    chunks = _Chunks(fail_on_commit=2)
    with pytest.raises(BulkLoadInterruptedError) as interrupted:
        load_rows(["a", "b", "c", "d", "e"], _load, chunks=chunks, chunk_size=2)
    assert chunks.log == ["commit", "commit", "rollback"]
    assert interrupted.value.report.created == 2 and interrupted.value.report.rejections == []
