"""The operators' directory import in chunks against real PostgreSQL (issue 15): entries commit
CHUNK_SIZE at a time, each in its own savepoint. The report equals the one of an import with a
transaction per entry, a second run writes nothing, and an entry the database refuses is skipped
alone. Files are fed directly (no directory server)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import Engine, text

from localcloud.directory_data import DirectoryDataGenerator, answers
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.unit_of_work import SharedTransaction
from therapy_platform.therapists.adapters.staging import TherapistStage
from therapy_platform.therapists.imports import use_cases
from therapy_platform.therapists.imports.adapters.store import (
    SqlDirectoryImportUnitOfWork,
    SqlImportReportStore,
)
from therapy_platform.therapists.imports.domain.reports import ImportResult, ImportSource
from therapy_platform.therapists.imports.use_cases import import_directory_file
from tools.import_directory import EXIT_SKIPPED, main

pytestmark = pytest.mark.integration

THERAPISTS = "therapist_service"
NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
TABLES = (
    "therapists",
    "audit_log",
    "outbox",
    "directory_listings",
    "directory_import_items",
    "directory_imports",
)


@pytest.fixture(scope="module")
def therapist_engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url(THERAPISTS), pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def empty_tables(admin_engine: Engine) -> None:
    with admin_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(f'{THERAPISTS}.{t}' for t in TABLES)} CASCADE"))


def _data() -> bytes:
    dataset = DirectoryDataGenerator(23, prefixes=["52"]).dataset(140)
    return json.dumps(answers(dataset)).encode()


def _import(engine: Engine, data: bytes, *, chunked: bool, staged: bool = False) -> ImportResult:
    shared = SharedTransaction(engine) if chunked else None
    try:
        return import_directory_file(
            SqlDirectoryImportUnitOfWork(engine, shared=shared),
            SqlImportReportStore(engine),
            postcode_directory(),
            data,
            source=ImportSource("/operator/52.json"),
            now=NOW,
            chunks=shared,
            staging=TherapistStage(shared) if staged and shared is not None else None,
        ).value
    finally:
        if shared is not None:
            shared.close()


def _stored(admin_engine: Engine) -> dict[str, Any]:
    with admin_engine.connect() as connection:
        return {
            "therapists": sorted(
                (row.directory_id, row.last_name, row.postcode)
                for row in connection.execute(
                    text(f"SELECT directory_id, last_name, postcode FROM {THERAPISTS}.therapists")
                )
            ),
            "listings": connection.execute(
                text(f"SELECT count(*) FROM {THERAPISTS}.directory_listings")
            ).scalar_one(),
            "outbox": connection.execute(text(f"SELECT count(*) FROM {THERAPISTS}.outbox")).scalar_one(),
        }


def _report(result: ImportResult) -> tuple[Any, ...]:
    items = [(item.outcome, item.position, item.directory_id, item.reason) for item in result.items]
    return (result.report.counts, result.report.skip_reasons, result.report.warnings, items)


@pytest.mark.parametrize("staged", [False, True], ids=["savepoints", "staged"])
def test_chunked_import_reports_and_stores_what_an_entry_by_entry_import_does(
    therapist_engine: Engine, admin_engine: Engine, monkeypatch: pytest.MonkeyPatch, staged: bool
) -> None:
    data = _data()
    monkeypatch.setattr(use_cases, "CHUNK_SIZE", 7)  # several chunks and a partial last one
    chunked = _import(therapist_engine, data, chunked=True, staged=staged)
    stored = _stored(admin_engine)
    assert chunked.report.counts.new > 100 and chunked.report.counts.skipped > 0
    assert len(chunked.event_ids) == stored["outbox"] == chunked.report.counts.new

    with admin_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(f'{THERAPISTS}.{t}' for t in TABLES)} CASCADE"))
    single = _import(therapist_engine, data, chunked=False)
    assert _report(single) == _report(chunked)
    assert _stored(admin_engine) == stored

    again = _import(therapist_engine, data, chunked=True, staged=staged)
    assert (again.report.counts.new, again.report.counts.updated) == (0, 0)
    assert _stored(admin_engine) == stored


def test_an_entry_the_database_refuses_is_skipped_alone(
    therapist_engine: Engine, admin_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A constraint violation inside one entry's savepoint leaves the chunk's other entries."""
    data = _data()
    refused = {"count": 0}
    original = use_cases._event

    def refusing_third(*args: Any, **kwargs: Any) -> Any:
        refused["count"] += 1
        if refused["count"] == 3:
            # Written after the therapist and its audit entry: a duplicate key in the outbox.
            args[0]._connection.execute(
                text(f"INSERT INTO {THERAPISTS}.outbox SELECT * FROM {THERAPISTS}.outbox LIMIT 1")
            )
        return original(*args, **kwargs)

    monkeypatch.setattr(use_cases, "_event", refusing_third)
    monkeypatch.setattr(use_cases, "CHUNK_SIZE", 50)
    result = _import(therapist_engine, data, chunked=True)
    assert result.report.skip_reasons.get("conflict") == 1
    stored = _stored(admin_engine)
    assert stored["outbox"] == result.report.counts.new == len(stored["therapists"])
    assert stored["listings"] == result.report.counts.new


