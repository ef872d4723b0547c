"""The 116117 directory pipeline against real servers: the local directory server
(infra/localcloud/directory_server.py, with made-up data in the directory's shape), LocalStack's
S3 with EventBridge notifications, and PostgreSQL with each service's own role.

A scheduled run lands raw data in S3; the S3 event (through EventBridge and SQS) drives the
import, which fills the therapist pool and stores a report readable through the imports API;
re-importing writes nothing; the client stays polite under 429, 5xx, slow answers and robots
rules; operators import a folder with the same report."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import Engine, event, text

from cloud_support import drain_queue
from directory_fakes import entry
from localcloud import directory
from localcloud.aws import aws_env, client
from localcloud.directory_data import DirectoryDataGenerator, answers
from localcloud.process import read_pid
from support import FakeLambdaContext, api_event, call, load_function, unavailable
from therapy_platform.contracts.directory_files import RawPage, RawRun, Region, SearchPoint, read_raw_document
from therapy_platform.contracts.therapists import TherapistSnapshot
from therapy_platform.directory.adapters.raw_store import S3RawStore
from therapy_platform.directory.adapters.runs import SqlScrapeRunStore
from therapy_platform.directory.bootstrap import build as build_scraper
from therapy_platform.directory.settings import ScraperSettings
from therapy_platform.platform.clock import platform_today
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.outbox import SqlOutboxStore
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.therapists.bootstrap import DirectoryImportService
from therapy_platform.therapists.domain.therapist import TherapistPatch
from therapy_platform.therapists.imports.adapters.raw_files import S3RawFileReader
from therapy_platform.therapists.imports.adapters.store import (
    SqlDirectoryImportUnitOfWork,
    SqlImportReportStore,
    chunked_import,
)
from therapy_platform.therapists.imports.domain.reports import ImportResult, ImportSource
from therapy_platform.therapists.imports.use_cases import import_directory_file
from therapy_platform.therapists.use_cases import patch_therapist
from tools.import_directory import EXIT_SKIPPED, main

pytestmark = pytest.mark.integration

AGENT = "therapy-matching-platform-tests/1.0 (integration tests; ops@example.org)"
THERAPISTS = "therapist_service"
REPORT_TABLES = ("directory_imports", "directory_import_items")
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
MODULE_DATASET = (7, ["52"], 150)  # seed, postcode prefixes, entries: the module's directory data


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def directory_server() -> Iterator[None]:
    """The local directory with a small, deterministic Aachen-area dataset."""
    started_here = not (read_pid(directory.SERVICE) is not None and directory.is_healthy())
    if started_here:
        directory.start(entries=10)
    seed, prefixes, entries = MODULE_DATASET
    directory.load_dataset(DirectoryDataGenerator(seed, prefixes=prefixes).dataset(entries))
    directory.reset()
    yield
    if started_here:
        directory.stop()
    else:  # a server others use (the demo, the e2e tests): give it its own data back
        directory.load_default_dataset()
        directory.reset()


@pytest.fixture(autouse=True)
def clean_directory(directory_server: None) -> None:
    directory.reset()


@pytest.fixture(scope="module")
def therapist_engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url(THERAPISTS), pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def scraping_engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url("scraping_service"))
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def empty_tables(admin_engine: Engine) -> None:
    with admin_engine.begin() as connection:
        connection.execute(
            text(
                f"TRUNCATE {THERAPISTS}.therapists, {THERAPISTS}.audit_log, {THERAPISTS}.outbox,"
                f" {THERAPISTS}.directory_listings, {THERAPISTS}.directory_imports,"
                f" {THERAPISTS}.directory_import_items, scraping_service.runs"
            )
        )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, localstack_server: None) -> None:
    for name, value in aws_env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def raw_bucket(aws: None) -> Iterator[tuple[str, str]]:
    """A bucket sending its events to EventBridge, and a queue the `Object Created` rule fills
    (the template's wiring): (bucket, queue url)."""
    suffix = uuid.uuid4().hex[:8]
    s3, events, sqs = client("s3"), client("events"), client("sqs")
    bucket = f"directory-raw-{suffix}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    queue_url = sqs.create_queue(QueueName=f"directory-import-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = f"raw-created-{suffix}"
    events.put_rule(
        Name=rule,
        EventPattern=json.dumps(
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": "raw/"}]}},
            }
        ),
    )
    events.put_targets(Rule=rule, Targets=[{"Id": "import-queue", "Arn": queue_arn}])
    yield bucket, queue_url
    events.remove_targets(Rule=rule, Ids=["import-queue"])
    events.delete_rule(Name=rule)
    sqs.delete_queue(QueueUrl=queue_url)
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


