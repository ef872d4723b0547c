"""A scraping run with a scripted directory (pages, malformed answers, outages, the cap,
enrichment), and the three thin handlers: the scraper and the S3-triggered import against
moto's S3 (the import's queue consumer: poison to the dead-letter queue, outages retried after
a backoff), the imports API against an in-memory report store."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from test_directory_http import FakeClock, FakeHttp, page, polite

from directory_fakes import (
    DirectoryDatabase,
    FakeEnricher,
    InMemoryDirectoryImportUnitOfWork,
    InMemoryImportReportStore,
    InMemoryRawStore,
    InMemoryRunStore,
    ScriptedDirectory,
    entry,
)
from fakes import FakeBus, InMemoryOutboxStore
from support import FakeLambdaContext, api_event, call, load_function
from therapist_fakes import FakeGeocoder
from therapy_platform.contracts.directory_files import (
    Enrichment,
    Provenanced,
    Region,
    SearchPoint,
    read_raw_document,
)
from therapy_platform.directory.bootstrap import build as build_scraper
from therapy_platform.directory.domain.runs import (
    BudgetExhaustedError,
    DirectoryUnavailableError,
    MalformedAnswerError,
    RunStatus,
)
from therapy_platform.directory.settings import ScraperSettings
from therapy_platform.directory.use_cases import ScrapeLimits, scrape_region, search_points
from therapy_platform.platform.errors import DependencyUnavailableError, InvalidInputError
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.outbox_relay import PublishNow
from therapy_platform.therapists.bootstrap import SETTINGS, DirectoryImportService, directory_import_consumer
from therapy_platform.therapists.imports.adapters.raw_files import S3RawFileReader
from therapy_platform.therapists.imports.domain.reports import ImportSource
from therapy_platform.therapists.imports.use_cases import import_directory_file

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
POINTS = [SearchPoint(latitude=50.77, longitude=6.08), SearchPoint(latitude=50.70, longitude=6.20)]
REGION = Region.parse({"prefix": "52", "radius_km": 10})


def answer(*entries: Any, more: bool = False) -> dict[str, Any]:
    return {"arztPraxisDatas": list(entries), "moreResults": more}


def run(
    directory: ScriptedDirectory, *, enricher: FakeEnricher | None = None, pages: int = 5
) -> tuple[Any, InMemoryRawStore, InMemoryRunStore]:
    store, runs = InMemoryRawStore(), InMemoryRunStore()
    result = scrape_region(
        REGION,
        directory.points,
        search=directory,
        enricher=enricher,
        raw_store=store,
        runs=runs,
        limits=ScrapeLimits(max_pages_per_point=pages),
        clock=lambda: NOW,
        trigger="test",
        source="http://directory.test/api/data",
    ).value
    return result, store, runs


def test_a_run_reads_every_page_of_every_point_and_stores_one_file() -> None:
    directory = ScriptedDirectory(
        POINTS,
        {
            (0, 0): answer(entry(id="e1"), entry(id="e2"), more=True),
            (0, 1): answer(entry(id="e3")),
            (1, 0): answer(entry(id="e3"), entry(id="e4", email="", web="www.praxis4.example")),
        },
    )
    enricher = FakeEnricher(
        {
            "www.praxis4.example": Enrichment(
                email=Provenanced(value="p4@praxis4.example", source="https://praxis4.example/")
            )
        }
    )
    result, store, runs = run(directory, enricher=enricher)
    assert result.status is RunStatus.SUCCEEDED
    assert (result.pages, result.entries, result.requests, result.enriched, result.errors) == (3, 5, 3, 1, 0)
    assert result.raw_object_key == "raw/2026-11-22/52.json"
    assert directory.calls == [(0, 0), (0, 1), (1, 0)]
    assert enricher.asked == ["www.praxis4.example"]  # only the entry with a website and no email
    document = read_raw_document(store.objects["raw/2026-11-22/52.json"])
    assert document.complete and document.region == REGION and document.points == POINTS
    assert document.enrichment["e4"].email is not None
    assert [r.status for r in runs.history] == [RunStatus.RUNNING, RunStatus.SUCCEEDED]


def test_a_malformed_answer_is_kept_and_makes_the_run_partial() -> None:
    broken = MalformedAnswerError("page 0 is not JSON", text="<html>Wartung</html>")
    directory = ScriptedDirectory(POINTS, {(0, 0): broken, (1, 0): answer(entry(id="e1"))})
    result, store, _ = run(directory)
    assert result.status is RunStatus.PARTIAL and result.errors == 1
    document = read_raw_document(store.objects[result.raw_object_key])
    assert not document.complete
    assert document.pages[0].raw_text == "<html>Wartung</html>"


def test_a_directory_that_stays_down_ends_the_run_without_a_file() -> None:
    down = DirectoryUnavailableError("HTTP 503 after 5 attempts")
    directory = ScriptedDirectory(POINTS * 2, {(i, 0): down for i in range(4)})
    directory.points = [SearchPoint(latitude=50 + i / 10, longitude=6) for i in range(5)]
    directory.script = {(i, 0): down for i in range(5)}
    result, store, _ = run(directory)
    assert result.status is RunStatus.FAILED and not store.objects
    assert len(directory.calls) == 3  # three failed points in a row: stop spending the cap
    assert any("seems down" in message for message in result.error_messages)


def test_the_cap_makes_a_run_partial_but_keeps_what_was_read() -> None:
    directory = ScriptedDirectory(
        POINTS, {(0, 0): answer(entry(id="e1")), (1, 0): BudgetExhaustedError("cap of 1")}
    )
    result, store, _ = run(directory)
    assert result.status is RunStatus.PARTIAL and result.raw_object_key in store.objects


def test_too_many_pages_at_one_point_is_partial() -> None:
    directory = ScriptedDirectory(
        POINTS[:1], {(0, p): answer(entry(id=f"e{p}"), more=True) for p in range(3)}
    )
    result, _, _ = run(directory, pages=2)
    assert result.status is RunStatus.PARTIAL
    assert "more than 2 pages" in result.error_messages[0]


def test_a_raw_file_of_a_run_imports() -> None:
    directory = ScriptedDirectory(
        POINTS, {(0, 0): answer(entry(id="e1"), entry(id="e2", vorname="Lea", plz="5206A"))}
    )
    result, store, _ = run(directory)
    outcome = import_directory_file(
        InMemoryDirectoryImportUnitOfWork(DirectoryDatabase()),
        InMemoryImportReportStore(),
        FakeGeocoder(),
        store.objects[result.raw_object_key],
        source=ImportSource("s3://b/" + result.raw_object_key),
        now=NOW,
    ).value
    assert (outcome.report.counts.new, outcome.report.skip_reasons) == (1, {"invalid_value": 1})


def test_search_points_of_regions() -> None:
    postcodes = postcode_directory()
    assert len(search_points(Region.parse("52062-r25"), postcodes)) == 1
    tiles = search_points(Region.parse({"prefix": "52", "radius_km": 10}), postcodes)
    assert 5 < len(tiles) < len(postcodes.centroids_with_prefix("52"))
    with pytest.raises(InvalidInputError, match="no German postcode starts with 00"):
        search_points(Region.parse("00"), postcodes)


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket="raw-directory", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        yield s3


def test_the_scraper_handler_stores_a_run_in_s3(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_function("directory_scraper")
    settings = ScraperSettings.model_validate(
        {
            "RAW_BUCKET": "raw-directory",
            "DIRECTORY_BASE_URL": "http://directory.test",
            "DIRECTORY_MIN_INTERVAL_SECONDS": "0",
            "DIRECTORY_USER_AGENT": "therapy-matching-platform-test/1.0 (ops@example.org)",
        }
    )
    clock = FakeClock()
    http = FakeHttp(clock, {"/robots.txt": [(404, "", {})], "/api/data": [page(entry(id="e1"))]})
    runs = InMemoryRunStore()
    service = dataclasses.replace(
        build_scraper(settings),  # raw files go to (moto's) S3 as deployed
        runs=lambda: runs,
        clock=lambda: NOW,
        session=lambda budget: polite(http, clock, max_requests=budget.max_requests, min_interval=0),
    )
    monkeypatch.setattr(module, "service", service)
    result = module.lambda_handler({"region": "52062-r5", "trigger": "operator"}, FakeLambdaContext())
    assert result["status"] == "succeeded" and result["raw_object_key"] == "raw/2026-11-22/52062-r5.json"
    body = aws.get_object(Bucket="raw-directory", Key=result["raw_object_key"])["Body"].read()
    assert read_raw_document(body).pages[0].answer["arztPraxisDatas"][0]["id"] == "e1"
    assert http.paths() == ["/robots.txt", "/api/data"]
    assert [run.status for run in runs.history] == [RunStatus.RUNNING, RunStatus.SUCCEEDED]


def test_the_scraper_handler_refuses_a_bad_schedule_input_without_retrying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = load_function("directory_scraper")
    result = module.lambda_handler({"region": "5A"}, FakeLambdaContext())
    assert result["status"] == "rejected" and "region" in result["error"]
    assert module.lambda_handler({"region": "00"}, FakeLambdaContext())["status"] == "rejected"
    assert module.lambda_handler({"region": "52", "extra": 1}, FakeLambdaContext())["status"] == "rejected"


def _s3_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (ROOT / "events" / "directory_import" / "sqs_object_created.json").read_text()
    )
    return event


@dataclasses.dataclass
class Importer:
    """The import function with in-memory adapters, publishing after each commit to `bus`."""

    module: Any
    database: DirectoryDatabase
    reports: InMemoryImportReportStore
    bus: FakeBus

    def service(self, raw_files: Callable[[str], Any] = S3RawFileReader.connect) -> DirectoryImportService:
        database = self.database
        publish = PublishNow(store=lambda: InMemoryOutboxStore(database), publisher=lambda: self.bus)
        return DirectoryImportService(
            unit_of_work=lambda: InMemoryDirectoryImportUnitOfWork(database, publish=publish),
            reports=lambda: self.reports,
            raw_files=raw_files,
            geocoder=FakeGeocoder,
            clock=lambda: NOW,
        )


@pytest.fixture
def importer(monkeypatch: pytest.MonkeyPatch) -> Importer:
    module = load_function("directory_import")
    world = Importer(module, DirectoryDatabase(), InMemoryImportReportStore(), FakeBus())
    monkeypatch.setattr(module, "service", world.service())
    return world


def test_the_import_handler_imports_the_object_named_by_the_s3_event_once(
    aws: Any, importer: Importer
) -> None:
    event = _s3_event()
    detail = json.loads(event["Records"][0]["body"])["detail"]
    aws.create_bucket(
        Bucket=detail["bucket"]["name"], CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    aws.put_object(
        Bucket=detail["bucket"]["name"],
        Key=detail["object"]["key"],
        Body=json.dumps(answer(entry(id="e1"), "kaputt")),
    )
    module, reports, database = importer.module, importer.reports, importer.database
    assert module.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    (report,) = reports.reports.values()
    assert report.source == f"s3://{detail['bucket']['name']}/{detail['object']['key']}"
    assert (report.counts.new, report.skip_reasons) == (1, {"malformed_entry": 1})
    # Published right after the entry's transaction committed.
    assert [message.envelope.event_type for message in importer.bus.messages] == ["therapist.imported"]
    assert all(row.published for row in database.outbox)
    metrics = module.service.metrics
    assert metrics.values("DirectoryEntriesCreated") == [1] and metrics.values(
        "DirectoryEntriesRejected"
    ) == [1]
    # The same object version again (SQS redelivers): nothing new, nothing measured.
    assert module.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert len(reports.reports) == 1 and len(database.therapists) == 1
    assert metrics.values("DirectoryEntriesCreated") == [1]
    # An operator's direct invocation answers with the report (imported before: same report).
    answered = module.lambda_handler(
        {"bucket": detail["bucket"]["name"], "key": detail["object"]["key"]}, FakeLambdaContext()
    )
    assert answered["report"]["id"] == str(report.id)


def test_the_import_handler_fails_a_message_that_is_not_an_s3_event(importer: Importer) -> None:
    event = _s3_event()
    event["Records"][0]["body"] = "{}"
    result = importer.module.lambda_handler(event, FakeLambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


@dataclasses.dataclass
class FakeQueues:
    dead_letters: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    delays: list[int] = dataclasses.field(default_factory=list)

    def send_to_dead_letter(self, dead_letter_queue_url: str, body: str, reason: str) -> None:
        self.dead_letters.append((dead_letter_queue_url, body, reason))

    def delay_retry(self, queue_arn: str, receipt_handle: str, delay_seconds: int) -> None:
        self.delays.append(delay_seconds)


def test_the_import_queue_dead_letters_poison_and_retries_outages_later(importer: Importer) -> None:
    queues = FakeQueues()
    storage = InMemoryRawStore()
    service = importer.service(raw_files=lambda bucket: storage)
    consumer = directory_import_consumer(
        lambda: service, SETTINGS.model_copy(update={"dead_letter_queue_url": "dlq"}), queues=lambda: queues
    )
    event = _s3_event()
    event["Records"][0]["body"] = json.dumps({"bucket": "b"})
    assert consumer.handle(event) == {"batchItemFailures": []}  # gone to the DLQ, with the reason
    ((url, body, reason),) = queues.dead_letters
    assert (url, body) == ("dlq", '{"bucket": "b"}') and "key" in reason
    # Storage unreachable: offered again after the import's backoff (a minute), no report.
    storage.fail = True
    event = _s3_event()
    message_id = event["Records"][0]["messageId"]
    assert consumer.handle(event) == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert queues.delays == [SETTINGS.retry_base_seconds] and importer.reports.reports == {}
    # A key that is not a raw file is acknowledged and left alone.
    event["Records"][0]["body"] = json.dumps({"bucket": "b", "key": "notes/readme.txt"})
    assert consumer.handle(event) == {"batchItemFailures": []}
    assert importer.reports.reports == {}


def test_a_database_outage_during_an_import_is_retried(importer: Importer) -> None:
    queues = FakeQueues()
    storage = InMemoryRawStore({"raw/2026-11-22/52.json": json.dumps(answer(entry(id="e1"))).encode()})

    def unreachable() -> Any:
        raise DependencyUnavailableError("the database cannot be reached right now")

    service = dataclasses.replace(
        importer.service(raw_files=lambda bucket: storage), unit_of_work=unreachable
    )
    consumer = directory_import_consumer(lambda: service, SETTINGS, queues=lambda: queues)
    event = _s3_event()
    assert consumer.handle(event) == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
    }
    assert queues.delays == [SETTINGS.retry_base_seconds]


def test_the_imports_api_lists_and_reads_reports(importer: Importer, monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_function("imports_api")
    database, reports = importer.database, importer.reports
    monkeypatch.setattr(module, "service", importer.service())
    data = json.dumps(answer(entry(id="e1"), "kaputt", entry(id="e2", plz="ABCDE"))).encode()
    outcome = import_directory_file(
        InMemoryDirectoryImportUnitOfWork(database),
        reports,
        FakeGeocoder(),
        data,
        source=ImportSource("f"),
        now=NOW,
    ).value
    status, listing = call(module.lambda_handler, api_event("GET", "/api/v2/imports"))
    assert status == 200 and listing["total"] == 1
    assert listing["items"][0]["counts"]["new"] == 1 and listing["items"][0]["skip_reasons"] == {
        "malformed_entry": 1,
        "invalid_value": 1,
    }
    report_id = outcome.report.id
    status, report = call(
        module.lambda_handler,
        api_event("GET", f"/api/v2/imports/{report_id}", query={"outcome": "skipped", "limit": "1"}),
    )
    assert status == 200 and report["items_total"] == 2 and len(report["items"]) == 1
    assert report["items"][0]["reason"] == "malformed_entry"
    assert call(module.lambda_handler, api_event("GET", f"/api/v2/imports/{uuid.uuid4()}"))[0] == 404
    assert call(module.lambda_handler, api_event("GET", "/api/v2/imports/not-a-uuid"))[0] == 422
    status, body = call(module.lambda_handler, api_event("GET", "/api/v2/imports", query={"status": "x"}))
    assert status == 422 and body["errors"][0]["field"] == "status"
    status, body = call(
        module.lambda_handler, api_event("GET", f"/api/v2/imports/{report_id}", query={"outcome": "new"})
    )
    assert status == 422


def test_the_import_handler_skips_an_object_deleted_before_it_ran(aws: Any, importer: Importer) -> None:
    event = _s3_event()
    detail = json.loads(event["Records"][0]["body"])["detail"]
    aws.create_bucket(
        Bucket=detail["bucket"]["name"], CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    assert importer.module.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert importer.reports.reports == {}
