"""Importing a raw directory file into the therapist pool (therapist service), and reading the
import reports.

One call imports one file (an S3 object a scraping run stored, or an operator's local file;
the format is contracts/directory_files.py):
- every entry is normalised (domain/entries.py); an entry that cannot be imported is skipped
  with its reason and the rest of the file goes on;
- an entry whose content hash equals the stored listing's costs no write at all;
- a changed or new entry is one transaction: the therapist (matched by directory id, else by
  first name + last name + postcode), its listing with the new hash, the audit entry and the
  event (`therapist.imported` / `therapist.updated`) commit together or not at all;
- after a complete run of a region, listings of that region the file no longer holds are
  marked for review (the therapist is kept as it is);
- the report (counts, skip reasons, items) is stored and readable at /api/v2/imports.
Importing the same file again changes nothing: every entry is unchanged by hash. A stored file
named by an S3 event is imported once per object version (`import_stored_file`).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from therapy_platform.contracts.directory_files import (
    RawRun,
    UnusableFileError,
    is_raw_object_key,
    read_raw_document,
)
from therapy_platform.platform.bulk_load import Chunks
from therapy_platform.platform.errors import ConflictError, DependencyUnavailableError, NotFoundError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.geography.locations import Location
from therapy_platform.platform.geography.ports import Geocoder
from therapy_platform.platform.outcome import Outcome
from therapy_platform.platform.publishing import record_event
from therapy_platform.platform.validation import FieldValidationError, validate_as
from therapy_platform.therapists.domain.erasure import is_suppressed
from therapy_platform.therapists.domain.therapist import (
    PRODUCER,
    Therapist,
    TherapistAuditEntry,
    TherapistDraft,
    TherapistValidationError,
    field_values,
)
from therapy_platform.therapists.imports.domain.entries import (
    DIRECTORY_ACTOR,
    DirectoryRecord,
    EntrySkip,
    PositionedEntry,
    SkipReason,
    entries_of,
    normalise_entry,
)
from therapy_platform.therapists.imports.domain.listings import (
    REASON_BACK,
    REASON_VANISHED,
    Listing,
    in_scope,
)
from therapy_platform.therapists.imports.domain.merge import directory_location, merged_values
from therapy_platform.therapists.imports.domain.reports import (
    FileNotImported,
    ImportCounts,
    ImportItem,
    ImportReport,
    ImportReportSummary,
    ImportResult,
    ImportSource,
    ImportStatus,
    ItemOutcome,
    StoredFile,
)
from therapy_platform.therapists.imports.ports import (
    DirectoryImportUnitOfWork,
    ImportReportStore,
    RawFileReader,
)
from therapy_platform.therapists.ports import TherapistStaging

EVENT_NEW: Final = "therapist.imported"
EVENT_CHANGED: Final = "therapist.updated"
ACTION_NEW: Final = "directory_import"
ACTION_CHANGED: Final = "directory_update"
ACTION_VANISHED: Final = "directory_vanished"
ACTION_BACK: Final = "directory_back"


class _SkipError(Exception):
    def __init__(self, reason: SkipReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


CHUNK_SIZE: Final = 500  # entries per transaction when the import runs in chunks


@dataclass
class _Progress:
    counts: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    items: list[ImportItem] = field(default_factory=list)
    event_ids: list[uuid.UUID] = field(default_factory=list)
    warnings: int = 0
    committed: _Mark | None = None  # as of the last chunk that committed

    def item(self, **values: object) -> None:
        self.items.append(ImportItem.model_validate({"seq": len(self.items) + 1, **values}))

    def skip(self, skip: EntrySkip) -> None:
        self.counts["skipped"] += 1
        self.skip_reasons[skip.reason.value] += 1
        self.item(
            outcome="skipped",
            position=skip.position,
            directory_id=skip.directory_id,
            name=skip.name,
            reason=skip.reason.value,
            message=skip.message,
        )

    def report_counts(self) -> ImportCounts:
        return ImportCounts.model_validate(dict(self.counts))

    def mark(self) -> _Mark:
        """How far the progress is now (to go back to if what follows is not committed)."""
        return _Mark(
            Counter(self.counts),
            Counter(self.skip_reasons),
            len(self.items),
            len(self.event_ids),
            self.warnings,
        )

    def restore(self, mark: _Mark) -> None:
        self.counts, self.skip_reasons = Counter(mark.counts), Counter(mark.skip_reasons)
        del self.items[mark.items :]
        del self.event_ids[mark.event_ids :]
        self.warnings = mark.warnings


@dataclass(frozen=True)
class _Mark:
    counts: Counter[str]
    skip_reasons: Counter[str]
    items: int
    event_ids: int
    warnings: int


def _summary(
    *,
    report_id: uuid.UUID,
    source: ImportSource,
    run: RawRun | None,
    actor: str,
    status: ImportStatus,
    started_at: datetime,
    finished_at: datetime | None,
    progress: _Progress,
    error: str | None = None,
) -> ImportReportSummary:
    return ImportReportSummary(
        id=report_id,
        source=source.name,
        source_version=source.version,
        region=run.region.key if run is not None and run.region is not None else None,
        complete_source=bool(run is not None and run.complete and run.region is not None),
        actor=actor,
        status=status,
        started_at=started_at,
        finished_at=finished_at,
        counts=progress.report_counts(),
        skip_reasons=dict(progress.skip_reasons),
        warnings=progress.warnings,
        error=error,
    )


def import_directory_file(
    uow: DirectoryImportUnitOfWork,
    reports: ImportReportStore,
    geocoder: Geocoder,
    data: bytes,
    *,
    source: ImportSource,
    actor: str = DIRECTORY_ACTOR,
    now: datetime,
    clock: Callable[[], datetime] | None = None,
    once_per_version: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    chunks: Chunks | None = None,
    staging: TherapistStaging | None = None,
) -> Outcome[ImportResult]:
    """Import one raw file; see the module docstring. `now` stamps the records; `clock` (default:
    `now`) stamps the report's end. With `once_per_version`, a version already imported returns
    its report and does nothing (a redelivered S3 event). A file that is not usable at all gives
    a failed report; DependencyUnavailableError (database gone) is re-raised after the report
    says how far the import got (every committed entry is complete). The events are published
    by the unit of work's after-commit hook (with `chunks`: once per chunk); the result lists
    the events' ids.

    With `chunks` (the shared transaction `uow` joins, platform/unit_of_work.SharedTransaction)
    the entries commit CHUNK_SIZE at a time, each entry still in its own savepoint, so a refused
    entry is skipped alone; if the database goes away the report counts the committed chunks.
    With `staging` as well, a chunk reads what its entries may match at once and writes with one
    statement per table; only a chunk the database refuses runs entry by entry."""
    if once_per_version and source.version is not None:
        done = reports.find_finished(source.name, source.version)
        if done is not None:
            return Outcome(ImportResult(done, already_done=True))
    report_id = uuid.uuid4()
    progress = _Progress()
    finish_clock = clock or (lambda: now)

    def summary(run: RawRun | None, status: ImportStatus, error: str | None = None) -> ImportReportSummary:
        finished = None if status is ImportStatus.RUNNING else finish_clock()
        return _summary(
            report_id=report_id,
            source=source,
            run=run,
            actor=actor,
            status=status,
            started_at=now,
            finished_at=finished,
            progress=progress,
            error=error,
        )

    try:
        run = read_raw_document(data)
    except UnusableFileError as error:
        failed = summary(None, ImportStatus.FAILED, error=str(error))
        reports.start(failed)
        reports.finish(failed, [])
        return Outcome(ImportResult(failed))
    reports.start(summary(run, ImportStatus.RUNNING))
    try:
        _import_entries(
            uow,
            geocoder,
            run,
            progress,
            report_id=report_id,
            actor=actor,
            now=now,
            on_progress=on_progress,
            chunks=chunks,
            staging=staging,
        )
    except DependencyUnavailableError as error:
        reports.finish(summary(run, ImportStatus.FAILED, error=f"stopped: {error.message}"), progress.items)
        raise
    finished = summary(run, ImportStatus.FINISHED)
    reports.finish(finished, progress.items)
    return Outcome(ImportResult(finished, progress.items, progress.event_ids))


def import_stored_file(
    uow: DirectoryImportUnitOfWork,
    reports: ImportReportStore,
    raw_files: Callable[[str], RawFileReader],
    geocoder: Geocoder,
    stored: StoredFile,
    *,
    clock: Callable[[], datetime],
    chunks: Chunks | None = None,
    staging: TherapistStaging | None = None,
) -> Outcome[ImportResult | FileNotImported]:
    """The raw file an S3 event (or an operator) names, imported once per object version with
    the directory's actor. A key outside `raw/YYYY-MM-DD/<region>.json` is not a raw file; a
    file deleted before the import got to it has nothing to import. DependencyUnavailableError
    (storage or database unreachable) is raised: the message should be tried again later.
    `chunks` and `staging`: as for `import_directory_file` (the deployed function's way)."""
    if not is_raw_object_key(stored.key):
        return Outcome(FileNotImported("not a raw directory file"))
    try:
        raw = raw_files(stored.bucket).get(stored.key)
    except NotFoundError:
        # Deleted before we got to it (lifecycle, operator): nothing to import, nothing to retry.
        return Outcome(FileNotImported("the raw directory file is gone"))
    imported = import_directory_file(
        uow,
        reports,
        geocoder,
        raw.body,
        source=ImportSource(stored.uri, raw.version or stored.etag),
        actor=DIRECTORY_ACTOR,
        now=clock(),
        clock=clock,
        once_per_version=True,
        chunks=chunks,
        staging=staging,
    )
    return Outcome(imported.value, imported.events)


def _import_entries(
    uow: DirectoryImportUnitOfWork,
    geocoder: Geocoder,
    run: RawRun,
    progress: _Progress,
    *,
    report_id: uuid.UUID,
    actor: str,
    now: datetime,
    on_progress: Callable[[int, int], None] | None,
    chunks: Chunks | None = None,
    staging: TherapistStaging | None = None,
) -> None:
    committed = progress.mark()
    try:
        _import_entries_in_chunks(
            uow, geocoder, run, progress, report_id, actor, now, on_progress, chunks, staging
        )
    except DependencyUnavailableError:
        if chunks is not None:
            chunks.rollback()
            progress.restore(progress.committed or committed)
        raise


def _import_entries_in_chunks(
    uow: DirectoryImportUnitOfWork,
    geocoder: Geocoder,
    run: RawRun,
    progress: _Progress,
    report_id: uuid.UUID,
    actor: str,
    now: datetime,
    on_progress: Callable[[int, int], None] | None,
    chunks: Chunks | None,
    staging: TherapistStaging | None = None,
) -> None:
    def commit_chunk() -> None:
        if chunks is not None:
            chunks.commit()
            progress.committed = progress.mark()

    with uow:
        listings = uow.listings.snapshot()
        suppressed = uow.erasures.suppressed_keys()
    entries = list(entries_of(run))
    seen: dict[str, tuple[str, str]] = {}  # directory id -> (content hash, position)
    back: list[Listing] = []
    size = CHUNK_SIZE if chunks is not None else len(entries) or 1
    for start in range(0, len(entries), size):
        chunk = [(entry, _normalised(run, entry)) for entry in entries[start : start + size]]

        def import_chunk(
            chunk: list[tuple[PositionedEntry | EntrySkip, DirectoryRecord | EntrySkip]] = chunk,
        ) -> None:
            for entry, result in chunk:
                if not isinstance(entry, EntrySkip):
                    progress.counts["entries"] += 1
                if isinstance(result, EntrySkip):
                    progress.skip(result)
                elif _is_erased(suppressed, result):
                    # An erased therapist (GDPR Art. 17) is never re-created; only counted, the
                    # report names nobody (therapists/domain/erasure.py).
                    progress.counts["suppressed"] += 1
                else:
                    _one_entry(
                        uow,
                        geocoder,
                        result,
                        entry.position,
                        listings,
                        seen,
                        back,
                        progress,
                        report_id,
                        actor,
                        now,
                    )

        if (
            chunks is None
            or staging is None
            or not _staged(chunk, import_chunk, staging, chunks, listings, progress, seen, back)
        ):
            import_chunk()
        commit_chunk()
        if on_progress is not None:
            for done in range(start + 1, start + len(chunk) + 1):
                on_progress(done, len(entries))
    _record_back(uow, back, progress, actor=actor, now=now)
    if run.complete and run.region is not None:
        _mark_vanished(uow, run, listings, set(seen), progress, actor=actor, now=now)
    commit_chunk()


def _normalised(run: RawRun, entry: PositionedEntry | EntrySkip) -> DirectoryRecord | EntrySkip:
    if isinstance(entry, EntrySkip):
        return entry
    raw_id = entry.raw.get("id") if isinstance(entry.raw, dict) else None
    return normalise_entry(entry.raw, entry.position, run.enrichment.get(str(raw_id)))


def _staged(
    chunk: Sequence[tuple[PositionedEntry | EntrySkip, DirectoryRecord | EntrySkip]],
    import_chunk: Callable[[], None],
    staging: TherapistStaging,
    chunks: Chunks,
    listings: dict[str, Listing],
    progress: _Progress,
    seen: dict[str, tuple[str, str]],
    back: list[Listing],
) -> bool:
    """Import the chunk staged (one read of what its entries may match, one statement per
    table); False, with the chunk rolled back and its progress undone, when the database
    refused a value (the chunk then runs entry by entry in savepoints, which skips that entry)."""
    ids: set[uuid.UUID] = set()
    directory_ids: set[str] = set()
    postcodes: set[str] = set()
    for _, record in chunk:
        if isinstance(record, EntrySkip):
            continue
        listing = listings.get(record.directory_id)
        if listing is not None and listing.content_hash == record.content_hash:
            continue  # unchanged: costs nothing
        if listing is not None:
            ids.add(listing.therapist_id)
        directory_ids.add(record.directory_id)
        postcodes.add(str(record.values.get("postcode", "")))
    mark, seen_before, back_before = progress.mark(), dict(seen), len(back)
    try:
        if directory_ids:
            staging.begin_keys(ids=ids, directory_ids=directory_ids, unlisted_postcodes=postcodes)
        import_chunk()
        if directory_ids:
            staging.flush()
    except ConflictError:
        chunks.rollback()
        progress.restore(mark)
        seen.clear()
        seen.update(seen_before)
        del back[back_before:]
        return False
    finally:
        staging.end()
    return True


def _is_erased(suppressed: frozenset[str], record: DirectoryRecord) -> bool:
    if not suppressed:
        return False
    values = record.values
    return is_suppressed(
        suppressed,
        directory_id=record.directory_id,
        first_name=str(values.get("first_name", "")),
        last_name=str(values.get("last_name", "")),
        postcode=str(values.get("postcode", "")),
    )


def _one_entry(
    uow: DirectoryImportUnitOfWork,
    geocoder: Geocoder,
    record: DirectoryRecord,
    position: str,
    listings: dict[str, Listing],
    seen: dict[str, tuple[str, str]],
    back: list[Listing],
    progress: _Progress,
    report_id: uuid.UUID,
    actor: str,
    now: datetime,
) -> None:
    progress.warnings += len(record.warnings)
    digest = record.content_hash
    earlier = seen.get(record.directory_id)
    if earlier is not None:
        if earlier[0] == digest:  # the same entry seen from two overlapping search circles
            progress.counts["repeats"] += 1
            return
        progress.skip(
            EntrySkip(
                SkipReason.DUPLICATE,
                f"directory id {record.directory_id} appears again with different data"
                f" (first at {earlier[1]})",
                position,
                record.directory_id,
                record.display_name,
            )
        )
        return
    seen[record.directory_id] = (digest, position)
    listing = listings.get(record.directory_id)
    if listing is not None and listing.content_hash == digest:
        progress.counts["unchanged"] += 1
        if listing.review_reason is not None:
            back.append(listing)
        return
    try:
        outcome, events, therapist_id = _apply(
            uow, geocoder, record, listing, report_id=report_id, actor=actor, now=now
        )
    except _SkipError as skip:
        progress.skip(
            EntrySkip(skip.reason, skip.message, position, record.directory_id, record.display_name)
        )
        return
    except FieldValidationError as error:
        progress.skip(
            EntrySkip(
                SkipReason.CONFLICT, error.summary(), position, record.directory_id, record.display_name
            )
        )
        return
    except (ConflictError, NotFoundError) as error:
        progress.skip(
            EntrySkip(SkipReason.CONFLICT, error.message, position, record.directory_id, record.display_name)
        )
        return
    progress.counts[outcome] += 1
    progress.event_ids.extend(event.event_id for event in events)
    if listing is not None and listing.review_reason is not None:
        progress.counts["reappeared"] += 1
        progress.item(
            outcome="reappeared",
            position=position,
            directory_id=record.directory_id,
            therapist_id=therapist_id,
            name=record.display_name,
            reason=REASON_BACK,
            message="listed in the directory again; review mark removed",
        )


def _match(
    uow: DirectoryImportUnitOfWork, record: DirectoryRecord, listing: Listing | None
) -> Therapist | None:
    """The stored therapist an entry describes: its listing's, else the same directory id, else
    the same first name + last name + postcode. A stored therapist with another directory id
    is another person; several candidates are refused rather than guessed."""
    if listing is not None:
        current = uow.therapists.get_for_update(listing.therapist_id)
        if current is not None:
            return current
    found = uow.therapists.find_by_directory_id(record.directory_id)
    if found is not None:
        return uow.therapists.get_for_update(found.id)
    values = record.values
    candidates = [
        therapist
        for therapist in uow.therapists.find_by_name(
            first_name=values["first_name"], last_name=values["last_name"], postcode=values["postcode"]
        )
        if therapist.directory_id is None
    ]
    if len(candidates) > 1:
        ids = ", ".join(str(therapist.id) for therapist in candidates)
        raise _SkipError(
            SkipReason.AMBIGUOUS_MATCH,
            f"first name, last name and postcode match {len(candidates)} therapists ({ids})",
        )
    return uow.therapists.get_for_update(candidates[0].id) if candidates else None


def _locate(geocoder: Geocoder, draft: TherapistDraft) -> Location:
    try:
        return geocoder.locate(postcode=draft.postcode, street=draft.street, city=draft.city)
    except DependencyUnavailableError:
        return Location.unknown()  # saved and flagged; the next address change locates it again


def _apply(
    uow: DirectoryImportUnitOfWork,
    geocoder: Geocoder,
    record: DirectoryRecord,
    listing: Listing | None,
    *,
    report_id: uuid.UUID,
    actor: str,
    now: datetime,
) -> tuple[str, list[EventEnvelope], uuid.UUID]:
    with uow:
        current = _match(uow, record, listing)
        draft = validate_as(TherapistDraft, merged_values(current, record), TherapistValidationError)
        from_directory = directory_location(record, draft)
        events: list[EventEnvelope] = []
        if current is None:
            therapist = Therapist.create(
                draft,
                location=from_directory or _locate(geocoder, draft),
                now=now,
                directory_id=record.directory_id,
            )
            uow.therapists.add(therapist)
            _audit(uow, therapist.id, ACTION_NEW, actor, now, before=None, after=therapist.audit_record())
            events.append(_event(uow, therapist, EVENT_NEW, now))
            outcome = "new"
        else:
            if from_directory is not None:
                location = from_directory
            elif current.address_differs(draft) or not current.location.is_known:
                location = _locate(geocoder, draft)
            else:
                location = current.location
            therapist, changed = current.with_fields(draft, location=location, now=now, by_staff=False)
            if current.directory_id is None:
                therapist = therapist.model_copy(
                    update={"directory_id": record.directory_id, "updated_at": now}
                )
                changed.append("directory_id")
            if therapist.location != current.location:
                changed.append("location")
            if changed:
                uow.therapists.update(therapist)
                _audit(
                    uow,
                    therapist.id,
                    ACTION_CHANGED,
                    actor,
                    now,
                    before=field_values(current, changed),
                    after=field_values(therapist, changed),
                )
                events.append(_event(uow, therapist, EVENT_CHANGED, now))
                outcome = "updated"
            else:
                outcome = "unchanged"  # e.g. every changed value belongs to staff
        uow.listings.save(
            Listing(
                directory_id=record.directory_id,
                therapist_id=therapist.id,
                content_hash=record.content_hash,
                postcode=record.values.get("postcode"),
                latitude=record.latitude,
                longitude=record.longitude,
            ),
            provenance=record.provenance,
            import_id=report_id,
            now=now,
        )
        uow.commit()
    return outcome, events, therapist.id


def _audit(
    uow: DirectoryImportUnitOfWork,
    therapist_id: uuid.UUID,
    action: str,
    actor: str,
    now: datetime,
    *,
    before: dict[str, object] | None,
    after: dict[str, object] | None,
    reason: str | None = None,
) -> None:
    uow.audit.add(
        TherapistAuditEntry(
            actor=actor,
            action=action,
            entity_id=therapist_id,
            before=before,
            after=after,
            reason=reason,
            at=now,
        )
    )


def _event(
    uow: DirectoryImportUnitOfWork, therapist: Therapist, event_type: str, now: datetime
) -> EventEnvelope:
    return record_event(
        uow.outbox,
        event_type,
        producer=PRODUCER,
        key=therapist.id,
        payload=therapist.event_payload(),
        now=now,
    )


def _record_back(
    uow: DirectoryImportUnitOfWork, back: Sequence[Listing], progress: _Progress, *, actor: str, now: datetime
) -> None:
    """Unchanged entries that had been marked vanished: the mark goes, in one transaction."""
    if not back:
        return
    with uow:
        uow.listings.mark_review([listing.directory_id for listing in back], reason=None, now=now)
        for listing in back:
            _audit(
                uow,
                listing.therapist_id,
                ACTION_BACK,
                actor,
                now,
                before=None,
                after=None,
                reason=REASON_BACK,
            )
        uow.commit()
    for listing in back:
        progress.counts["reappeared"] += 1
        progress.item(
            outcome="reappeared",
            directory_id=listing.directory_id,
            therapist_id=listing.therapist_id,
            reason=REASON_BACK,
            message="listed in the directory again; review mark removed",
        )


def _mark_vanished(
    uow: DirectoryImportUnitOfWork,
    run: RawRun,
    listings: dict[str, Listing],
    seen: set[str],
    progress: _Progress,
    *,
    actor: str,
    now: datetime,
) -> None:
    """Listings the complete run must have seen but did not: marked for review, never deleted
    (the therapist keeps status, data and history; staff decide)."""
    assert run.region is not None
    gone = [
        listing
        for directory_id, listing in sorted(listings.items())
        if directory_id not in seen
        and listing.review_reason is None
        and in_scope(
            run.region,
            run.points,
            run.radius_km,
            postcode=listing.postcode,
            latitude=listing.latitude,
            longitude=listing.longitude,
        )
    ]
    if not gone:
        return
    with uow:
        uow.listings.mark_review([listing.directory_id for listing in gone], reason=REASON_VANISHED, now=now)
        for listing in gone:
            _audit(
                uow,
                listing.therapist_id,
                ACTION_VANISHED,
                actor,
                now,
                before=None,
                after=None,
                reason=REASON_VANISHED,
            )
        uow.commit()
    for listing in gone:
        progress.counts["vanished"] += 1
        progress.item(
            outcome="vanished",
            directory_id=listing.directory_id,
            therapist_id=listing.therapist_id,
            reason=REASON_VANISHED,
            message=f"missing from the complete run of region {run.region.key};"
            " marked for review, not deleted",
        )


# ---------------------------------------------------------------------------------------------
# Reading reports (GET /api/v2/imports)
# ---------------------------------------------------------------------------------------------


def list_imports(
    reports: ImportReportStore, *, page: int, limit: int
) -> Outcome[tuple[Sequence[ImportReportSummary], int]]:
    """One page of reports, newest first, and how many there are."""
    return Outcome(reports.list(page=page, limit=limit))


def get_import(
    reports: ImportReportStore,
    import_id: uuid.UUID,
    *,
    outcome: ItemOutcome | None = None,
    page: int = 1,
    limit: int = 200,
) -> Outcome[ImportReport]:
    """One report with one page of its items (optionally only those with `outcome`)."""
    report = reports.get(import_id, outcome=outcome, page=page, limit=limit)
    if report is None:
        raise NotFoundError(f"import {import_id} does not exist")
    return Outcome(report)
