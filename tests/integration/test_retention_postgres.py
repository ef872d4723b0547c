"""Each service's retention job against real PostgreSQL, through the service's own database role,
with an injected clock: rows past their period are erased (or their free text cleared), rows
inside it stay untouched, a second run changes nothing, and small batches reach the same end."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from support import migrate
from therapy_platform.platform.retention import RetentionPeriods
from therapy_platform.platform.retention_sql import RetentionJob

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)
OLD = NOW - timedelta(days=800)  # past every default period
RECENT = NOW - timedelta(days=1)  # inside every default period
PERIODS = RetentionPeriods()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def job_for(
    admin_engine: Engine, service_url: Callable[[str], str]
) -> Iterator[Callable[[str], RetentionJob]]:
    engines: list[Engine] = []

    def make(schema: str) -> RetentionJob:
        engine = create_engine(service_url(schema))  # the service's own role: its grants must suffice
        engines.append(engine)
        return RetentionJob(schema=schema, engine=lambda: engine, periods=PERIODS, clock=Clock(NOW))

    yield make
    for engine in engines:
        engine.dispose()


def _exec(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql), params)


def _scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


def _exists(engine: Engine, table: str, column: str, value: Any) -> bool:
    return bool(_scalar(engine, f"SELECT count(*) FROM {table} WHERE {column} = :v", v=value))


def _common_rows(engine: Engine, schema: str, *, consumes: bool) -> dict[str, Any]:
    """An old and a recent row of each table every service schema has."""
    ids: dict[str, Any] = {}
    for age, at in (("old", OLD), ("recent", RECENT)):
        event_id = uuid.uuid4()
        _exec(
            engine,
            f"INSERT INTO {schema}.outbox (event_id, event_type, aggregate_key, envelope, created_at,"
            " published_at, attempts) VALUES (:id, 't.x', 'k', '{}'::jsonb, :at, :at, 0)",
            id=event_id,
            at=at,
        )
        ids[f"outbox_{age}"] = event_id
        key = uuid.uuid4().hex
        _exec(
            engine,
            f"INSERT INTO {schema}.idempotency_keys (route, actor, key, request_hash, created_at)"
            " VALUES ('POST /x', 'staff', :key, 'h', :at)",
            key=key,
            at=at,
        )
        ids[f"key_{age}"] = key
        if consumes:
            processed = uuid.uuid4()
            _exec(
                engine,
                f"INSERT INTO {schema}.processed_events (event_id, consumer, processed_at)"
                " VALUES (:id, 'c', :at)",
                id=processed,
                at=at,
            )
            ids[f"processed_{age}"] = processed
    # An unpublished row, however old, is never purged (it still has to reach the bus).
    unpublished = uuid.uuid4()
    _exec(
        engine,
        f"INSERT INTO {schema}.outbox (event_id, event_type, aggregate_key, envelope, created_at, attempts)"
        " VALUES (:id, 't.x', 'k', '{}'::jsonb, :at, 0)",
        id=unpublished,
        at=OLD,
    )
    ids["outbox_unpublished"] = unpublished
    return ids


def _assert_common(engine: Engine, schema: str, ids: dict[str, Any], *, consumes: bool) -> None:
    assert not _exists(engine, f"{schema}.outbox", "event_id", ids["outbox_old"])
    assert _exists(engine, f"{schema}.outbox", "event_id", ids["outbox_recent"])
    assert _exists(engine, f"{schema}.outbox", "event_id", ids["outbox_unpublished"])
    assert not _exists(engine, f"{schema}.idempotency_keys", "key", ids["key_old"])
    assert _exists(engine, f"{schema}.idempotency_keys", "key", ids["key_recent"])
    if consumes:
        assert not _exists(engine, f"{schema}.processed_events", "event_id", ids["processed_old"])
        assert _exists(engine, f"{schema}.processed_events", "event_id", ids["processed_recent"])


def _run_twice(job: RetentionJob, **kwargs: Any) -> dict[str, int]:
    _, results = job.run(**kwargs)
    assert all(result.complete for result in results)
    first = {result.rule: result.affected for result in results}
    _, again = job.run(**kwargs)
    assert {result.rule: result.affected for result in again} == dict.fromkeys(first, 0)  # idempotent
    return first


def test_patient_service(admin_engine: Engine, job_for: Callable[[str], RetentionJob]) -> None:
    ids = _common_rows(admin_engine, "patient_service", consumes=True)
    parked = {age: uuid.uuid4() for age in ("old", "recent")}
    for age, at in (("old", OLD), ("recent", RECENT)):  # self-registrations parked for staff
        _exec(
            admin_engine,
            "INSERT INTO patient_service.parked_registrations (id, parked_at, reason, topic, partition,"
            ' "offset", value_sha256)'
            " VALUES (:id, :at, 'bad_signature', 'retention-test', 0, :offset, 'x')",
            id=parked[age],
            at=at,
            offset=uuid.uuid4().int % 1_000_000_000,
        )
    affected = _run_twice(job_for("patient_service"))
    assert affected["published_outbox"] >= 1 and affected["processed_events"] >= 1
    assert affected["parked_registrations"] >= 1
    _assert_common(admin_engine, "patient_service", ids, consumes=True)
    assert not _exists(admin_engine, "patient_service.parked_registrations", "id", parked["old"])
    assert _exists(admin_engine, "patient_service.parked_registrations", "id", parked["recent"])


def _search(engine: Engine, status: str, updated_at: datetime) -> uuid.UUID:
    search_id = uuid.uuid4()
    _exec(
        engine,
        "INSERT INTO matching_service.searches (id, patient_id, status, created_at, updated_at,"
        " total_requested_contacts, notes) VALUES (:id, :patient, :status, :at, :at, 0, 'free text')",
        id=search_id,
        patient=uuid.uuid4(),
        status=status,
        at=updated_at,
    )
    _exec(
        engine,
        "INSERT INTO matching_service.search_exclusions (search_id, therapist_id, reason, excluded_at,"
        " excluded_by) VALUES (:id, :therapist, 'reason', :at, 'staff')",
        id=search_id,
        therapist=uuid.uuid4(),
        at=updated_at,
    )
    _exec(
        engine,
        "INSERT INTO matching_service.staff_alerts (id, kind, created_at, search_id, message)"
        " VALUES (:alert, 'conflict', :at, :id, 'message')",
        alert=uuid.uuid4(),
        id=search_id,
        at=updated_at,
    )
    return search_id


def _bundle(engine: Engine, status: str, updated_at: datetime, members: list[uuid.UUID]) -> uuid.UUID:
    bundle_id = uuid.uuid4()
    _exec(
        engine,
        "INSERT INTO matching_service.bundles (id, therapist_id, practice_key, kind, status, created_at,"
        " created_by, updated_at, applied_filters, skipped_filters)"
        " VALUES (:id, :therapist, :practice, 'staff', :status, :at, 'staff', :at, '{}', '{}')",
        id=bundle_id,
        therapist=uuid.uuid4(),
        practice=f"practice-{bundle_id}",
        status=status,
        at=updated_at,
    )
    for position, search_id in enumerate(members, start=1):
        _exec(
            engine,
            "INSERT INTO matching_service.bundle_members (id, bundle_id, search_id, patient_id, position,"
            " status) VALUES (:id, :bundle, :search, :patient, :position, 'rejected')",
            id=uuid.uuid4(),
            bundle=bundle_id,
            search=search_id,
            patient=uuid.uuid4(),
            position=position,
        )
    return bundle_id


def test_matching_service(admin_engine: Engine, job_for: Callable[[str], RetentionJob]) -> None:
    ids = _common_rows(admin_engine, "matching_service", consumes=True)
    ended_long_ago = _search(admin_engine, "placed", OLD)
    cancelled_long_ago = _search(admin_engine, "cancelled", OLD)
    ended_recently = _search(admin_engine, "placed", RECENT)
    still_active = _search(admin_engine, "active", OLD)  # waiting for years: not ended, kept
    old_bundle = _bundle(admin_engine, "answered", OLD, [ended_long_ago, cancelled_long_ago])
    # A closed bundle with a member whose search is kept stays, with that member.
    shared_bundle = _bundle(admin_engine, "expired", OLD, [still_active])
    recent_bundle = _bundle(admin_engine, "answered", RECENT, [ended_recently])

    affected = _run_twice(job_for("matching_service"), batch_size=1)  # batches of one reach the same end

    assert affected["ended_searches"] >= 2 and affected["closed_bundles"] >= 1
    for gone in (ended_long_ago, cancelled_long_ago):
        assert not _exists(admin_engine, "matching_service.searches", "id", gone)
        for table in ("search_exclusions", "bundle_members", "staff_alerts"):
            assert not _exists(admin_engine, f"matching_service.{table}", "search_id", gone)
    for kept in (ended_recently, still_active):
        assert _exists(admin_engine, "matching_service.searches", "id", kept)
        assert _exists(admin_engine, "matching_service.search_exclusions", "search_id", kept)
    assert not _exists(admin_engine, "matching_service.bundles", "id", old_bundle)
    assert _exists(admin_engine, "matching_service.bundles", "id", shared_bundle)
    assert _exists(admin_engine, "matching_service.bundles", "id", recent_bundle)
    _assert_common(admin_engine, "matching_service", ids, consumes=True)


def _email(engine: Engine, status: str, created_at: datetime) -> uuid.UUID:
    email_id = uuid.uuid4()
    sent_at = created_at if status == "sent" else None
    _exec(
        engine,
        "INSERT INTO communication_service.emails (id, kind, recipient, recipient_type, sender, subject,"
        " html, text, status, max_attempts, message_id, created_at, sent_at, updated_at)"
        " VALUES (:id, 'bundle_inquiry', 't@example.org', 'therapist', 's@example.org', 'Anfrage B1',"
        " '<p>Körper</p>', 'Körper', :status, 5, :message, :at, :sent, :at)",
        id=email_id,
        status=status,
        message=f"<{email_id}@example.org>",
        at=created_at,
        sent=sent_at,
    )
    return email_id


def _body(engine: Engine, email_id: uuid.UUID) -> tuple[str, str]:
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT html, text FROM communication_service.emails WHERE id = :id"), {"id": email_id}
        ).one()
    return row.html, row.text


def test_communication_service(admin_engine: Engine, job_for: Callable[[str], RetentionJob]) -> None:
    ids = _common_rows(admin_engine, "communication_service", consumes=True)
    old_sent, old_queued, recent_sent = (
        _email(admin_engine, "sent", OLD),
        _email(admin_engine, "queued", OLD),
        _email(admin_engine, "sent", RECENT),
    )
    replies = {}
    for name, at in (("old", OLD), ("recent", RECENT)):
        replies[name] = uuid.uuid4()
        _exec(
            admin_engine,
            "INSERT INTO communication_service.inbound_replies (id, from_address, to_address, subject, text,"
            " html, email_id, received_at) VALUES (:id, 't@example.org', 'antwort@example.org', 'Re', 'Ja',"
            " '<p>Ja</p>', :email, :at)",
            id=replies[name],
            email=old_sent,
            at=at,
        )
    calls = {}
    for name, at in (("old", OLD), ("recent", RECENT)):
        calls[name] = uuid.uuid4()
        slot = at.replace(minute=0, second=0, microsecond=0)
        _exec(
            admin_engine,
            "INSERT INTO communication_service.phone_call_tasks (id, purpose, therapist_id, therapist_name,"
            " slot_start, status, outcome, outcome_notes, completed_at, created_at, updated_at)"
            " VALUES (:id, 'inquiry', :therapist, 'Name', :slot, 'completed', 'reached', 'notes',"
            " :at, :at, :at)",
            id=calls[name],
            therapist=uuid.uuid4(),
            slot=slot,
            at=at,
        )
    reviews = {}
    for name, at in (("old", NOW - timedelta(days=91)), ("recent", RECENT)):
        reviews[name] = uuid.uuid4()
        _exec(
            admin_engine,
            "INSERT INTO communication_service.reply_reviews (id, inbox_key, reasons, text, verdicts,"
            " size_bytes, received_at, created_at) VALUES (:id, :key, '[]', 'text', '{}', 10, :at, :at)",
            id=reviews[name],
            key=f"inbound/{reviews[name]}",
            at=at,
        )

    affected = _run_twice(job_for("communication_service"))

    assert affected["email_bodies"] >= 1 and affected["reply_bodies"] >= 1 and affected["call_notes"] >= 1
    assert _body(admin_engine, old_sent) == ("", "")
    assert _body(admin_engine, old_queued) == ("<p>Körper</p>", "Körper")  # not sent yet: untouched
    assert _body(admin_engine, recent_sent) == ("<p>Körper</p>", "Körper")
    # That the email was sent stays (its row, status, dates).
    assert (
        _scalar(admin_engine, "SELECT status FROM communication_service.emails WHERE id = :id", id=old_sent)
        == "sent"
    )
    reply_text = (
        "SELECT coalesce(text, '') || coalesce(html, '')"
        " FROM communication_service.inbound_replies WHERE id = :id"
    )
    assert _scalar(admin_engine, reply_text, id=replies["old"]) == ""
    assert _scalar(admin_engine, reply_text, id=replies["recent"]) == "Ja<p>Ja</p>"
    notes = "SELECT outcome_notes FROM communication_service.phone_call_tasks WHERE id = :id"
    assert _scalar(admin_engine, notes, id=calls["old"]) is None
    assert _scalar(admin_engine, notes, id=calls["recent"]) == "notes"
    assert not _exists(admin_engine, "communication_service.reply_reviews", "id", reviews["old"])
    assert _exists(admin_engine, "communication_service.reply_reviews", "id", reviews["recent"])
    _assert_common(admin_engine, "communication_service", ids, consumes=True)


def test_therapist_service(admin_engine: Engine, job_for: Callable[[str], RetentionJob]) -> None:
    ids = _common_rows(admin_engine, "therapist_service", consumes=False)
    imports = {}
    for name, at in (("old", OLD), ("recent", RECENT)):
        imports[name] = uuid.uuid4()
        _exec(
            admin_engine,
            "INSERT INTO therapist_service.directory_imports (id, source, complete_source, actor, status,"
            " started_at, finished_at, counts) VALUES (:id, 's3://raw/x.json', true, 'import', 'finished',"
            " :at, :at, '{}')",
            id=imports[name],
            at=at,
        )
        _exec(
            admin_engine,
            "INSERT INTO therapist_service.directory_import_items"
            " (import_id, seq, outcome, name, reason, message)"
            " VALUES (:id, 1, 'skipped', 'Dr. Name', 'invalid', 'message')",
            id=imports[name],
        )

    affected = _run_twice(job_for("therapist_service"))

    assert affected["import_reports"] >= 1
    items = "therapist_service.directory_import_items"
    assert not _exists(admin_engine, items, "import_id", imports["old"])
    assert _exists(admin_engine, items, "import_id", imports["recent"])
    # The import's own record (counts, no names) stays.
    assert _exists(admin_engine, "therapist_service.directory_imports", "id", imports["old"])
    _assert_common(admin_engine, "therapist_service", ids, consumes=False)


def test_scraping_service(admin_engine: Engine, job_for: Callable[[str], RetentionJob]) -> None:
    runs = {}
    for name, at in (("old", OLD), ("recent", RECENT)):
        runs[name] = uuid.uuid4()
        _exec(
            admin_engine,
            "INSERT INTO scraping_service.runs (id, region, trigger, status, started_at, finished_at)"
            " VALUES (:id, '10', 'schedule', 'succeeded', :at, :at)",
            id=runs[name],
            at=at,
        )
    affected = _run_twice(job_for("scraping_service"))
    assert affected["scraper_runs"] >= 1
    assert not _exists(admin_engine, "scraping_service.runs", "id", runs["old"])
    assert _exists(admin_engine, "scraping_service.runs", "id", runs["recent"])


def test_geocoding_service(admin_engine: Engine, job_for: Callable[[str], RetentionJob]) -> None:
    keys = {}
    for name, expires in (("expired", NOW - timedelta(minutes=1)), ("valid", NOW + timedelta(days=1))):
        keys[name] = f"retention-test {uuid.uuid4()}"
        _exec(
            admin_engine,
            "INSERT INTO geocoding_service.geocode_cache (kind, key, found, payload, fetched_at, expires_at)"
            " VALUES ('reverse', :key, false, NULL, :fetched, :expires)",
            key=keys[name],
            fetched=expires - timedelta(days=30),
            expires=expires,
        )
    affected = _run_twice(job_for("geocoding_service"))
    assert affected["geocode_cache"] >= 1
    assert not _exists(admin_engine, "geocoding_service.geocode_cache", "key", keys["expired"])
    assert _exists(admin_engine, "geocoding_service.geocode_cache", "key", keys["valid"])


def test_an_earlier_clock_erases_less(admin_engine: Engine, job_for: Callable[[str], RetentionJob]) -> None:
    """The same row, a clock before its period ended: kept; the clock past it: erased."""
    runs = uuid.uuid4()
    started = NOW - timedelta(days=PERIODS.scraper_runs_days) - timedelta(hours=1)
    _exec(
        admin_engine,
        "INSERT INTO scraping_service.runs (id, region, trigger, status, started_at, finished_at)"
        " VALUES (:id, '11', 'schedule', 'succeeded', :at, :at)",
        id=runs,
        at=started,
    )
    job = job_for("scraping_service")
    job.run(now=NOW - timedelta(hours=2))
    assert _exists(admin_engine, "scraping_service.runs", "id", runs)
    job.run()  # the injected clock: NOW
    assert not _exists(admin_engine, "scraping_service.runs", "id", runs)


def test_migration_0016_retention_is_idempotent_and_reverts(
    scratch_database: Callable[[str], AbstractContextManager[Engine]],
) -> None:
    from alembic import command

    from runner import upgrade

    with scratch_database("retention_0016") as engine:

        def indexes() -> set[str]:
            return {
                str(index)
                for index in _all(
                    engine, "SELECT indexname FROM pg_indexes WHERE indexname LIKE '%processed_at'"
                )
            }

        upgrade(engine, "0015")
        assert indexes() == set()
        assert upgrade(engine, "0016_retention") == "0016_retention"
        assert indexes() == {"processed_events_processed_at"}  # one name, in three schemas
        assert (
            int(_scalar(engine, "SELECT count(*) FROM pg_indexes WHERE indexname = 'searches_ended_updated'"))
            == 1
        )
        migrate(engine, command.stamp, "0015")  # as if it had not run: running it again changes nothing
        assert upgrade(engine, "0016_retention") == "0016_retention"
        migrate(engine, command.downgrade, "0015")
        assert indexes() == set()


def _all(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql)).scalars())


def test_a_run_out_of_time_keeps_what_it_did_and_the_next_goes_on(
    admin_engine: Engine, job_for: Callable[[str], RetentionJob]
) -> None:
    runs = [uuid.uuid4() for _ in range(5)]
    for run_id in runs:
        _exec(
            admin_engine,
            "INSERT INTO scraping_service.runs (id, region, trigger, status, started_at, finished_at)"
            " VALUES (:id, '12', 'schedule', 'succeeded', :at, :at)",
            id=run_id,
            at=OLD,
        )
    job = job_for("scraping_service")
    budget = iter([True, True, False])  # time for two batches
    _, results = job.run(batch_size=2, keep_going=lambda: next(budget))
    (result,) = results
    assert (result.affected, result.complete) == (4, False)
    assert sum(_exists(admin_engine, "scraping_service.runs", "id", run_id) for run_id in runs) == 1
    _, results = job.run(batch_size=2)
    assert results[0].complete
    assert not any(_exists(admin_engine, "scraping_service.runs", "id", run_id) for run_id in runs)