@pytest.fixture
def scraper(monkeypatch: pytest.MonkeyPatch, raw_bucket: tuple[str, str], scraping_engine: Engine) -> Any:
    bucket, _ = raw_bucket
    for name, value in {
        "RAW_BUCKET": bucket,
        "DIRECTORY_BASE_URL": directory.url(),
        "DIRECTORY_USER_AGENT": AGENT,
        "DIRECTORY_MIN_INTERVAL_SECONDS": "0.05",
        "DIRECTORY_BACKOFF_SECONDS": "0.2",
        "DIRECTORY_BACKOFF_MAX_SECONDS": "5",
        "DIRECTORY_TIMEOUT_SECONDS": "1",
        "DIRECTORY_MAX_RETRIES": "3",
        "DIRECTORY_RESERVE_SECONDS": "0",
        # As the local template sets it: the local directory also serves the practice websites.
        "DIRECTORY_WEBSITE_ALLOWED_ORIGINS": directory.url(),
    }.items():
        monkeypatch.setenv(name, value)
    module = load_function("directory_scraper")
    service = dataclasses.replace(
        build_scraper(ScraperSettings.from_env()),
        runs=lambda: SqlScrapeRunStore(scraping_engine),
        raw_store=lambda: S3RawStore(client("s3"), bucket),
    )
    monkeypatch.setattr(module, "service", service)
    return module


