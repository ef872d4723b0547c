"""The operators' bulk load against real PostgreSQL, as the therapist service's role: the use
case's matching queries, and the CLI end to end (file -> rows, audit entries, outbox events)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import Engine, text

from therapist_fakes import FakeGeocoder
from therapy_platform.platform.database import make_engine
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.domain.therapist import TherapistPatch
from therapy_platform.therapists.use_cases import bulk_upsert, patch_therapist
from tools.bulk_load import EXIT_OK, EXIT_REJECTED, main

pytestmark = pytest.mark.integration

SCHEMA = "therapist_service"
NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def therapist_engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url(SCHEMA))
    yield engine
    engine.dispose()


def _empty(admin_engine: Engine) -> None:
    with admin_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {SCHEMA}.therapists, {SCHEMA}.audit_log, {SCHEMA}.outbox"))


@pytest.fixture(autouse=True)
def empty_tables(admin_engine: Engine) -> None:
    _empty(admin_engine)


def _all(admin_engine: Engine, sql: str) -> list[Any]:
    with admin_engine.connect() as connection:
        return list(connection.execute(text(sql)))


def test_bulk_upsert_matches_in_sql_and_respects_staff_edits(
    therapist_engine: Engine, admin_engine: Engine
) -> None:
    rows: list[dict[str, Any]] = [
        {
            "directory_id": "D-1",
            "first_name": "Hanna",
            "last_name": "Schäfer",
            "postcode": "52062",
            "email": "Praxis@Schaefer.example",
            "phone": "0241 1",
        },
        {
            "first_name": "Jonas",
            "last_name": "Schäfer",
            "postcode": "52062",
            "email": "praxis@schaefer.example",
        },
        {"first_name": "Ömer", "last_name": "Öztürk", "postcode": "10115", "email": "oe@example.org"},
    ]
    uow = SqlTherapistUnitOfWork(therapist_engine)
    report = bulk_upsert(uow, FakeGeocoder(), rows, actor="operator:test", now=NOW).value
    assert (report.created, report.updated, report.rejected) == (3, 0, [])
    hanna = next(
        row for row in _all(admin_engine, f"SELECT * FROM {SCHEMA}.therapists") if row.first_name == "Hanna"
    )
    # Staff fix Hanna's phone by hand; the next load must keep it.
    patch_therapist(
        uow,
        FakeGeocoder(),
        hanna.id,
        TherapistPatch.model_validate({"phone": "0241 777"}),
        actor="staff",
        now=NOW,
    )
    again: list[dict[str, Any]] = [
        # matched by email (other case) + last name (other case) + postcode + first name
        {
            "first_name": "HANNA",
            "last_name": "SCHÄFER",
            "postcode": "52062",
            "email": "PRAXIS@schaefer.example",
            "phone": "0241 2",
            "city": "Aachen",
        },
        {
            "directory_id": "D-9",
            "first_name": "Ömer",
            "last_name": "ÖZTÜRK",
            "postcode": "10115",
            "email": "OE@example.org",
        },
        {
            "first_name": "Jonas",
            "last_name": "Schäfer",
            "postcode": "52062",
            "email": "praxis@schaefer.example",
        },
    ]
    report = bulk_upsert(uow, FakeGeocoder(), again, actor="operator:test", now=NOW).value
    assert (report.created, report.updated, report.unchanged, report.rejected) == (0, 2, 1, [])
    stored = {row.first_name: row for row in _all(admin_engine, f"SELECT * FROM {SCHEMA}.therapists")}
    assert stored["HANNA"].phone == "0241 777" and stored["HANNA"].city == "Aachen"
    assert stored["Ömer"].directory_id == "D-9" and stored["Ömer"].last_name == "ÖZTÜRK"
    actions = [row.action for row in _all(admin_engine, f"SELECT action FROM {SCHEMA}.audit_log ORDER BY id")]
    assert actions == ["bulk_create"] * 3 + ["patch"] + ["bulk_update"] * 2
    events = _all(admin_engine, f"SELECT event_type, published_at FROM {SCHEMA}.outbox ORDER BY id")
    assert [event.event_type for event in events] == ["therapist.created"] * 3 + ["therapist.updated"] * 3
    assert all(event.published_at is None for event in events)  # the scheduled relay publishes them


def test_cli_loads_a_csv_file(
    tmp_path: Path, service_url: Callable[[str], str], admin_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", service_url(SCHEMA))
    path = tmp_path / "therapeuten.csv"
    path.write_text(
        "directory_id;first_name;last_name;postcode;city;procedures;languages;phone_windows;offers_group_therapy\n"
        'D-1;Hanna;Schäfer;52062;Aachen;VT, TP;de, en;"{""mon"": [""08:00-09:00""]}";ja\n'
        "D-2;Paul;Weiß;10115;Berlin;;;;nein\n"
        "D-3;Kaputt;Zeile;5206;;XX;;;\n",
        encoding="utf-8",
    )
    console = Console(record=True, width=200)
    assert main(["therapists", str(path), "--actor", "operator:ci"], console=console) == EXIT_REJECTED
    output = console.export_text()
    assert "created" in output and "row 4:" in output and "postcode" in output and "procedures.0" in output
    rows = {row.directory_id: row for row in _all(admin_engine, f"SELECT * FROM {SCHEMA}.therapists")}
    assert set(rows) == {"D-1", "D-2"}
    assert rows["D-1"].procedures == ["TP", "VT"] and rows["D-1"].phone_windows == {"mon": ["08:00-09:00"]}
    assert rows["D-1"].offers_group_therapy is True and rows["D-2"].languages == ["de"]
    audit = _all(admin_engine, f"SELECT DISTINCT actor FROM {SCHEMA}.audit_log")
    assert [row.actor for row in audit] == ["operator:ci"]

    # Loading the corrected file again updates nothing that is already right.
    path.write_text(
        json.dumps([{"directory_id": "D-1", "first_name": "Hanna", "city": "Aachen"}]), encoding="utf-8"
    )
    json_path = path.with_suffix(".json")
    path.rename(json_path)
    console = Console(record=True, width=200)
    assert main(["therapists", str(json_path)], console=console) == EXIT_OK
    assert "unchanged" in console.export_text()


def test_cli_dry_run_writes_nothing(
    tmp_path: Path, service_url: Callable[[str], str], admin_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", service_url(SCHEMA))
    path = tmp_path / "therapists.json"
    path.write_text(json.dumps({"therapists": [{"first_name": "A", "last_name": "B", "postcode": "52062"}]}))
    console = Console(record=True, width=200)
    assert main(["therapists", str(path), "--dry-run"], console=console) == EXIT_OK
    assert "dry run" in console.export_text()
    for table in ("therapists", "audit_log", "outbox"):
        assert _all(admin_engine, f"SELECT * FROM {SCHEMA}.{table}") == []


def _therapist_file_rows() -> list[dict[str, Any]]:
    """45 rows over 9 surnames: each person's second row updates the first (by directory id or
    by email + last name + postcode), and one row per surname is invalid."""
    rows: list[dict[str, Any]] = []
    for family in range(9):
        name = ["Schäfer", "Weiß", "Öztürk", "Meier", "Lang", "Kurz", "Vogel", "Fuchs", "Wolf"][family]
        postcode = f"{10115 + family * 17}"
        rows += [
            {"directory_id": f"D-{family}", "first_name": "Hanna", "last_name": name, "postcode": postcode},
            {
                "first_name": "Paul",
                "last_name": name,
                "postcode": postcode,
                "email": f"p{family}@example.org",
            },
            {
                "directory_id": f"D-{family}",
                "first_name": "Hanna",
                "last_name": name,
                "phone": f"0241 {family}",
            },
            {
                "first_name": "Paul",
                "last_name": name.upper(),
                "postcode": postcode,
                "email": f"P{family}@example.org",
                "city": "Neu",
            },
            {"directory_id": f"X-{family}", "first_name": "Kaputt", "last_name": name, "postcode": "1"},
        ]
    return rows


def _stored_state(admin_engine: Engine) -> dict[str, Any]:
    columns = "directory_id, first_name, last_name, postcode, email, phone, city"
    return {
        "therapists": sorted(
            map(tuple, _all(admin_engine, f"SELECT {columns} FROM {SCHEMA}.therapists")), key=str
        ),
        "audit": sorted(row.action for row in _all(admin_engine, f"SELECT action FROM {SCHEMA}.audit_log")),
        "events": sorted(
            row.event_type for row in _all(admin_engine, f"SELECT event_type FROM {SCHEMA}.outbox")
        ),
    }


def test_cli_side_by_side_loads_as_one_process_does(
    tmp_path: Path, service_url: Callable[[str], str], admin_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from therapy_platform.platform import bulk_load

    monkeypatch.setenv("DATABASE_URL", service_url(SCHEMA))
    path = tmp_path / "therapists.json"
    path.write_text(json.dumps(_therapist_file_rows()), encoding="utf-8")
    parts: list[int] = []
    partition_rows = bulk_load.partition_rows

    def recorded_partition(*args: Any) -> Any:
        split = partition_rows(*args)
        parts.append(len(split))
        return split

    def load(jobs: int) -> tuple[int, str, dict[str, Any]]:
        console = Console(record=True, width=200)
        code = main(["therapists", str(path), "--jobs", str(jobs)], console=console)
        output = console.export_text()
        state = _stored_state(admin_engine)
        _empty(admin_engine)
        return code, output[output.index("therapists: bulk load") :], state

    one = load(1)
    monkeypatch.setattr("tools.bulk_load.partition_rows", recorded_partition)  # as the tool imports it
    three = load(3)
    assert parts == [3]  # the second load did run in three processes
    assert three == one
    code, summary, state = three
    assert code == EXIT_REJECTED and [f"row {n}:" in summary for n in range(5, 46, 5)] == [True] * 9
    assert len(state["therapists"]) == 18 and state["audit"].count("bulk_update") == 18
    assert ("D-3", "Hanna", "Meier", "10166", None, "0241 3", None) in state["therapists"]
