"""What the operators' bulk loads (infra/tools/bulk_load.py) share: each row in its own
transaction, so a bad row is reported and never undoes the others; one report shape, whose
rejected rows carry the API's problem codes and German field messages (platform/problems.py), so
a row is refused in the same words as the same record sent to the API; and a clean stop, with the
report so far, when the database goes away."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

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


def load_rows(
    rows: Iterable[Row],
    load_row: Callable[[int, Row], tuple[RowOutcome, Sequence[EventEnvelope]]],
    *,
    first_row_number: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> BulkReport:
    """Run `load_row(number, row)` for each row (numbered from `first_row_number`, as the
    operator sees them in the file). Invalid rows and rows that clash (ambiguous match, record
    gone) are rejected with their reason; any other domain error (the database is unreachable)
    stops the load with BulkLoadInterruptedError."""
    report = BulkReport()
    for number, row in enumerate(rows, start=first_row_number):
        try:
            outcome, events = load_row(number, row)
        except (FieldValidationError, ConflictError, NotFoundError) as error:
            report.rejections.append(RejectedRow.from_error(number, error))
        except DomainError as error:
            report.rejections.append(RejectedRow.from_error(number, error))
            raise BulkLoadInterruptedError(report, error.message) from error
        else:
            report.count(outcome)
            report.event_ids.extend(event.event_id for event in events)
        if on_progress is not None:
            on_progress(number)
    return report
