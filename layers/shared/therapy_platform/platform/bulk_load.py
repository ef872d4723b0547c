"""What the operators' bulk loads (infra/tools/bulk_load.py) share: each row in its own
transaction, or, for speed, in its own savepoint of a chunk's transaction (`Chunks`), so a bad
row is reported and never undoes the others; one report shape, whose rejected rows carry the
API's problem codes and German field messages (platform/problems.py), so a row is refused in the
same words as the same record sent to the API; and a clean stop, with the report so far, when
the database goes away."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from therapy_platform.platform.errors import ConflictError, DomainError, NotFoundError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.problems import FieldError, problem_type
from therapy_platform.platform.validation import FieldValidationError

RowOutcome = Literal["created", "updated", "unchanged"]
Row = TypeVar("Row")


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


def _merge(report: BulkReport, chunk: BulkReport) -> None:
    report.created += chunk.created
    report.updated += chunk.updated
    report.unchanged += chunk.unchanged
    report.rejections.extend(chunk.rejections)
    report.event_ids.extend(chunk.event_ids)


def load_rows(
    rows: Iterable[Row],
    load_row: Callable[[int, Row], tuple[RowOutcome, Sequence[EventEnvelope]]],
    *,
    first_row_number: int = 1,
    on_progress: Callable[[int], None] | None = None,
    chunks: Chunks | None = None,
    chunk_size: int = 500,
) -> BulkReport:
    """Run `load_row(number, row)` for each row (numbered from `first_row_number`, as the
    operator sees them in the file). Invalid rows and rows that clash (ambiguous match, record
    gone) are rejected with their reason; any other domain error (the database is unreachable)
    stops the load with BulkLoadInterruptedError.

    With `chunks`, every `chunk_size` rows commit together (each row in its own savepoint, so a
    rejected row still undoes only itself). The report counts a row as created or updated once
    its chunk has committed: an interrupted load reports the chunks that committed, plus the
    rejections of the chunk that did not (its other rows are not written; loading the file
    again picks them up, since rows are matched to what is stored)."""
    report = BulkReport()
    pending = BulkReport() if chunks is not None else report
    in_chunk = 0
    try:
        for number, row in enumerate(rows, start=first_row_number):
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
            if chunks is not None:
                in_chunk += 1
                if in_chunk >= chunk_size:
                    chunks.commit()  # a DomainError here is handled below
                    _merge(report, pending)
                    pending, in_chunk = BulkReport(), 0
            if on_progress is not None:
                on_progress(number)
        if chunks is not None:
            chunks.commit()
            _merge(report, pending)
    except BulkLoadInterruptedError:
        _interrupted(report, pending, chunks)
        raise
    except DomainError as error:  # a chunk's commit failed
        _interrupted(report, pending, chunks)
        raise BulkLoadInterruptedError(report, error.message) from error
    return report


def _interrupted(report: BulkReport, pending: BulkReport, chunks: Chunks | None) -> None:
    if chunks is None:
        return
    chunks.rollback()
    report.rejections.extend(pending.rejections)
