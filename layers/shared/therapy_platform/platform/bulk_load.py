"""What the operators' bulk loads (infra/tools/bulk_load.py) share: each row in its own
transaction, so a bad row is reported and never undoes the others; one report shape; and a
clean stop, with the report so far, when the database goes away."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from therapy_platform.platform.errors import ConflictError, DomainError, NotFoundError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.validation import FieldValidationError

RowOutcome = Literal["created", "updated", "unchanged"]
Row = TypeVar("Row")


@dataclass
class BulkReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    event_ids: list[uuid.UUID] = field(default_factory=list)  # committed to the outbox

    @property
    def processed(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.rejected)

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
        except FieldValidationError as error:
            report.rejected.append((number, error.summary()))
        except (ConflictError, NotFoundError) as error:
            report.rejected.append((number, error.message))
        except DomainError as error:
            report.rejected.append((number, error.message))
            raise BulkLoadInterruptedError(report, error.message) from error
        else:
            report.count(outcome)
            report.event_ids.extend(event.event_id for event in events)
        if on_progress is not None:
            on_progress(number)
    return report
