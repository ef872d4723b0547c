"""Composition root of the therapist service: its units of work on the function's PostgreSQL
(`therapist_service`) with the after-commit hook that publishes the committed events at once
(the scheduled relay sends whatever that misses), the in-process geocoder, and the real clock.

- `build()`: what the therapists API uses (staff edits; geocoding through Nominatim when
  NOMINATIM_ENABLED, else the postcode centroid);
- `build_directory_import()`: what the directory import and the imports API use (listings and
  reports; raw files from S3; the offline postcode table, right for thousands of entries);
- `directory_import_consumer()`: the import queue's consumer (S3 `Object Created` events).

Settings are read at import, i.e. at cold start: a missing or invalid variable fails naming it.
Everything else (engines, clients, the postcode table) is made on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import ValidationError

from therapy_platform.contracts.bundles import CoolingPeriodStarted
from therapy_platform.contracts.communication import OptOutReceived
from therapy_platform.contracts.personal_data import InvokedParts, NoOtherServices, PersonalDataParts
from therapy_platform.platform.bootstrap import publish_after_commit, sqs_queues
from therapy_platform.platform.clock import utc_now
from therapy_platform.platform.consumer import (
    Handled,
    PoisonMessageError,
    QueueConsumer,
    QueueControl,
    RetryLaterError,
    RetryPolicy,
    bus_consumer,
)
from therapy_platform.platform.database import default_engine
from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.eventbridge import default_publisher
from therapy_platform.platform.events import BusMessage
from therapy_platform.platform.geography.locator import default_locator
from therapy_platform.platform.geography.ports import Geocoder
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.idempotency import SqlIdempotencyStore
from therapy_platform.platform.lambda_invoke import default_functions
from therapy_platform.platform.metrics import FlushedMetrics, RecordingMetrics, add_all
from therapy_platform.platform.metrics_emf import EmfMetrics
from therapy_platform.platform.ports import EventPublisher
from therapy_platform.platform.settings import PersonalDataSettings
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.adapters.tables import THERAPIST_SCHEMA
from therapy_platform.therapists.imports.adapters.raw_files import (
    S3RawFileReader,
    decode_stored_file,
    stored_file_of,
)
from therapy_platform.therapists.imports.adapters.store import (
    ChunkedImport,
    SqlDirectoryImportUnitOfWork,
    SqlImportReportStore,
    chunked_import,
)
from therapy_platform.therapists.imports.domain.reports import (
    FileNotImported,
    ImportResult,
    StoredFile,
    import_measurements,
)
from therapy_platform.therapists.imports.ports import (
    DirectoryImportUnitOfWork,
    ImportReportStore,
    RawFileReader,
)
from therapy_platform.therapists.imports.use_cases import import_stored_file
from therapy_platform.therapists.ports import TherapistUnitOfWork
from therapy_platform.therapists.settings import TherapistSettings
from therapy_platform.therapists.use_cases import apply_matching_cooling, apply_opt_out_reply

SETTINGS = TherapistSettings.from_env()
LOGGER = logging.getLogger(__name__)


@cache
def in_process_geocoder() -> Geocoder:
    """Full address through Nominatim when NOMINATIM_ENABLED, else the postcode centroid, else
    unknown (flagged for staff). No cache: this service's role cannot reach the geocoding
    schema (docs/geocoding.md)."""
    return default_locator()


@dataclass(frozen=True)
class TherapistService:
    """What the therapists API uses; unit tests build one from in-memory fakes."""

    unit_of_work: Callable[[], TherapistUnitOfWork]
    geocoder: Callable[[], Geocoder]
    clock: Callable[[], datetime] = utc_now
    personal_data_parts: PersonalDataParts = field(default_factory=NoOtherServices)


@dataclass(frozen=True)
class DirectoryImportService:
    """What the directory import and the imports API use; unit tests build one from fakes."""

    unit_of_work: Callable[[], DirectoryImportUnitOfWork]
    reports: Callable[[], ImportReportStore]
    raw_files: Callable[[str], RawFileReader]  # bucket -> its reader
    geocoder: Callable[[], Geocoder]
    clock: Callable[[], datetime] = utc_now
    metrics: FlushedMetrics = field(default_factory=RecordingMetrics)  # the import function flushes
    # Set-based chunks for a file (as the operators' command imports): one read of what 500
    # entries may match, one statement per table, one commit. None: entry by entry (fakes).
    # The engine needs a pool of 2: the chunk's transaction holds one connection while the
    # report is written on the other.
    chunked: Callable[[], AbstractContextManager[ChunkedImport]] | None = None


def build(
    settings: TherapistSettings = SETTINGS, *, publisher: Callable[[], EventPublisher] = default_publisher
) -> TherapistService:
    """The deployed service (integration tests pass their own bus)."""
    publish = publish_after_commit(THERAPIST_SCHEMA, publisher=publisher)
    return TherapistService(
        unit_of_work=lambda: SqlTherapistUnitOfWork(default_engine(), publish=publish),
        geocoder=in_process_geocoder,
        personal_data_parts=InvokedParts(_invoke, PersonalDataSettings.from_env().names()),
    )


def _invoke(function_name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    return default_functions().invoke(function_name, payload)


def build_directory_import(settings: TherapistSettings = SETTINGS) -> DirectoryImportService:
    publish = publish_after_commit(THERAPIST_SCHEMA)
    return DirectoryImportService(
        unit_of_work=lambda: SqlDirectoryImportUnitOfWork(default_engine(pool_size=2), publish=publish),
        reports=lambda: SqlImportReportStore(default_engine(pool_size=2)),
        raw_files=S3RawFileReader.connect,
        # Imports locate by the directory's coordinates, else the shipped postcode table
        # (offline, never rate-limited): right for thousands of entries.
        geocoder=postcode_directory,
        metrics=EmfMetrics(THERAPIST_SCHEMA),
        # Each chunk's events are published right after it commits (the relay sends what fails).
        chunked=lambda: chunked_import(default_engine(pool_size=2), publish),
    )


# ------------------------------------------------------------------------------ import queue


def import_file(service: DirectoryImportService, stored: StoredFile) -> ImportResult | FileNotImported:
    """Import the raw file an event names; storage or database unreachable: try again later."""
    try:
        with service.chunked() if service.chunked is not None else nullcontext() as chunked:
            result = import_stored_file(
                service.unit_of_work() if chunked is None else chunked.unit_of_work,
                service.reports(),
                service.raw_files,
                service.geocoder(),
                stored,
                clock=service.clock,
                chunks=None if chunked is None else chunked.chunks,
                staging=None if chunked is None else chunked.staging,
            ).value
    except DependencyUnavailableError as error:
        raise RetryLaterError(error.message) from error
    if isinstance(result, ImportResult) and not result.already_done:
        add_all(service.metrics, import_measurements(result.report.counts))
    return result


def _handled(stored: StoredFile, result: ImportResult | FileNotImported) -> Handled:
    """What the log says about one file (keys, counts and codes: never an entry's content)."""
    where = {"bucket": stored.bucket, "key": stored.key}
    if isinstance(result, FileNotImported):
        return Handled("", "raw_file", "ignored", {**where, "reason": result.reason})
    report = result.report
    return Handled(
        "",
        "raw_file",
        "imported_before" if result.already_done else f"import_{report.status}",
        {
            **where,
            "import_id": str(report.id),
            "counts": report.counts.model_dump(),
            "skip_reasons": report.skip_reasons,
            "error": report.error,
        },
    )


def directory_import_consumer(
    service: Callable[[], DirectoryImportService],
    settings: TherapistSettings = SETTINGS,
    *,
    queues: Callable[[], QueueControl] = sqs_queues,
    logger: logging.Logger | Any = LOGGER,
) -> QueueConsumer[StoredFile]:
    """S3 -> EventBridge `Object Created` -> SQS -> one import per message. A body that names no
    file is poison (to the DLQ with the reason); an unusable file gets a failed report and is
    done; storage or database unreachable: the message is offered again after the backoff."""

    def handle(stored: StoredFile) -> Handled:
        return _handled(stored, import_file(service(), stored))

    return QueueConsumer(
        name="directory-import",
        decode=decode_stored_file,
        kind_of=lambda _: "raw_file",
        handlers={"raw_file": handle},
        queues=queues,
        dead_letter_queue_url=settings.dead_letter_queue_url,
        retry=RetryPolicy(settings.retry_base_seconds, settings.retry_max_seconds),
        logger=logger,
    )


def import_requested_file(service: DirectoryImportService, event: Mapping[str, Any]) -> dict[str, Any]:
    """An operator's `{"bucket", "key"}` (or a rule targeting the function directly): the import
    runs at once and its report is the answer."""
    result = import_file(service, stored_file_of(event))
    return {"report": result.report.model_dump(mode="json") if isinstance(result, ImportResult) else None}


# ------------------------------------------------------------------------------ cooling events


def cooling_events_consumer(
    service: Callable[[], TherapistService],
    settings: TherapistSettings = SETTINGS,
    *,
    queues: Callable[[], QueueControl] = sqs_queues,
    logger: logging.Logger | Any = LOGGER,
) -> QueueConsumer[BusMessage]:
    """`cooling.period_started` from the matching service: the therapist gets no contact before
    the date. `email.opt_out_received` from the communication service: the therapist replied
    that they want no more inquiries (GDPR Art. 21), so they are opted out. Applying either is
    idempotent (cooling only ever grows; an opt-out stays as first recorded), so no eventId
    claim is needed; a payload the contract refuses is poison."""

    def store_cooling(message: BusMessage) -> Handled:
        try:
            cooling = CoolingPeriodStarted.model_validate(message.envelope.payload)
        except ValidationError as error:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in error.errors())
            raise PoisonMessageError(f"payload is not a cooling.period_started (fields: {fields})") from error
        current = service()
        outcome = apply_matching_cooling(
            current.unit_of_work(),
            cooling.therapist_id,
            cooling.next_contact_allowed_on,
            cause=cooling.cause,
            now=current.clock(),
        )
        detail = {"therapist_id": str(cooling.therapist_id), "changed": bool(outcome.events)}
        return Handled("", message.envelope.event_type, "done", detail)

    def store_opt_out(message: BusMessage) -> Handled:
        try:
            objection = OptOutReceived.model_validate(message.envelope.payload)
        except ValidationError as error:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in error.errors())
            raise PoisonMessageError(
                f"payload is not an email.opt_out_received (fields: {fields})"
            ) from error
        current = service()
        outcome = apply_opt_out_reply(current.unit_of_work(), objection.therapist_id, now=current.clock())
        detail = {
            "therapist_id": str(objection.therapist_id),
            "known": outcome.value is not None,
            "changed": bool(outcome.events),
        }
        return Handled("", message.envelope.event_type, "done", detail)

    return bus_consumer(
        "therapist-matching-events",
        {"cooling.period_started": store_cooling, "email.opt_out_received": store_opt_out},
        queues=queues,
        dead_letter_queue_url=settings.dead_letter_queue_url,
        logger=logger,  # the runtime's default backoff: a database hiccup, not a long import
    )


def idempotency_keys() -> SqlIdempotencyStore:
    """The `Idempotency-Key`s of this service's creating POSTs (table `idempotency_keys` in its schema)."""
    return SqlIdempotencyStore(default_engine, THERAPIST_SCHEMA)
