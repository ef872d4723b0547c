"""The operators' bulk load in chunks against real PostgreSQL (issue 15): the rows of a chunk
share one transaction, each row in its own savepoint, so a row that fails after it wrote
something leaves nothing behind and undoes no other row; an interrupted load keeps the chunks
that committed and reports only those."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from therapist_fakes import FakeGeocoder
from therapy_platform.platform.bulk_load import BulkLoadInterruptedError, load_rows
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.errors import ConflictError, DependencyUnavailableError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.unit_of_work import SharedTransaction
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.use_cases import _upsert_row, bulk_upsert

pytestmark = pytest.mark.integration

SCHEMA = "therapist_service"
NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def therapist_engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url(SCHEMA))
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def empty_tables(admin_engine: Engine) -> None:
    with admin_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {SCHEMA}.therapists, {SCHEMA}.audit_log, {SCHEMA}.outbox"))


def _count(admin_engine: Engine, table: str) -> int:
    with admin_engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {SCHEMA}.{table}")).scalar_one())


def _directory_ids(admin_engine: Engine) -> set[str]:
    with admin_engine.connect() as connection:
        return {row[0] for row in connection.execute(text(f"SELECT directory_id FROM {SCHEMA}.therapists"))}


def _row(number: int) -> dict[str, Any]:
    return {
        "directory_id": f"D-{number}",
        "first_name": "Hanna",
        "last_name": f"Schäfer{number}",
        "postcode": "52062",
        "email": f"praxis{number}@schaefer.example",
    }


class _FailingOutbox:
    """Refuses the n-th event, after the row's therapist and audit entry were written."""

    def __init__(self, inner: Any, fail: Callable[[], bool]) -> None:
        self._inner, self._fail = inner, fail
        self.written = inner.written

    def add(self, key: str, envelope: EventEnvelope) -> None:
        if self._fail():
            raise ConflictError("refused by the test after the row was written")
        self._inner.add(key, envelope)


def test_a_row_failing_after_its_writes_rejects_only_itself(
    therapist_engine: Engine, admin_engine: Engine
) -> None:
    shared = SharedTransaction(therapist_engine)
    events = iter(range(100))

    class FailingThird(SqlTherapistUnitOfWork):
        def _bind(self, connection: Connection) -> None:
            super()._bind(connection)
            self.outbox = _FailingOutbox(self.outbox, lambda: next(events) == 2)  # type: ignore[assignment]

    try:
        report = bulk_upsert(
            FailingThird(therapist_engine, shared=shared),
            FakeGeocoder(),
            [_row(number) for number in range(1, 6)],
            actor="operator:ci",
            now=NOW,
            chunks=shared,
        ).value
    finally:
        shared.close()
    assert (report.created, [row.number for row in report.rejections]) == (4, [3])
    assert report.rejections[0].code == "conflict"
    assert _directory_ids(admin_engine) == {"D-1", "D-2", "D-4", "D-5"}
    assert _count(admin_engine, "audit_log") == 4 and _count(admin_engine, "outbox") == 4
    assert len(report.event_ids) == 4


def test_an_interrupted_load_keeps_and_reports_the_chunks_that_committed(
    therapist_engine: Engine, admin_engine: Engine
) -> None:
    shared = SharedTransaction(therapist_engine)
    uow = SqlTherapistUnitOfWork(therapist_engine, shared=shared)
    geocoder = FakeGeocoder()

    def load_row(number: int, raw: dict[str, Any]) -> Any:
        if number == 5:
            raise DependencyUnavailableError("the database cannot be reached right now")
        return _upsert_row(uow, geocoder, raw, actor="operator:ci", now=NOW)

    rows = [_row(number) for number in range(1, 7)]
    rows[1] = {"directory_id": "D-2"}  # rejected: no name, no postcode
    try:
        with pytest.raises(BulkLoadInterruptedError) as interrupted:
            load_rows(rows, load_row, chunks=shared, chunk_size=3)
    finally:
        shared.close()
    report = interrupted.value.report
    # Rows 1-3 committed as a chunk; row 4 was written in the chunk that never committed.
    assert report.created == 2 and [row.number for row in report.rejections] == [2, 5]
    assert _directory_ids(admin_engine) == {"D-1", "D-3"}
    assert _count(admin_engine, "outbox") == 2

    # Loading the whole file again picks up the rest and duplicates nothing.
    shared = SharedTransaction(therapist_engine)
    try:
        again = bulk_upsert(
            SqlTherapistUnitOfWork(therapist_engine, shared=shared),
            geocoder,
            [_row(number) for number in range(1, 7)],
            actor="operator:ci",
            now=NOW,
            chunks=shared,
        ).value
    finally:
        shared.close()
    assert (again.created, again.unchanged, again.rejected) == (4, 2, [])
    assert _directory_ids(admin_engine) == {f"D-{number}" for number in range(1, 7)}


def test_a_committed_chunk_publishes_its_rows_events_in_one_call_and_a_rolled_back_one_none(
    therapist_engine: Engine,
) -> None:
    """The after-commit hook runs once per chunk with every row's event in row order (one outbox
    claim for the chunk, as the directory import function publishes), callbacks still run."""
    calls: list[list[Any]] = []
    done: list[str] = []
    written: list[Any] = []

    def publish(events: Any) -> None:
        calls.append([event.event_id for event in events])

    shared = SharedTransaction(therapist_engine)
    uow = SqlTherapistUnitOfWork(therapist_engine, publish=publish, shared=shared)
    try:
        for number in range(3):
            outcome, events = _upsert_row(uow, FakeGeocoder(), _row(number), actor="operator:test", now=NOW)
            assert outcome == "created"
            written += [event.event_id for event in events]
        with uow:
            uow.on_commit(lambda: done.append("callback"))
            uow.commit()
        assert calls == []  # nothing before the chunk commits
        shared.commit()
        assert len(written) == 3 and calls == [written] and done == ["callback"]

        _upsert_row(uow, FakeGeocoder(), _row(3), actor="operator:test", now=NOW)
        shared.rollback()
        shared.commit()
        assert calls == [written]
    finally:
        shared.close()
