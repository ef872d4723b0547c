"""The indexes of migration 0024 serve the queries a limited round really sends: PostgreSQL uses
an expression index only for the very expression it was built on, so a change to either side
(round_inputs.py REACH_BOX, the migration) must fail here rather than silently fall back to
reading every profile.

A plan depends on the table statistics, and the shared test database's depend on what the tests
before this one left behind (in CI a tiny, freshly analysed table once made a full scan of the
primary key win over the practice index). So the check runs in its own migrated database holding
a country's worth of filler, analysed once: the same statistics on every machine and in every
order. Sequential scans and merge joins are switched off, so the plan shows the index whenever it
applies. Nested loops are off for the patients' read, whose reach index serves a join that would
otherwise probe the searches row by row, and on for the colleagues' read, which is exactly a probe
of the practice index per chosen therapist."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, insert, text

from runner import upgrade
from therapy_platform.matching.adapters.round_inputs import SqlRoundInputs
from therapy_platform.matching.adapters.tables import patient_profiles, searches, therapist_profiles

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


FILLER = 3000  # rows per table: far more than a region holds, all read by ANALYZE (deterministic)


def _profile_row(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": uuid.UUID(data["id"]),
        "data": data,
        "source_event_id": uuid.uuid4(),
        "source_timestamp": NOW,
        "updated_at": NOW,
    }


def _fill(connection: Connection) -> None:
    """Therapists and searching patients spread over Germany: about one in a hundred in any
    two-digit postcode region, each therapist in their own practice, a few practices shared."""
    chance = random.Random(15)
    therapists, patients, active_searches = [], [], []
    for number in range(FILLER):
        location = {
            "latitude": chance.uniform(47.5, 54.8),
            "longitude": chance.uniform(6.0, 14.9),
            "precision": "postcode",
        }
        practice = f"p:shared-{number // 2}" if number % 10 < 2 else f"p:{uuid.uuid4().hex}"
        therapists.append(
            _profile_row(
                {
                    "id": str(uuid.uuid4()),
                    "status": "active",
                    "postcode": f"{number % 99 + 1:02d}{number % 997:03d}",
                    "practice_key": practice,
                    "created_at": NOW.isoformat(),
                    "location": location,
                }
            )
        )
        patient_id = uuid.uuid4()
        patients.append(
            _profile_row(
                {
                    "id": str(patient_id),
                    "location": location,
                    "max_travel_km": chance.choice([5, 10, 25, 50]),
                }
            )
        )
        active_searches.append(
            {
                "id": uuid.uuid4(),
                "patient_id": patient_id,
                "status": "active",
                "created_at": NOW,
                "updated_at": NOW,
                "total_requested_contacts": 0,
            }
        )
    connection.execute(insert(therapist_profiles), therapists)
    connection.execute(insert(patient_profiles), patients)
    connection.execute(insert(searches), active_searches)


@pytest.fixture(scope="module")
def plans_engine(scratch_database: Callable[[str], AbstractContextManager[Engine]]) -> Iterator[Engine]:
    """A migrated database of its own (beside the test database), filled and analysed once."""
    with scratch_database("plans") as engine:
        upgrade(engine)
        with engine.begin() as connection:
            _fill(connection)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
        yield engine


@pytest.fixture
def connection(plans_engine: Engine) -> Iterator[Connection]:
    with plans_engine.connect() as connection, connection.begin() as transaction:
        for setting in ("enable_seqscan", "enable_nestloop", "enable_mergejoin"):
            connection.execute(text(f"SET LOCAL {setting} = off"))
        yield connection
        transaction.rollback()


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
