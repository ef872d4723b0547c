"""Therapist service: imports a raw directory file when the scraper stores it in S3.

S3 (EventBridge notifications) -> rule `Object Created` on `raw/` -> SQS (DLQ after 5
receives) -> this function, one object per message. The import is idempotent: a redelivered
event of an object version imported before does nothing, and any re-import of unchanged
entries writes nothing (content hashes). A file that cannot be read at all gets a failed
report and is not retried; a database outage fails the message so SQS offers it again.
Events go to the outbox; the first few hundred are published at once, the scheduled relay
publishes the rest.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from therapy_platform.directory.adapters.raw_store import S3RawStore
from therapy_platform.directory.domain.entries import DIRECTORY_ACTOR, is_raw_object_key
from therapy_platform.directory.ports import ImportReportStore, RawStore
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.errors import NotFoundError
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.outbox_relay import relay_outbox
from therapy_platform.platform.rest.services import ServiceDependencies, default_dependencies
from therapy_platform.therapists.imports.store import SqlDirectoryImportUnitOfWork, SqlImportReportStore
from therapy_platform.therapists.imports.use_cases import ImportOutcome, ImportSource, import_directory_file

logger = Logger(service="therapist-service")
# One message per batch: report its failure (SQS offers it again, then the DLQ) instead of raising.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

PUBLISH_AT_ONCE: Final = 500  # more events than this are left to the scheduled relay


class S3Object(BaseModel):
    """The `detail` of S3's `Object Created` event on EventBridge (the parts used)."""

    model_config = ConfigDict(extra="ignore")

    bucket: str
    key: str
    etag: str | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> S3Object:
        detail = event.get("detail") or {}
        return cls(
            bucket=str(detail["bucket"]["name"]),
            key=unquote_plus(str(detail["object"]["key"])),
            etag=(detail["object"].get("etag") or None),
        )


class ImportRequest(BaseModel):
    """Operators may invoke the function directly with a bucket and key."""

    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(min_length=3)
    key: str = Field(min_length=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Dependencies:
    service: ServiceDependencies[SqlDirectoryImportUnitOfWork] = field(
        default_factory=lambda: default_dependencies(SqlDirectoryImportUnitOfWork)
    )
    reports: Callable[[], ImportReportStore] = field(default=lambda: SqlImportReportStore(default_engine()))
    raw_store: Callable[[str], RawStore] = S3RawStore.connect
    clock: Callable[[], datetime] = _utc_now


deps = Dependencies()
# Imports locate by the directory's coordinates, else the shipped postcode table (offline,
# never rate-limited): right for thousands of entries.
deps.service.geocoder = postcode_directory


def import_object(obj: S3Object) -> ImportOutcome | None:
    if not is_raw_object_key(obj.key):
        logger.info("not a raw directory file: ignored", extra={"bucket": obj.bucket, "key": obj.key})
        return None
    try:
        raw = deps.raw_store(obj.bucket).get(obj.key)
    except NotFoundError:
        # Deleted before we got to it (lifecycle, operator): nothing to import, nothing to retry.
        logger.warning("raw directory file is gone: skipped", extra={"bucket": obj.bucket, "key": obj.key})
        return None
    outcome = import_directory_file(
        deps.service.unit_of_work(),
        deps.reports(),
        deps.service.geocoder(),
        raw.body,
        source=ImportSource(f"s3://{obj.bucket}/{obj.key}", raw.version or obj.etag),
        actor=DIRECTORY_ACTOR,
        now=deps.clock(),
        clock=deps.clock,
        once_per_version=True,
    )
    report = outcome.report
    logger.info(
        "directory file imported" if not outcome.already_done else "directory file imported before",
        extra={
            "import_id": str(report.id),
            "status": str(report.status),
            "counts": report.counts.model_dump(),
            "skip_reasons": report.skip_reasons,
            "error": report.error,
        },
    )
    if 0 < len(outcome.event_ids) <= PUBLISH_AT_ONCE:
        _publish_now(outcome.event_ids)
    return outcome


def _publish_now(event_ids: list[uuid.UUID]) -> None:
    """Best effort: what fails stays in the outbox for the scheduled relay."""
    try:
        relay_outbox(
            deps.service.outbox_store(),
            deps.service.publisher(),
            event_ids=event_ids,
            batch_size=len(event_ids),
        )
    except Exception:
        logger.warning("immediate publish failed; the scheduled relay will retry", exc_info=True)


def record_handler(record: SQSRecord) -> None:
    # A body that is not an S3 event raises: the message is retried, then lands in the DLQ.
    import_object(S3Object.from_event(json.loads(record.body)))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return dict(response)
    if event.get("detail-type") == "Object Created":  # a rule targeting the function directly
        outcome = import_object(S3Object.from_event(event))
    else:
        request = ImportRequest.model_validate(event)
        outcome = import_object(S3Object(bucket=request.bucket, key=request.key))
    return {"report": outcome.report.model_dump(mode="json") if outcome else None}