def test_a_value_the_database_refuses_in_a_staged_chunk_skips_that_entry_alone(
    therapist_engine: Engine, admin_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The staged chunk's statements fail; the chunk runs again entry by entry in savepoints,
    which skips the one entry (as `conflict`) and reports what a row-by-row import reports."""
    data = _data()
    original = use_cases._audit
    refused: dict[str, object] = {"new": 0}

    def refusing_third_new(*args: Any, **kwargs: Any) -> Any:
        after = kwargs.get("after")
        if after is not None and args[2] == use_cases.ACTION_NEW:
            refused["new"] = int(str(refused["new"])) + 1
            if refused["new"] == 3:
                refused["directory_id"] = after["directory_id"]
            if after["directory_id"] == refused.get("directory_id"):
                # PostgreSQL's jsonb cannot hold a NUL character: only the database refuses it.
                kwargs["after"] = {**after, "refused": "\x00"}
        return original(*args, **kwargs)

    monkeypatch.setattr(use_cases, "_audit", refusing_third_new)
    monkeypatch.setattr(use_cases, "CHUNK_SIZE", 50)
    staged = _import(therapist_engine, data, chunked=True, staged=True)
    assert staged.report.skip_reasons.get("conflict") == 1
    skipped = [item for item in staged.items if item.reason == "conflict"]
    assert [item.directory_id for item in skipped] == [refused["directory_id"]]
    stored = _stored(admin_engine)
    assert stored["outbox"] == staged.report.counts.new == len(stored["therapists"]) == stored["listings"]
    assert refused["directory_id"] not in {directory_id for directory_id, _, _ in stored["therapists"]}

    with admin_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(f'{THERAPISTS}.{t}' for t in TABLES)} CASCADE"))
    refused["new"] = 0
    row_by_row = _import(therapist_engine, data, chunked=True)
    assert _report(row_by_row) == _report(staged)
    assert _stored(admin_engine) == stored


def test_the_operator_command_imports_in_chunks(
    tmp_path: Path, service_url: Callable[[str], str], admin_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "52.json").write_bytes(_data())
    monkeypatch.setenv("DATABASE_URL", service_url(THERAPISTS))
    monkeypatch.setattr(use_cases, "CHUNK_SIZE", 9)
    assert (
        main([str(tmp_path / "52.json"), "--actor", "operator:test"], console=Console(record=True))
        == EXIT_SKIPPED
    )
    first = _stored(admin_engine)
    assert len(first["therapists"]) > 100
    assert main([str(tmp_path / "52.json")], console=Console(record=True)) == EXIT_SKIPPED
    assert _stored(admin_engine) == first


@pytest.mark.parametrize("staged", [False, True], ids=["savepoints", "staged"])
def test_an_entry_finds_a_therapist_without_directory_id_by_name(
    therapist_engine: Engine, admin_engine: Engine, monkeypatch: pytest.MonkeyPatch, staged: bool
) -> None:
    data = _data()
    monkeypatch.setattr(use_cases, "CHUNK_SIZE", 20)
    _import(therapist_engine, data, chunked=True, staged=staged)
    with admin_engine.begin() as connection:
        known = connection.execute(
            text(f"SELECT id, directory_id FROM {THERAPISTS}.therapists ORDER BY directory_id LIMIT 1")
        ).one()
        connection.execute(
            text(f"DELETE FROM {THERAPISTS}.directory_listings WHERE directory_id = :d"),
            {"d": known.directory_id},
        )
        connection.execute(
            text(f"UPDATE {THERAPISTS}.therapists SET directory_id = NULL WHERE id = :i"), {"i": known.id}
        )
    again = _import(therapist_engine, data, chunked=True, staged=staged)
    assert (again.report.counts.new, again.report.counts.updated) == (0, 1)
    with admin_engine.connect() as connection:
        directory_id = connection.execute(
            text(f"SELECT directory_id FROM {THERAPISTS}.therapists WHERE id = :i"), {"i": known.id}
        ).scalar_one()
    assert directory_id == known.directory_id
    assert len(_stored(admin_engine)["therapists"]) == again.report.counts.unchanged + 1
