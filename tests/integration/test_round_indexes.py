"""The indexes of migration 0024 serve the queries a limited round really sends: PostgreSQL uses
an expression index only for the very expression it was built on, so a change to either side
(round_inputs.py REACH_BOX, the migration) must fail here rather than silently fall back to
reading every profile. Sequential scans and merge joins are switched off for the check, so the
plan shows the index whenever it applies (on a near-empty table the planner would rightly prefer
other paths). Nested loops are off for the patients' read, whose reach index serves a join that
would otherwise probe the searches row by row, and on for the colleagues' read, which is exactly a
probe of the practice index per chosen therapist: with them off, the planner's choice between that
probe and a full index scan depended on the table statistics of the moment."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, event, insert, text

from therapy_platform.matching.adapters.round_inputs import SqlRoundInputs
from therapy_platform.matching.adapters.tables import therapist_profiles

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


@pytest.fixture
def connection(service_url: Callable[[str], str]) -> Iterator[Connection]:
    engine = create_engine(service_url("matching_service"))
    with engine.connect() as connection, connection.begin() as transaction:
        for setting in ("enable_seqscan", "enable_nestloop", "enable_mergejoin"):
            connection.execute(text(f"SET LOCAL {setting} = off"))
        yield connection
        transaction.rollback()
    engine.dispose()


def _therapist(connection: Connection, postcode: str) -> uuid.UUID:
    therapist_id = uuid.uuid4()
    data = {
        "id": str(therapist_id),
        "status": "active",
        "postcode": postcode,
        "practice_key": f"p:{uuid.uuid4().hex}",
        "created_at": NOW.isoformat(),
        "location": {"latitude": 52.52, "longitude": 13.40, "precision": "postcode"},
    }
    connection.execute(
        insert(therapist_profiles).values(
            id=therapist_id, data=data, source_event_id=uuid.uuid4(), source_timestamp=NOW, updated_at=NOW
        )
    )
    return therapist_id


def _plans(connection: Connection, **read: Any) -> dict[str, str]:
    """The EXPLAIN output of every statement the read sends, by the first table it names."""
    sent: list[tuple[str, Any]] = []

    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", remember)
    try:
        SqlRoundInputs(connection).read(**read)
    finally:
        event.remove(connection, "before_cursor_execute", remember)
    plans = {}
    for statement, parameters in sent:
        rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).all()
        plans[statement] = "\n".join(row[0] for row in rows)
    return plans


def _plan_of(plans: dict[str, str], table: str) -> str:
    found = [plan for statement, plan in plans.items() if f"FROM matching_service.{table}" in statement]
    assert found, f"no statement read {table}: {list(plans)}"
    return "\n".join(found)


def test_a_region_round_finds_its_therapists_through_the_postcode_and_practice_indexes(
    connection: Connection,
) -> None:
    _therapist(connection, "10115")
    connection.execute(text("SET LOCAL enable_nestloop = on"))
    therapists = _plan_of(_plans(connection, postcode_prefix="10"), "therapist_profiles")
    assert "therapist_profiles_postcode" in therapists, therapists
    assert "therapist_profiles_practice" in therapists, therapists  # the chosen ones' colleagues


def test_a_region_round_finds_its_patients_through_the_reach_index(connection: Connection) -> None:
    _therapist(connection, "10115")
    searches = _plan_of(_plans(connection, postcode_prefix="10"), "searches")
    assert "patient_profiles_reach" in searches, searches


def test_a_round_for_chosen_therapists_reads_patients_through_the_reach_index(connection: Connection) -> None:
    chosen = _therapist(connection, "20095")
    plans = _plans(connection, therapist_ids=[chosen])
    assert "patient_profiles_reach" in _plan_of(plans, "searches"), _plan_of(plans, "searches")
