"""What the operators' bulk loads (infra/tools/bulk_load.py) share: each row in its own
transaction, or, for speed, in its own savepoint of a chunk's transaction (`Chunks`), so a bad
row is reported and never undoes the others; faster still, a chunk staged (`ChunkStaging`):
matched with one read and written with one statement per table, and run again row by row in
savepoints only when the database refuses it; one report shape, whose rejected rows carry the
API's problem codes and German field messages (platform/problems.py), so a row is refused in the
same words as the same record sent to the API; a clean stop, with the report so far, when
the database goes away; and the split of a file into parts that load side by side
(`partition_rows`), such that rows which may describe the same person stay in one part, in file
order."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import count, islice
from typing import Literal, Protocol, TypeVar

from therapy_platform.platform.errors import ConflictError, DomainError, NotFoundError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.problems import FieldError, problem_type
from therapy_platform.platform.validation import FieldValidationError

RowOutcome = Literal["created", "updated", "unchanged"]
Row = TypeVar("Row")
Row_contra = TypeVar("Row_contra", contravariant=True)


@dataclass(frozen=True)
class RejectedRow:
    """A refused row: its number in the file, the problem code the API would answer with, and
    the reason: each field's German message (`errors`) or, without fields, the English detail."""

    number: int
    code: str
    reason: str
    errors: tuple[FieldError, ...] = ()

    @classmethod
    def from_error(cls, number: int, error: DomainError) -> RejectedRow:
        reason = error.summary() if isinstance(error, FieldValidationError) else error.message
        return cls(number, error.code, reason, error.errors)

    def line(self) -> str:
        """`row 7: validation_failed (Ungültige oder fehlende Angaben): email: Pflichtfeld fehlt`."""
        return f"row {self.number}: {self.code} ({problem_type(self.code).title_de}): {self.reason}"


@dataclass
class BulkReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[RejectedRow] = field(default_factory=list)
    event_ids: list[uuid.UUID] = field(default_factory=list)  # committed to the outbox

    @property
    def rejected(self) -> list[tuple[int, str]]:
        """(row number, reason) of each rejected row."""
        return [(row.number, row.reason) for row in self.rejections]

    @property
    def processed(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.rejections)

    def count(self, outcome: RowOutcome) -> None:
        if outcome == "created":
            self.created += 1
        elif outcome == "updated":
            self.updated += 1
        else:
            self.unchanged += 1


class BulkLoadInterruptedError(DomainError):
    """The load stopped part-way (e.g. the database became unreachable); `report` says how far
    it got. Rows already reported as created or updated are committed."""

    code = "bulk_load_interrupted"

    def __init__(self, report: BulkReport, message: str) -> None:
        super().__init__(f"bulk load interrupted: {message}")
        self.report = report


class Chunks(Protocol):
    """The transaction the rows of one chunk share (platform.unit_of_work.SharedTransaction):
    each row's units of work are savepoints in it; `commit` makes the chunk durable (raising
    DomainError when the database went away), `rollback` drops it."""

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


def combined(reports: Iterable[BulkReport]) -> BulkReport:
    """One report of parts of a file that loaded side by side, rejections in row order."""
    report = BulkReport()
    for part in reports:
        _merge(report, part)
    report.rejections.sort(key=lambda row: row.number)
    return report


def _merge(report: BulkReport, chunk: BulkReport) -> None:
    report.created += chunk.created
    report.updated += chunk.updated
    report.unchanged += chunk.unchanged
    report.rejections.extend(chunk.rejections)
    report.event_ids.extend(chunk.event_ids)


class ChunkStaging(Protocol[Row_contra]):
    """Set-based chunks (platform.unit_of_work.ChunkStage behind a service's use case):
    `begin` reads at once what the chunk's rows may match and makes the rows' units of work
    write to memory; `flush` writes what the rows committed, one statement per table
    (ConflictError: the database refused a value); `end` goes back to savepoints."""

    def begin(self, rows: Sequence[Row_contra]) -> None: ...

    def flush(self) -> None: ...

    def end(self) -> None: ...


