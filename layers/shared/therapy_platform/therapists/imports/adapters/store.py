"""The therapist service's side of directory imports in PostgreSQL: listings (content hashes,
provenance, review marks), the import's unit of work (alone, or joining a shared transaction that
commits a chunk at a time: `chunked_import`), and the import reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from therapy_platform.platform.database import transaction
from therapy_platform.platform.errors import ConflictError, DependencyUnavailableError
from therapy_platform.platform.ports import AfterCommit
from therapy_platform.platform.unit_of_work import ChunkStage, SharedTransaction, refusal
from therapy_platform.therapists.adapters.staging import TherapistStage
from therapy_platform.therapists.adapters.store import SqlTherapistUnitOfWork
from therapy_platform.therapists.imports.adapters.tables import (
    directory_import_items,
    directory_imports,
    directory_listings,
)
from therapy_platform.therapists.imports.domain.listings import Listing
from therapy_platform.therapists.imports.domain.reports import (
    ImportCounts,
    ImportItem,
    ImportReport,
    ImportReportSummary,
    ItemOutcome,
)


class SqlDirectoryListingRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def snapshot(self) -> dict[str, Listing]:
        table = directory_listings.c
        rows = self._connection.execute(
            select(
                table.directory_id,
                table.therapist_id,
                table.content_hash,
                table.postcode,
                table.latitude,
                table.longitude,
                table.review_reason,
                table.review_since,
            )
        )
        return {row.directory_id: Listing(*row) for row in rows}

    def save(
        self, listing: Listing, *, provenance: Mapping[str, str], import_id: uuid.UUID, now: datetime
    ) -> None:
        values: dict[str, Any] = {
            "directory_id": listing.directory_id,
            "therapist_id": listing.therapist_id,
            "content_hash": listing.content_hash,
            "postcode": listing.postcode,
            "latitude": listing.latitude,
            "longitude": listing.longitude,
            "provenance": dict(provenance),
            "review_reason": listing.review_reason,
            "review_since": listing.review_since,
            "first_import_id": import_id,
            "last_import_id": import_id,
            "created_at": now,
            "updated_at": now,
        }
        statement = insert(directory_listings).values(**values)
        kept = {"directory_id", "first_import_id", "created_at"}
        self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=[directory_listings.c.directory_id],
                set_={name: statement.excluded[name] for name in values if name not in kept},
            )
        )

    def mark_review(self, directory_ids: Sequence[str], *, reason: str | None, now: datetime) -> None:
        if not directory_ids:
            return
        self._connection.execute(
            directory_listings.update()
            .where(directory_listings.c.directory_id.in_(list(directory_ids)))
            .values(review_reason=reason, review_since=now if reason else None, updated_at=now)
        )


class SqlDirectoryImportUnitOfWork(SqlTherapistUnitOfWork):
    """The therapist unit of work plus directory listings. A statement the database refuses
    (a constraint) becomes ConflictError, so one bad entry is skipped and the import goes on;
    a lost connection becomes DependencyUnavailableError, which stops it."""

    listings: SqlDirectoryListingRepository

    def _bind(self, connection: Connection) -> None:
        super()._bind(connection)
        self.listings = SqlDirectoryListingRepository(connection)

    def _bind_stage(self, stage: ChunkStage) -> None:
        super()._bind_stage(stage)
        staged: Any = stage
        self.listings = staged.listings

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        if isinstance(exc, IntegrityError):
            raise ConflictError(refusal(exc)) from exc
        if isinstance(exc, (OperationalError, InterfaceError)):
            raise DependencyUnavailableError("the database connection was lost") from exc


@dataclass(frozen=True)
class ChunkedImport:
    """A unit of work joining one shared transaction that commits a chunk at a time, and the
    chunk stage its units write to (imports/use_cases.import_directory_file)."""

    unit_of_work: SqlDirectoryImportUnitOfWork
    chunks: SharedTransaction
    staging: TherapistStage


@contextmanager
def chunked_import(engine: Engine, publish: AfterCommit | None = None) -> Iterator[ChunkedImport]:
    """Set-based chunks for the import function and the operators' command alike. `publish`:
    the after-commit hook, run once per chunk (None: the scheduled relay publishes)."""
    shared = SharedTransaction(engine)
    try:
        unit_of_work = SqlDirectoryImportUnitOfWork(engine, publish=publish, shared=shared)
        yield ChunkedImport(unit_of_work, shared, TherapistStage(shared))
    finally:
        shared.close()


def _summary(row: Any) -> ImportReportSummary:
    return ImportReportSummary(
        id=row.id,
        source=row.source,
        source_version=row.source_version,
        region=row.region,
        complete_source=row.complete_source,
        actor=row.actor,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=ImportCounts.model_validate(row.counts),
        skip_reasons=row.skip_reasons,
        warnings=row.warnings,
        error=row.error,
    )


def _report_values(report: ImportReportSummary) -> dict[str, Any]:
    return {
        "source": report.source,
        "source_version": report.source_version,
        "region": report.region,
        "complete_source": report.complete_source,
        "actor": report.actor,
        "status": str(report.status),
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "counts": report.counts.model_dump(),
        "skip_reasons": report.skip_reasons,
        "warnings": report.warnings,
        "error": report.error,
    }


class SqlImportReportStore:
    """Import reports, each written in its own short transaction (start, finish)."""

    ITEM_BATCH = 1000

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find_finished(self, source: str, version: str) -> ImportReportSummary | None:
        with transaction(self._engine) as connection:
            row = connection.execute(
                select(directory_imports)
                .where(
                    directory_imports.c.source == source,
                    directory_imports.c.source_version == version,
                    directory_imports.c.status == "finished",
                )
                .order_by(directory_imports.c.started_at.desc())
                .limit(1)
            ).first()
        return _summary(row) if row else None

    def start(self, report: ImportReportSummary) -> None:
        with transaction(self._engine) as connection:
            connection.execute(directory_imports.insert().values(id=report.id, **_report_values(report)))

    def finish(self, report: ImportReportSummary, items: Sequence[ImportItem]) -> None:
        with transaction(self._engine) as connection:
            connection.execute(
                directory_imports.update()
                .where(directory_imports.c.id == report.id)
                .values(**_report_values(report))
            )
            rows = [{"import_id": report.id, **item.model_dump()} for item in items]
            for start in range(0, len(rows), self.ITEM_BATCH):
                connection.execute(directory_import_items.insert(), rows[start : start + self.ITEM_BATCH])

    def list(self, *, page: int, limit: int) -> tuple[Sequence[ImportReportSummary], int]:
        table = directory_imports
        with transaction(self._engine) as connection:
            total = connection.execute(select(func.count()).select_from(table)).scalar_one()
            rows = connection.execute(
                select(table)
                .order_by(table.c.started_at.desc(), table.c.id.desc())
                .limit(limit)
                .offset((page - 1) * limit)
            ).all()
        return [_summary(row) for row in rows], int(total)

    def get(
        self, import_id: uuid.UUID, *, outcome: ItemOutcome | None, page: int, limit: int
    ) -> ImportReport | None:
        items = directory_import_items
        with transaction(self._engine) as connection:
            row = connection.execute(
                select(directory_imports).where(directory_imports.c.id == import_id)
            ).first()
            if row is None:
                return None
            where = [items.c.import_id == import_id]
            if outcome is not None:
                where.append(items.c.outcome == outcome)
            total = connection.execute(select(func.count()).select_from(items).where(*where)).scalar_one()
            item_rows = connection.execute(
                select(items).where(*where).order_by(items.c.seq).limit(limit).offset((page - 1) * limit)
            ).mappings()
            found = [
                ImportItem.model_validate({key: value for key, value in item.items() if key != "import_id"})
                for item in item_rows
            ]
        return ImportReport(**_summary(row).model_dump(), items=found, items_total=int(total))