class WriteCounter:
    """Counts the INSERT/UPDATE/DELETE statements an engine runs outside the report tables."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[str] = []
        event.listen(engine, "before_cursor_execute", self._seen)
        self._engine = engine

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        verb = statement.lstrip().split(" ", 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and not any(table in statement for table in REPORT_TABLES):
            self.statements.append(statement)

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)


@pytest.fixture
def importer(
    monkeypatch: pytest.MonkeyPatch, therapist_engine: Engine, aws: None, event_bus: tuple[str, str]
) -> Any:
    from therapy_platform.platform.eventbridge import EventBridgePublisher

    module = load_function("directory_import")
    bus, _ = event_bus
    publisher = EventBridgePublisher(client("events"), bus, "therapy-platform.therapist-service")
    # As deployed: set-based chunks, each chunk's events published right after it commits.
    publish = PublishNow(
        store=lambda: SqlOutboxStore(therapist_engine, THERAPISTS), publisher=lambda: publisher
    )
    service = DirectoryImportService(
        unit_of_work=lambda: SqlDirectoryImportUnitOfWork(therapist_engine, publish=publish),
        reports=lambda: SqlImportReportStore(therapist_engine),
        raw_files=lambda bucket: S3RawFileReader(client("s3"), bucket),
        geocoder=postcode_directory,
        chunked=lambda: chunked_import(therapist_engine, publish),
    )
    monkeypatch.setattr(module, "service", service)
    return module


@pytest.fixture
def imports_api(monkeypatch: pytest.MonkeyPatch, therapist_engine: Engine) -> Any:
    module = load_function("imports_api")
    monkeypatch.setattr(
        module,
        "service",
        dataclasses.replace(module.service, reports=lambda: SqlImportReportStore(therapist_engine)),
    )
    return module


def _rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql)))


def _sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "local",
                "body": json.dumps(message),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-central-1:000000000000:directory-import",
                "awsRegion": "eu-central-1",
            }
            for message in messages
        ]
    }


# ---------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------


def test_a_scheduled_run_lands_in_s3_and_its_event_imports_the_pool(
    scraper: Any,
    importer: Any,
    imports_api: Any,
    raw_bucket: tuple[str, str],
    admin_engine: Engine,
    therapist_engine: Engine,
    event_bus: tuple[str, str],
) -> None:
    _, queue_url = raw_bucket
    run = scraper.lambda_handler({"region": {"prefix": "52", "radius_km": 15}}, FakeLambdaContext())
    assert run["status"] == "succeeded", run["error_messages"]
    assert run["raw_object_key"] == f"raw/{platform_today(datetime.now(UTC)).isoformat()}/52.json"
    assert run["entries"] > 0 and run["enriched"] > 0
    (stored,) = _rows(admin_engine, "SELECT * FROM scraping_service.runs")
    assert (stored.status, stored.pages, stored.entries, stored.raw_object_key) == (
        "succeeded",
        run["pages"],
        run["entries"],
        run["raw_object_key"],
    )
    assert stored.finished_at >= stored.started_at
    # Every request identified us; robots.txt was read before anything else.
    log = directory.requests_log()
    assert log[0]["path"] == "/robots.txt" and {entry["user_agent"] for entry in log} == {AGENT}
    assert any(entry["path"].startswith("/praxis/") for entry in log)  # enrichment ran

    # S3 -> EventBridge -> SQS: the message the import function receives.
    (message,) = drain_queue(queue_url, expected=1)
    assert message["detail"]["object"]["key"] == run["raw_object_key"]
    assert importer.lambda_handler(_sqs_event([message]), FakeLambdaContext()) == {"batchItemFailures": []}

    (report,) = _rows(admin_engine, f"SELECT * FROM {THERAPISTS}.directory_imports")
    counts = report.counts
    therapists = _rows(admin_engine, f"SELECT * FROM {THERAPISTS}.therapists")
    assert counts["new"] == len(therapists) > 20
    assert report.complete_source and report.region == "52"
    # The dataset's bad entries are all reported with their reasons.
    assert {"malformed_entry", "missing_field", "invalid_value", "not_for_adults"} <= set(report.skip_reasons)
    assert all(row.directory_id and row.postcode.startswith(("4", "5")) for row in therapists)
    enriched = _rows(
        admin_engine,
        f"SELECT provenance FROM {THERAPISTS}.directory_listings WHERE provenance->>'email' LIKE 'website:%'",
    )
    assert enriched, "emails found on practice websites are imported with their source"
    # Events reached the bus (published right after the import).
    _, bus_queue = event_bus
    delivered = drain_queue(bus_queue, expected=len(therapists), timeout_s=60)
    unpublished = _rows(
        admin_engine, f"SELECT last_error FROM {THERAPISTS}.outbox WHERE published_at IS NULL"
    )
    assert unpublished == []
    assert len(delivered) == len(therapists), (len(delivered), len(therapists))
    assert {d["detail-type"] for d in delivered} == {"therapist.imported"}

    # The report through the API, with every skip reason.
    status, listing = call(imports_api.lambda_handler, api_event("GET", "/api/v2/imports"))
    assert status == 200 and listing["items"][0]["id"] == str(report.id)
    status, detail = call(
        imports_api.lambda_handler,
        api_event("GET", f"/api/v2/imports/{report.id}", query={"outcome": "skipped", "limit": "200"}),
    )
    assert status == 200 and detail["items_total"] == counts["skipped"]
    assert {item["reason"] for item in detail["items"]} == set(report.skip_reasons)

    # The same S3 event again (SQS delivers at least once): nothing happens.
    counter = WriteCounter(therapist_engine)
    try:
        importer.lambda_handler(_sqs_event([message]), FakeLambdaContext())
        assert counter.statements == []
        assert len(_rows(admin_engine, f"SELECT id FROM {THERAPISTS}.directory_imports")) == 1

        # A new run of the same region (same data, new object version): a new report, no writes.
        second = scraper.lambda_handler({"region": {"prefix": "52", "radius_km": 15}}, FakeLambdaContext())
        assert second["status"] == "succeeded"
        (message2,) = drain_queue(queue_url, expected=1)
        importer.lambda_handler(_sqs_event([message2]), FakeLambdaContext())
        assert counter.statements == []
    finally:
        counter.close()
    latest = _rows(
        admin_engine, f"SELECT counts FROM {THERAPISTS}.directory_imports ORDER BY started_at DESC"
    )
    assert latest[0].counts["unchanged"] == counts["new"] and latest[0].counts["new"] == 0


def test_the_client_stays_polite_under_429_5xx_and_slow_answers(scraper: Any, admin_engine: Engine) -> None:
    directory.add_faults(
        {"path": "/api/data", "status": 429, "retry_after": "1"},
        {"path": "/api/data", "status": 503},
        {"path": "/api/data", "delay": 2.5},  # longer than the 1 s timeout: retried
        {"path": "/api/data", "status": 200, "body": "<html>Wartungsarbeiten</html>"},
    )
    run = scraper.lambda_handler({"region": {"prefix": "52", "radius_km": 15}}, FakeLambdaContext())
    api = [entry for entry in directory.requests_log() if entry["path"] == "/api/data"]
    # 429 (waited >= 1 s as asked), 503 (backoff), the slow answer timed out, then the broken
    # page; the other points of the region answer normally.
    assert [entry["status"] for entry in api[:2]] == [429, 503]
    assert api[1]["at"] - api[0]["at"] >= 1.0
    assert run["status"] == "partial"  # the broken page: stored, but never used to mark vanished
    assert any("not JSON" in message for message in run["error_messages"])
    # The fixed interval between two requests is proven with an injected clock
    # (tests/unit/test_directory_http.py): arrival times at the server carry the machine's
    # scheduling jitter, so they cannot prove a spacing the client keeps when sending.
    (stored,) = _rows(admin_engine, "SELECT status, errors FROM scraping_service.runs")
    assert (stored.status, stored.errors) == ("partial", len(run["error_messages"]))


def test_robots_rules_stop_the_run_before_any_search(scraper: Any) -> None:
    directory.set_robots("User-agent: *\nDisallow: /api/\n")
    run = scraper.lambda_handler({"region": "52062-r3"}, FakeLambdaContext())
    assert run["status"] == "failed" and run["raw_object_key"] is None
    assert [entry["path"] for entry in directory.requests_log()] == ["/robots.txt"]


def test_the_hard_cap_ends_a_run_as_partial(scraper: Any) -> None:
    run = scraper.lambda_handler(
        {"region": {"prefix": "52", "radius_km": 5}, "max_requests": 4}, FakeLambdaContext()
    )
    assert run["status"] == "partial" and run["requests"] == 4
    assert any("cap of 4" in message for message in run["error_messages"])
    assert len(directory.requests_log()) == 4


# ---------------------------------------------------------------------------------------------
# Practice websites: public addresses only (server-side request forgery)
# ---------------------------------------------------------------------------------------------


def _website_entry(entry_id: str, web: str) -> dict[str, Any]:
    return {"at": [50.7766, 6.0834], "entry": entry(id=entry_id, email="", web=web, plz="52062")}


def _practice_site(mail: str) -> dict[str, str]:
    page = f"<html><body><p>E-Mail: <a href='mailto:{mail}'>{mail}</a></p></body></html>"
    return {"home": page}


@pytest.fixture
def practices_with_internal_links() -> Iterator[None]:
    """Three listings at one Aachen address: a practice website on the local directory (the
    operator allow-lists its origin), one whose page redirects to `localhost` (the same server
    under a name nobody allowed: an internal service), and one listed at that internal address
    directly. The internal page would give away an email address."""
    internal = directory.url().replace("127.0.0.1", "localhost")
    directory.load_dataset(
        {
            "entries": [
                _website_entry("ok1", "{base}/praxis/ok1/"),
                _website_entry("hop1", "{base}/praxis/hop1/"),
                _website_entry("direct1", f"{internal}/praxis/secret1/"),
            ],
            "websites": {
                "ok1": _practice_site("praxis.ok1@praxis-beispiel.de"),
                "hop1": _practice_site("praxis.hop1@praxis-beispiel.de"),
                "secret1": _practice_site("leak@intern.example"),
            },
        }
    )
    yield
    seed, prefixes, entries = MODULE_DATASET
    directory.load_dataset(DirectoryDataGenerator(seed, prefixes=prefixes).dataset(entries))


def _redirect_faults_supported() -> bool:
    """Whether the running directory server sends a fault's headers (servers started before
    that feature answer the 302 without its Location)."""
    import http.client
    from urllib.parse import urlsplit

    directory.add_faults({"path": "/_probe", "status": 302, "headers": {"Location": "/x"}, "body": ""})
    parts = urlsplit(directory.url())
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    try:
        connection.request("GET", "/_probe")
        return connection.getresponse().getheader("Location") == "/x"
    finally:
        connection.close()


def test_practice_websites_are_read_only_from_allowed_addresses_and_redirects_inside_are_not_followed(
    scraper: Any, raw_bucket: tuple[str, str], practices_with_internal_links: None
) -> None:
    if not _redirect_faults_supported():
        unavailable("the running local directory server predates redirect faults: restart it")
    directory.reset()
    directory.add_faults(
        {
            "path": "/praxis/hop1/",
            "status": 302,
            "headers": {"Location": f"{directory.url().replace('127.0.0.1', 'localhost')}/praxis/secret1/"},
            "body": "",
            "times": 10,
        }
    )
    bucket, _ = raw_bucket
    run = scraper.lambda_handler({"region": "52062-r3"}, FakeLambdaContext())
    assert run["status"] == "succeeded", run["error_messages"]
    document = read_raw_document(
        client("s3").get_object(Bucket=bucket, Key=run["raw_object_key"])["Body"].read()
    )
    found = {entry_id: e.email.value for entry_id, e in document.enrichment.items() if e.email is not None}
    assert found == {"ok1": "praxis.ok1@praxis-beispiel.de"}
    log = directory.requests_log()
    # The redirect was answered, and neither it nor the direct listing reached the internal page.
    assert {"path": "/praxis/hop1/", "status": 302} in [{k: e[k] for k in ("path", "status")} for e in log]
    assert not [e for e in log if e["path"].startswith("/praxis/secret1")]


# ---------------------------------------------------------------------------------------------
# Import rules in SQL
# ---------------------------------------------------------------------------------------------


def _file(*pages: list[Any], region: str | None = "52", complete: bool = True) -> bytes:
    point = SearchPoint(latitude=50.7766, longitude=6.0834)
    return RawRun(
        region=Region.parse({"prefix": region, "radius_km": 20}) if region else None,
        radius_km=20,
        points=[point],
        complete=complete,
        pages=[
            RawPage(point=point, answer={"arztPraxisDatas": page, "moreResults": False}) for page in pages
        ],
    ).to_json_bytes()


def _entry(directory_id: str, **overrides: Any) -> dict[str, Any]:
    return entry(id=directory_id, **overrides)


def test_staff_edits_survive_and_vanished_therapists_are_marked_in_sql(
    therapist_engine: Engine, admin_engine: Engine
) -> None:
    def run(data: bytes) -> ImportResult:
        return import_directory_file(
            SqlDirectoryImportUnitOfWork(therapist_engine),
            SqlImportReportStore(therapist_engine),
            postcode_directory(),
            data,
            source=ImportSource("/operator/file.json"),
            now=NOW,
        ).value

    first = run(_file([_entry("e1"), _entry("e2", vorname="Jürgen", name="Weiß", plz="52064")]))
    assert first.report.counts.new == 2
    (anne,) = _rows(admin_engine, f"SELECT id FROM {THERAPISTS}.therapists WHERE directory_id = 'e1'")
    patch_therapist(
        SqlDirectoryImportUnitOfWork(therapist_engine),
        postcode_directory(),
        anne.id,
        TherapistPatch.model_validate({"email": "staff@praxis.example"}),
        actor="staff",
        now=NOW,
    )
    second = run(_file([_entry("e1", email="neu@praxis.example", fax="0241 4711")]))
    assert (second.report.counts.updated, second.report.counts.vanished) == (1, 1)
    (row,) = _rows(admin_engine, f"SELECT email, fax FROM {THERAPISTS}.therapists WHERE directory_id = 'e1'")
    assert (row.email, row.fax) == ("staff@praxis.example", "0241 4711")
    (gone,) = _rows(
        admin_engine,
        f"SELECT l.review_reason, t.status FROM {THERAPISTS}.directory_listings l"
        f" JOIN {THERAPISTS}.therapists t ON t.id = l.therapist_id WHERE l.directory_id = 'e2'",
    )
    assert (gone.review_reason, gone.status) == ("vanished_from_directory", "active")
    actions = [
        r.action for r in _rows(admin_engine, f"SELECT action FROM {THERAPISTS}.audit_log ORDER BY id")
    ]
    assert actions == [
        "directory_import",
        "directory_import",
        "patch",
        "directory_update",
        "directory_vanished",
    ]


def test_the_operator_command_imports_a_folder_with_the_same_report(
    tmp_path: Path, service_url: Callable[[str], str], admin_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = DirectoryDataGenerator(11, prefixes=["10"]).dataset(120)
    pages = answers(data, base=directory.url())
    (tmp_path / "raw" / "2026-11-22").mkdir(parents=True)
    # The dataset's duplicate id (other data) sits on the last page, its original on the first:
    # one file holds both, so the duplicate is reported rather than flip-flopping across files.
    (tmp_path / "raw" / "2026-11-22" / "10.json").write_text(
        json.dumps([pages[0], pages[-1]]), encoding="utf-8"
    )
    (tmp_path / "raw" / "2026-11-22" / "12.json").write_text(json.dumps(pages[1:-1]), encoding="utf-8")
    (tmp_path / "raw" / "broken.json").write_text("{kaputt", encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", service_url(THERAPISTS))
    console = Console(record=True, width=160)
    code = main([str(tmp_path), "--actor", "operator:test"], console=console)
    output = console.export_text()
    assert code == 2  # the broken file is unusable (the others imported, with skips)
    assert "not JSON" in output and "skipped, malformed_entry" in output and "skipped, duplicate" in output
    reports = _rows(admin_engine, f"SELECT status, counts, actor FROM {THERAPISTS}.directory_imports")
    assert sorted(r.status for r in reports) == ["failed", "finished", "finished"]
    assert {r.actor for r in reports} == {"operator:test"}
    created = sum(r.counts.get("new", 0) for r in reports)
    assert created == len(_rows(admin_engine, f"SELECT id FROM {THERAPISTS}.therapists")) > 50
    # Again: every entry unchanged, and the exit code says entries were skipped.
    (tmp_path / "raw" / "broken.json").unlink()
    assert main([str(tmp_path)], console=Console(record=True)) == EXIT_SKIPPED
    latest = _rows(
        admin_engine, f"SELECT counts FROM {THERAPISTS}.directory_imports ORDER BY started_at DESC LIMIT 2"
    )
    assert sum(r.counts["new"] + r.counts["updated"] for r in latest) == 0


def test_event_payloads_are_complete_therapists(therapist_engine: Engine, admin_engine: Engine) -> None:
    outcome = import_directory_file(
        SqlDirectoryImportUnitOfWork(therapist_engine),
        SqlImportReportStore(therapist_engine),
        postcode_directory(),
        _file([_entry("e1")], region=None),
        source=ImportSource("x"),
        now=NOW,
    ).value
    (row,) = _rows(admin_engine, f"SELECT event_type, envelope FROM {THERAPISTS}.outbox")
    assert row.event_type == "therapist.imported"
    payload = TherapistSnapshot.model_validate(row.envelope["payload"])  # the minimal contract
    assert payload.from_directory and outcome.event_ids == [uuid.UUID(row.envelope["eventId"])]
    assert set(row.envelope["payload"]) == set(TherapistSnapshot.model_fields)
    assert payload.contact_opt_out is False  # of an objection, only whether there is one