def load_rows(
    rows: Iterable[Row],
    load_row: Callable[[int, Row], tuple[RowOutcome, Sequence[EventEnvelope]]],
    *,
    first_row_number: int = 1,
    on_progress: Callable[[int], None] | None = None,
    chunks: Chunks | None = None,
    chunk_size: int = 500,
    staging: ChunkStaging[Row] | None = None,
    row_numbers: Iterable[int] | None = None,
) -> BulkReport:
    """Run `load_row(number, row)` for each row (numbered from `first_row_number`, as the
    operator sees them in the file, or by `row_numbers`, one per row, for a part of a file).
    Invalid rows and rows that clash (ambiguous match, record gone) are rejected with their
    reason; any other domain error (the database is unreachable) stops the load with
    BulkLoadInterruptedError.

    With `chunks`, every `chunk_size` rows commit together (each row in its own savepoint, so a
    rejected row still undoes only itself). The report counts a row as created or updated once
    its chunk has committed: an interrupted load reports the chunks that committed, plus the
    rejections of the chunk that did not (its other rows are not written; loading the file
    again picks them up, since rows are matched to what is stored).

    With `staging` as well, a chunk first runs staged: its rows are matched against what one
    query read for the whole chunk and written with one statement per table. Should the
    database refuse any of that, the chunk is rolled back and runs again row by row in
    savepoints, so the refused row is rejected alone and the report is the same either way."""
    report = BulkReport()
    numbers = count(first_row_number) if row_numbers is None else row_numbers
    numbered: Iterator[tuple[int, Row]] = zip(numbers, rows, strict=row_numbers is not None)
    if chunks is None:
        _load_chunk(report, report, list(numbered), load_row, on_progress)
        return report
    pending = BulkReport()
    try:
        while chunk := list(islice(numbered, chunk_size)):
            pending = BulkReport()
            if staging is None or not _staged_chunk(report, pending, chunk, load_row, chunks, staging):
                pending = BulkReport()
                _load_chunk(report, pending, chunk, load_row, None)
                chunks.commit()  # a DomainError here is handled below
            _merge(report, pending)
            pending = BulkReport()
            if on_progress is not None:
                for number, _ in chunk:
                    on_progress(number)
    except BulkLoadInterruptedError:
        _interrupted(report, pending, chunks)
        raise
    except DomainError as error:  # a chunk's commit failed
        _interrupted(report, pending, chunks)
        raise BulkLoadInterruptedError(report, error.message) from error
    return report


def _staged_chunk(
    report: BulkReport,
    pending: BulkReport,
    chunk: list[tuple[int, Row]],
    load_row: Callable[[int, Row], tuple[RowOutcome, Sequence[EventEnvelope]]],
    chunks: Chunks,
    staging: ChunkStaging[Row],
) -> bool:
    """Run the chunk staged and commit it; False (rolled back) when the database refused a
    value of it."""
    try:
        staging.begin([row for _, row in chunk])
        _load_chunk(report, pending, chunk, load_row, None)
        staging.flush()
    except ConflictError:
        chunks.rollback()
        return False
    finally:
        staging.end()
    chunks.commit()
    return True


def _load_chunk(
    report: BulkReport,
    pending: BulkReport,
    chunk: list[tuple[int, Row]],
    load_row: Callable[[int, Row], tuple[RowOutcome, Sequence[EventEnvelope]]],
    on_progress: Callable[[int], None] | None,
) -> None:
    for number, row in chunk:
        try:
            outcome, events = load_row(number, row)
        except (FieldValidationError, ConflictError, NotFoundError) as error:
            pending.rejections.append(RejectedRow.from_error(number, error))
        except DomainError as error:
            pending.rejections.append(RejectedRow.from_error(number, error))
            raise BulkLoadInterruptedError(report, error.message) from error
        else:
            pending.count(outcome)
            pending.event_ids.extend(event.event_id for event in events)
        if on_progress is not None:
            on_progress(number)


def _interrupted(report: BulkReport, pending: BulkReport, chunks: Chunks | None) -> None:
    if chunks is None:
        return
    chunks.rollback()
    report.rejections.extend(pending.rejections)


def partition_rows(
    numbered: Sequence[tuple[int, Row]], keys: Callable[[Row], Iterable[Hashable]], parts: int
) -> list[list[tuple[int, Row]]]:
    """Split numbered rows into at most `parts` lists that can load side by side: rows sharing
    any key (e.g. a normalized last name, a directory id: whatever two rows describing the same
    person must share) land in the same list, so a file's second row for a person still sees
    the first, as in a load one row after the other. Groups go to the lightest part, largest
    first; each part keeps file order."""
    parent = list(range(len(numbered)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    owner: dict[Hashable, int] = {}
    for index, (_, row) in enumerate(numbered):
        for key in keys(row):
            if key in owner:
                parent[root(index)] = root(owner[key])
            else:
                owner[key] = index
    groups: dict[int, list[int]] = {}
    for index in range(len(numbered)):
        groups.setdefault(root(index), []).append(index)
    loads = [0] * max(1, parts)
    assigned: list[list[int]] = [[] for _ in loads]
    for members in sorted(groups.values(), key=len, reverse=True):
        lightest = loads.index(min(loads))
        assigned[lightest].extend(members)
        loads[lightest] += len(members)
    return [[numbered[index] for index in sorted(members)] for members in assigned if members]


def loose_text(value: object) -> str | None:
    """A text cell reduced to its letters and digits, case-folded (Unicode NFKC first): equal
    for any two cells a matching rule would call equal ignoring case and spacing, so usable as a
    `partition_rows` key. None for a blank or non-text cell."""
    if not isinstance(value, str):
        return None
    folded = "".join(ch for ch in unicodedata.normalize("NFKC", value).casefold() if ch.isalnum())
    return folded or None
