"""The operators' bulk load: matching, staff-owned fields, rejections by row, and the CLI's file
reading (the CLI against PostgreSQL is in tests/integration/test_therapist_bulk_load.py)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from therapist_fakes import FakeGeocoder, InMemoryTherapistUnitOfWork, TherapistDatabase
from therapy_platform.platform.bulk_load import BulkReport
from therapy_platform.therapists.domain.therapist import (
    Therapist,
    TherapistAction,
    TherapistDraft,
    TherapistPatch,
)
from therapy_platform.therapists.use_cases import bulk_upsert, create_therapist, patch_therapist
from tools.bulk_load import EXIT_UNUSABLE, LOADERS, main, read_rows

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
ROW: dict[str, Any] = {
    "directory_id": "D-1",
    "first_name": "Hanna",
    "last_name": "Schäfer",
    "postcode": "52062",
    "city": "Aachen",
    "email": "praxis@schaefer.example",
    "phone": "0241 100",
    "procedures": "VT",
}


@pytest.fixture
def database() -> TherapistDatabase:
    return TherapistDatabase()


def load(database: TherapistDatabase, rows: list[Any], *, geocoder: FakeGeocoder | None = None) -> BulkReport:
    return bulk_upsert(
        InMemoryTherapistUnitOfWork(database),
        geocoder or FakeGeocoder(),
        rows,
        actor="operator:test",
        now=NOW,
    ).value


def only(database: TherapistDatabase) -> Therapist:
    (therapist,) = database.therapists.values()
    return therapist


def test_new_rows_are_created_active_and_located(database: TherapistDatabase) -> None:
    report = load(database, [ROW, {**ROW, "directory_id": "D-2", "first_name": "Paul", "postcode": "10115"}])
    assert (report.created, report.updated, report.unchanged, report.rejected) == (2, 0, 0, [])
    therapists = sorted(database.therapists.values(), key=lambda t: t.first_name)
    assert [t.directory_id for t in therapists] == ["D-1", "D-2"]
    assert all(t.status == "active" and not t.location_flagged for t in therapists)
    assert therapists[0].staff_edited_fields == []  # loaded, not typed in by staff
    assert [event.event_type for event in database.events()] == ["therapist.created"] * 2
    assert [entry.action for entry in database.audit] == ["bulk_create"] * 2


def test_rejected_rows_name_row_and_fields_and_do_not_stop_the_load(database: TherapistDatabase) -> None:
    rows: list[Any] = [
        {**ROW, "postcode": "5206", "languages": "de, xx"},
        ROW,
        {"first_name": "Ohne"},
        "not an object",
        {**ROW, "directory_id": "D-9", "first_name": "Max", "unknown_column": 1},
    ]
    report = bulk_upsert(
        InMemoryTherapistUnitOfWork(database), FakeGeocoder(), rows, actor="op", now=NOW, first_row_number=2
    ).value
    assert report.created == 1
    numbers = [number for number, _ in report.rejected]
    assert numbers == [2, 4, 5, 6]
    reasons = dict(report.rejected)
    assert "postcode:" in reasons[2] and "languages.1:" in reasons[2]
    assert "last_name: Pflichtfeld fehlt" in reasons[4] and "postcode: Pflichtfeld fehlt" in reasons[4]
    assert "row:" in reasons[5]
    assert "unknown_column:" in reasons[6]
    assert report.processed == 5


def test_match_by_directory_id_updates_without_touching_operational_fields(
    database: TherapistDatabase,
) -> None:
    load(database, [ROW])
    created = only(database)
    database.therapists[created.id] = created.transition(
        TherapistAction.BLOCK,
        reason="complaint",
        now=NOW,
    ).with_cooling_period(NOW.date() + timedelta(days=20), now=NOW)
    report = load(database, [{**ROW, "phone": "0241 200", "last_name": "Schäfer-Berg"}])
    assert (report.created, report.updated) == (0, 1)
    updated = only(database)
    assert updated.phone == "0241 200" and updated.last_name == "Schäfer-Berg"
    assert updated.status == "blocked" and updated.next_contact_allowed_on == NOW.date() + timedelta(days=20)
    assert database.audit[-1].action == "bulk_update"
    assert database.audit[-1].before == {"last_name": "Schäfer", "phone": "0241 100"}
    assert database.events()[-1].event_type == "therapist.updated"


def test_identical_rows_change_nothing(database: TherapistDatabase) -> None:
    load(database, [ROW])
    report = load(database, [ROW, {**ROW, "email": " PRAXIS@Schaefer.example "}])
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)  # the second changes the spelling


def test_match_by_email_last_name_and_postcode_then_attach_directory_id(database: TherapistDatabase) -> None:
    load(database, [{key: value for key, value in ROW.items() if key != "directory_id"}])
    report = load(
        database, [{**ROW, "email": "PRAXIS@schaefer.example", "last_name": "SCHÄFER", "fax": "0241 9"}]
    )
    assert (report.created, report.updated) == (0, 1)
    therapist = only(database)
    assert therapist.directory_id == "D-1" and therapist.fax == "0241 9"
    assert therapist.last_name == "SCHÄFER"  # the load's spelling wins for fields staff did not edit


def test_a_different_first_name_at_the_same_practice_is_a_new_therapist(database: TherapistDatabase) -> None:
    load(database, [{**ROW, "directory_id": None}])
    report = load(database, [{**ROW, "directory_id": None, "first_name": "Jonas"}])
    assert report.created == 1 and len(database.therapists) == 2


def test_a_different_directory_id_is_a_different_therapist(database: TherapistDatabase) -> None:
    load(database, [ROW])
    report = load(database, [{**ROW, "directory_id": "D-7"}])
    assert report.created == 1 and len(database.therapists) == 2


def test_ambiguous_matches_are_rejected(database: TherapistDatabase) -> None:
    twin = {**ROW, "directory_id": None}
    load(database, [twin])
    # Staff created the same person by hand: now two records share email, name and postcode.
    create_therapist(
        InMemoryTherapistUnitOfWork(database),
        FakeGeocoder(),
        TherapistDraft.model_validate(
            {k: v for k, v in twin.items() if k not in ("directory_id", "procedures")}
        ),
        actor="staff",
        now=NOW,
    )
    report = load(database, [twin])
    assert report.created == report.updated == 0
    assert "matches 2 therapists" in report.rejected[0][1]


def test_fields_staff_edited_are_never_overwritten(database: TherapistDatabase) -> None:
    load(database, [ROW])
    therapist = only(database)
    patch_therapist(
        InMemoryTherapistUnitOfWork(database),
        FakeGeocoder(),
        therapist.id,
        TherapistPatch.model_validate({"phone": "0241 555", "email": "neu@schaefer.example"}),
        actor="staff",
        now=NOW,
    )
    report = load(
        database, [{**ROW, "phone": "0241 999", "city": "Aachen-Mitte", "email": "alt@schaefer.example"}]
    )
    assert report.updated == 1
    after = only(database)
    assert after.phone == "0241 555" and after.email == "neu@schaefer.example"  # staff's values stay
    assert after.city == "Aachen-Mitte"  # not edited by staff: updated
    assert set(after.staff_edited_fields) == {"phone", "email"}


def test_blank_cells_never_blank_known_values(database: TherapistDatabase) -> None:
    load(database, [ROW])
    report = load(database, [{**ROW, "email": "", "phone": None, "city": "  "}])
    assert report.unchanged == 1
    assert only(database).email == ROW["email"]


def test_address_change_locates_again(database: TherapistDatabase) -> None:
    geocoder = FakeGeocoder()
    load(database, [ROW], geocoder=geocoder)
    load(database, [{**ROW, "postcode": "10115", "city": "Berlin"}], geocoder=geocoder)
    assert only(database).location.latitude == 52.5323
    assert [call["postcode"] for call in geocoder.calls] == ["52062", "10115"]


def test_progress_is_reported_for_every_row(database: TherapistDatabase) -> None:
    seen: list[int] = []
    bulk_upsert(
        InMemoryTherapistUnitOfWork(database),
        FakeGeocoder(),
        [ROW, {"bad": 1}, {**ROW, "directory_id": "D-3", "first_name": "Eva"}],
        actor="op",
        now=NOW,
        first_row_number=2,
        on_progress=seen.append,
    )
    assert seen == [2, 3, 4]


def test_a_failing_row_leaves_nothing_behind(database: TherapistDatabase) -> None:
    report = bulk_upsert(
        InMemoryTherapistUnitOfWork(database, fail_on_outbox=True), FakeGeocoder(), [], actor="op", now=NOW
    ).value
    assert report.processed == 0
    with pytest.raises(RuntimeError):
        bulk_upsert(
            InMemoryTherapistUnitOfWork(database, fail_on_outbox=True),
            FakeGeocoder(),
            [ROW],
            actor="op",
            now=NOW,
        )
    assert database.therapists == {} and database.audit == [] and database.outbox == []


# ------------------------------------------------------------------------------ CLI file reading


def test_csv_with_semicolons_bom_and_extra_cells(tmp_path: Path) -> None:
    path = tmp_path / "therapists.csv"
    path.write_text(
        "\ufefffirst_name;last_name;postcode;procedures\n"
        "Hanna;Schäfer;52062;VT, TP\n"
        'Paul;"Weiß; Sohn";10115;\n'
        "Eva;Extra;10115;VT;surplus\n",
        encoding="utf-8",
    )
    rows = read_rows(path, "therapists")
    assert rows.first_row_number == 2
    assert rows.columns == {"first_name", "last_name", "postcode", "procedures"}
    assert rows.rows[0] == {
        "first_name": "Hanna",
        "last_name": "Schäfer",
        "postcode": "52062",
        "procedures": "VT, TP",
    }
    assert rows.rows[1] == {
        "first_name": "Paul",
        "last_name": "Weiß; Sohn",
        "postcode": "10115",
        "procedures": "",
    }
    database = TherapistDatabase()
    report = load(database, rows.rows)
    assert report.created == 2 and report.rejected[0][0] == 3 and "extra_cells" in report.rejected[0][1]


def test_json_list_or_wrapped_list(tmp_path: Path) -> None:
    plain, wrapped = tmp_path / "a.json", tmp_path / "b.json"
    plain.write_text(json.dumps([ROW]), encoding="utf-8")
    wrapped.write_text(json.dumps({"therapists": [ROW, ROW]}), encoding="utf-8")
    assert read_rows(plain, "therapists").rows == [ROW]
    assert len(read_rows(wrapped, "therapists").rows) == 2
    assert read_rows(plain, "therapists").first_row_number == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.txt", "x", "expected a .csv or .json file"),
        ("a.json", "{not json", "is not valid JSON"),
        ("a.json", '{"patients": []}', "expected a list of objects"),
        ("a.csv", "first_name,shoe_size\nA,42\n", "shoe_size"),
    ],
)
def test_unusable_files_stop_before_connecting(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    console = Console(record=True, width=200)
    # DATABASE_URL is never read: an unusable file fails before any connection is made.
    assert main(["therapists", str(path)], console=console) == EXIT_UNUSABLE
    assert message in console.export_text()


def test_missing_file_is_unusable(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    assert main(["therapists", str(tmp_path / f"{uuid.uuid4()}.csv")], console=console) == EXIT_UNUSABLE


def test_loaders_are_registered_by_kind() -> None:
    assert "therapists" in LOADERS
    assert {"directory_id", "first_name", "postcode", "procedures"} <= LOADERS["therapists"].columns
