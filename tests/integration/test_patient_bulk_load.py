"""The operator CLI loading patients into real PostgreSQL as the patient service's role."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import Engine, text

from tools import bulk_load

pytestmark = pytest.mark.integration


def _csv(rows: list[str]) -> str:
    header = (
        "first_name;last_name;birth_date;email;postcode;symptoms;therapy_procedures;group_only;availability"
    )
    return "\n".join([header, *rows]) + "\n"


def _run(path: Path, *extra: str) -> tuple[int, str]:
    output = io.StringIO()
    code = bulk_load.main(
        ["patients", str(path), "--actor", "operator:test", *extra], console=Console(file=output, width=200)
    )
    return code, output.getvalue()


def _patients(admin_engine: Engine, marker: str) -> list[dict[str, object]]:
    with admin_engine.connect() as connection:
        return [
            dict(row)
            for row in connection.execute(
                text("SELECT * FROM patient_service.patients WHERE email LIKE :m ORDER BY email"),
                {"m": f"%{marker}%"},
            ).mappings()
        ]


def test_csv_load_is_idempotent_reports_rows_and_audits(
    tmp_path: Path,
    admin_engine: Engine,
    service_url: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", service_url("patient_service"))
    marker = uuid.uuid4().hex[:8]
    path = tmp_path / "patients.csv"
    path.write_text(
        _csv(
            [
                f"Jürgen;Weiß;1978-03-14;a-{marker}@example.org;10115;depression, sleep;VT;nein;"
                + '"{""mon"": [""08:00-12:00""]}"',
                f"Änne;Müller;1991-11-02;b-{marker}@example.org;52062;anxiety;VT, TP;ja;",
                f"Ohne;Symptome;1980-01-01;c-{marker}@example.org;01067;;;;",
            ]
        ),
        encoding="utf-8",
    )

    code, dry = _run(path, "--dry-run")
    assert code == 1 and "dry run" in dry and _patients(admin_engine, marker) == []

    code, printed = _run(path)
    assert code == 1  # one row rejected
    # Numbered like the spreadsheet (header = row 1), in the API's code and German field messages.
    assert "row 4: validation_failed (Ungültige oder fehlende Angaben): symptoms: " in printed, printed
    stored = _patients(admin_engine, marker)
    assert [row["last_name"] for row in stored] == ["Weiß", "Müller"]
    assert stored[0]["availability"] == {"mon": ["08:00-12:00"]} and stored[0]["symptoms"] == [
        "depression",
        "sleep",
    ]
    assert stored[1]["group_only"] and stored[1]["open_to_group_therapy"]
    assert stored[0]["location_precision"] == "postcode"

    code, again = _run(path)
    assert code == 1 and len(_patients(admin_engine, marker)) == 2  # nobody duplicated
    assert "unchanged" in again

    with admin_engine.connect() as connection:
        audit = connection.execute(
            text(
                "SELECT actor, action, reason FROM patient_service.audit_log "
                "WHERE entity_id = :id ORDER BY id"
            ),
            {"id": stored[0]["id"]},
        ).all()
        events = (
            connection.execute(
                text("SELECT event_type FROM patient_service.outbox WHERE aggregate_key = :key"),
                {"key": str(stored[0]["id"])},
            )
            .scalars()
            .all()
        )
    assert audit[0] == ("operator:test", "create", "bulk load row 2")
    assert events == ["patient.created"]  # the unchanged second load emitted nothing


def test_side_by_side_load_ends_as_a_one_process_load(
    tmp_path: Path,
    admin_engine: Engine,
    service_url: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three processes (`--jobs 3`) store, audit and report what one process does, for a file in
    which people come back in later rows with their name and email in other letter cases."""
    monkeypatch.setenv("DATABASE_URL", service_url("patient_service"))

    def load(jobs: int) -> tuple[int, str, list[tuple[object, ...]], list[str]]:
        marker = uuid.uuid4().hex[:8]
        rows = []
        for family, name in enumerate(["Weiß", "Müller", "Öztürk", "Lang", "Vogel", "Fuchs"]):
            email = f"{family}-{marker}@example.org"
            same_email = f"{family}-{marker}@Example.ORG"
            rows += [
                f"Anna;{name};1980-01-0{family + 1};{email};10115;depression;VT;nein;",
                f"Ben;{name};1990-02-0{family + 1};b{email};52062;anxiety;TP;nein;",
                f"Anna;{name.upper()};1980-01-0{family + 1};{same_email};10117;depression, sleep;VT;ja;",
                f"Kaputt;{name};1970-01-01;k{email};10115;;;;",
            ]
        path = tmp_path / f"patients-{jobs}.csv"
        path.write_text(_csv(rows), encoding="utf-8")
        code, printed = _run(path, "--jobs", str(jobs))
        stored = [
            (
                row["last_name"],
                row["birth_date"],
                str(row["email"]).replace(marker, "M"),
                row["postcode"],
                row["symptoms"],
            )
            for row in _patients(admin_engine, marker)
        ]
        with admin_engine.connect() as connection:
            actions = connection.execute(
                text(
                    "SELECT action FROM patient_service.audit_log WHERE entity_id IN "
                    "(SELECT id FROM patient_service.patients WHERE email LIKE :m) ORDER BY action"
                ),
                {"m": f"%{marker}%"},
            ).scalars()
            return (
                code,
                printed[printed.index("patients: bulk load") :],
                sorted(stored, key=str),
                list(actions),
            )

    one = load(1)
    three = load(3)
    assert three == one
    code, summary, stored, actions = three
    assert code == 1 and all(f"row {number}:" in summary for number in range(5, 26, 4)), summary
    # "WEISS" is not "Weiß" to the matcher (lower case): a new patient, as in one process.
    assert len(stored) == 13, summary
    assert actions == ["create"] * 13 + ["update"] * 5, actions
    assert ("MÜLLER", date(1980, 1, 2), "1-M@Example.ORG", "10117", ["depression", "sleep"]) in stored
