"""The 116117 directory pipeline through the deployed local stack: the scraper, invoked with
the input the EventBridge Scheduler entry gives it at the region's slot of the week plan, reads
the local directory server (localcloud.directory, Berlin practices with malformed entries
among them), stores the raw answers in the stack's S3 bucket, whose Object Created event
(EventBridge -> SQS) runs the import; the report is readable through /api/v2/imports with every
skip reason; the imported therapists are in the pool and reach the matching read model; a
second run writes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from cloud_support import ApiCaller, eventually
from localcloud import stack
from localcloud.aws import client
from localcloud.logtail import json_records
from therapy_platform.platform.clock import platform_today

pytestmark = pytest.mark.e2e

AUDITOR = ApiCaller("auditor", user="e2e-imports@praxisvermittlung.example.de")
# The staff selection list of eligible therapists is a matching tool, not a record: staff only.
STAFF = ApiCaller("staff", user="e2e-imports@praxisvermittlung.example.de")

REGION = "10"


def _eventually(probe: Callable[[], Any], timeout_s: float = 300, every: float = 2.0) -> Any:
    return eventually(probe, timeout_s=timeout_s, every=every)


def _report_for(base_url: str, key: str, version: str) -> dict[str, Any] | None:
    """The finished import of this object version (the same key may have been imported before
    today, with other content, by an earlier run against the same local database)."""
    listing = AUDITOR.get(f"{base_url}/api/v2/imports", params={"limit": "50"}, timeout=60)
    assert listing.status_code == 200, listing.text
    done = [
        i
        for i in listing.json()["items"]
        if i["source"].endswith(key) and i["source_version"] == version and i["status"] != "running"
    ]
    return done[0] if done else None


def _scrape(deployed: stack.StackInfo) -> dict[str, Any]:
    # What Scheduler sends at the week plan's slot for the region: no region, only the time.
    event = stack.directory_schedule_input(REGION)
    assert event["trigger"] == "schedule" and "region" not in event
    assert event["scheduled_time"].endswith("Z")
    result = stack.invoke("DirectoryScraperFunction", event, info=deployed)
    assert result.error is None, (result.payload, result.logs)
    run: dict[str, Any] = result.payload
    assert run["status"] == "succeeded", run
    return run


def test_a_scheduled_region_run_imports_the_pool_and_a_second_run_writes_nothing(
    deployed: stack.StackInfo, base_url: str
) -> None:
    schedule = client("scheduler").get_schedule(
        Name=f"therapy-platform-{stack.deployed_environment()}-directory",
        GroupName=f"therapy-platform-{stack.deployed_environment()}-directory",
    )
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert schedule["Target"]["Arn"].endswith(deployed.functions["DirectoryScraperFunction"])

    run = _scrape(deployed)
    key = run["raw_object_key"]
    assert key == f"raw/{platform_today(datetime.now(UTC)).isoformat()}/{REGION}.json"
    stored = client("s3").head_object(Bucket=deployed.outputs["RawDirectoryBucketName"], Key=key)
    assert stored["ContentLength"] > 0 and run["entries"] > 0 and run["pages"] >= 1

    version = str(stored["ETag"]).strip('"')
    report = _eventually(lambda: _report_for(base_url, key, version))
    assert report is not None, "the S3 event never reached the import"
    assert report["status"] == "finished", report
    assert report["region"] == REGION and report["complete_source"] is True
    # The local directory's malformed entries are each skipped with their reason.
    assert {"malformed_entry", "missing_field", "invalid_value"} <= set(report["skip_reasons"])
    detail = AUDITOR.get(
        f"{base_url}/api/v2/imports/{report['id']}", params={"outcome": "skipped", "limit": "200"}, timeout=60
    ).json()
    assert detail["items_total"] == report["counts"]["skipped"] > 0
    assert all(item["reason"] for item in detail["items"])

    pool = AUDITOR.get(f"{base_url}/api/v2/therapists", params={"postcode_prefix": REGION}, timeout=60)
    assert pool.status_code == 200 and pool.json()["total"] > 0, pool.text
    eligible = _eventually(
        lambda: STAFF.get(
            f"{base_url}/api/v2/therapists/eligible", params={"postcode_prefix": REGION}, timeout=60
        ).json()["total"]
    )
    assert eligible, "imported therapists never reached the matching read model"

    # The same region again: the same answers make the same object version, which the import
    # recognises and leaves alone; a new version of unchanged entries would import with no writes.
    pool_before = pool.json()["total"]
    scraped = time.time()
    again = _scrape(deployed)
    assert again["raw_object_key"] == key
    version = client("s3").head_object(Bucket=deployed.outputs["RawDirectoryBucketName"], Key=key)["ETag"]
    version = version.strip('"')
    if version == report["source_version"]:
        # Positive signal: the import function took the S3 event and found the version done.
        def recognised() -> bool:
            lines = stack.recent_logs("DirectoryImportFunction", since_s=int(time.time() - scraped) + 5)
            return any(
                record.get("outcome") == "imported_before" and key in json.dumps(record)
                for record in json_records(lines)
            )

        assert _eventually(recognised), "the import never reported the version as imported before"
        reports = AUDITOR.get(f"{base_url}/api/v2/imports", params={"limit": "50"}, timeout=60).json()
        assert [r["id"] for r in reports["items"] if r["source_version"] == version] == [report["id"]]
    else:
        second = _eventually(
            lambda: next(
                (
                    r
                    for r in AUDITOR.get(f"{base_url}/api/v2/imports", timeout=60).json()["items"]
                    if r["source_version"] == version and r["status"] != "running"
                ),
                None,
            )
        )
        assert second is not None, "the second run was never imported"
        assert second["counts"]["new"] == 0 and second["counts"]["updated"] == 0, second
    after = AUDITOR.get(f"{base_url}/api/v2/therapists", params={"postcode_prefix": REGION}, timeout=60)
    assert after.json()["total"] == pool_before
