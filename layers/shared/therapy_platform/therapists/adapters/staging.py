"""Set-based chunks for the therapist service's bulk writes (the operators' bulk load and the
directory import; platform.unit_of_work.ChunkStage): one query reads every therapist a chunk's
rows may match, the rows run against that in memory, and what they committed is written with
one statement per table (therapists inserted, therapists updated, audit entries, outbox events,
directory listings)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, String, Uuid, and_, any_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import ARRAY

from therapy_platform.platform.sql_bulk import bulk_insert, bulk_update
from therapy_platform.platform.unit_of_work import ChunkStage, SharedTransaction
from therapy_platform.therapists.adapters.store import _from_row, _to_row
from therapy_platform.therapists.adapters.tables import THERAPIST_SCHEMA, therapist_audit_log, therapists
from therapy_platform.therapists.domain.therapist import Therapist, TherapistAuditEntry, TherapistQuery
from therapy_platform.therapists.imports.adapters.tables import directory_listings
from therapy_platform.therapists.imports.domain.listings import Listing


class StagedTherapistRepository:
    """The therapists a chunk may match (read once, locked) plus those its rows staged. Rows
    read are turned into Therapist records only when a row matches them (most never are)."""

    def __init__(self, stage: ChunkStage) -> None:
        self._stage = stage
        self.clear()

    def clear(self) -> None:
        self._read: dict[uuid.UUID, RowMapping] = {}  # as read, until asked for
        self._by_id: dict[uuid.UUID, Therapist] = {}
        self._by_directory_id: dict[str, uuid.UUID] = {}
        self._by_postcode: defaultdict[str, set[uuid.UUID]] = defaultdict(set)
        self.inserted: dict[uuid.UUID, Therapist] = {}
        self.updated: dict[uuid.UUID, Therapist] = {}

    def load(self, rows: Collection[RowMapping]) -> None:
        for row in rows:
            therapist_id = row["id"]
            self._read[therapist_id] = row
            self._by_postcode[row["postcode"]].add(therapist_id)
            if row["directory_id"] is not None:
                self._by_directory_id[row["directory_id"]] = therapist_id

    def _get(self, therapist_id: uuid.UUID) -> Therapist | None:
        found = self._by_id.get(therapist_id)
        if found is None and therapist_id in self._read:
            found = self._by_id[therapist_id] = _from_row(self._read.pop(therapist_id))
        return found

    def _field(self, therapist_id: uuid.UUID, name: str) -> Any:
        row = self._read.get(therapist_id)
        return row[name] if row is not None else getattr(self._by_id[therapist_id], name)

    def _store(self, therapist: Therapist, *, new: bool) -> None:
        before = self._get(therapist.id)
        if before is not None:
            self._by_postcode[before.postcode].discard(before.id)
            if before.directory_id is not None:
                self._by_directory_id.pop(before.directory_id, None)
        self._by_id[therapist.id] = therapist
        self._by_postcode[therapist.postcode].add(therapist.id)
        if therapist.directory_id is not None:
            self._by_directory_id[therapist.directory_id] = therapist.id
        if new or therapist.id in self.inserted:
            self.inserted[therapist.id] = therapist
        else:
            self.updated[therapist.id] = therapist

    def add(self, therapist: Therapist) -> None:
        self._stage.later(lambda: self._store(therapist, new=True))

    def update(self, therapist: Therapist) -> None:
        self._stage.later(lambda: self._store(therapist, new=False))

    def get(self, therapist_id: uuid.UUID) -> Therapist | None:
        return self._get(therapist_id)

    def get_for_update(self, therapist_id: uuid.UUID) -> Therapist | None:
        return self._get(therapist_id)  # read with FOR UPDATE when the chunk began

    def find_by_directory_id(self, directory_id: str) -> Therapist | None:
        found = self._by_directory_id.get(directory_id)
        return None if found is None else self._get(found)

    def _matching(self, postcode: str, **wanted: str) -> list[Therapist]:
        """Therapists at the postcode whose fields equal `wanted`: the practice key exactly,
        names case-folded (like the SQL repository); oldest first."""
        found: list[Therapist] = []
        for therapist_id in self._by_postcode.get(postcode, ()):
            if all(self._equal(therapist_id, name, value) for name, value in wanted.items()):
                therapist = self._get(therapist_id)
                assert therapist is not None
                found.append(therapist)
        return sorted(found, key=lambda therapist: (therapist.created_at, str(therapist.id)))

    def _equal(self, therapist_id: uuid.UUID, name: str, wanted: str) -> bool:
        value = self._field(therapist_id, name)
        if value is None:
            return False
        return bool(value == wanted if name == "practice_key" else value.casefold() == wanted)

    def find_by_contact(self, *, email: str, last_name: str, postcode: str) -> Sequence[Therapist]:
        return self._matching(
            postcode, practice_key=email.strip().lower(), last_name=last_name.strip().casefold()
        )

    def find_by_name(self, *, first_name: str, last_name: str, postcode: str) -> Sequence[Therapist]:
        return self._matching(
            postcode, first_name=first_name.strip().casefold(), last_name=last_name.strip().casefold()
        )

    def list(self, query: TherapistQuery, *, today: date) -> tuple[Sequence[Therapist], int]:
        raise NotImplementedError("a staged chunk does not list")


class StagedTherapistAuditLog:
    def __init__(self, stage: ChunkStage) -> None:
        self._stage = stage
        self.entries: list[TherapistAuditEntry] = []

    def add(self, entry: TherapistAuditEntry) -> None:
        self._stage.later(lambda: self.entries.append(entry))

    def entries_of(self, entity_id: uuid.UUID) -> list[dict[str, Any]]:
        raise NotImplementedError("a staged chunk does not read the audit log")


class StagedListingRepository:
    """Directory listings a chunk saves (the import read every listing before it began)."""

    def __init__(self, stage: ChunkStage) -> None:
        self._stage = stage
        self.saved: dict[str, dict[str, Any]] = {}

    def snapshot(self) -> dict[str, Listing]:
        raise NotImplementedError("the import reads the listings before a chunk is staged")

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

        def keep() -> None:
            earlier = self.saved.get(listing.directory_id)
            if earlier is not None:  # saved twice in one chunk: the first save's origin stays
                values.update(first_import_id=earlier["first_import_id"], created_at=earlier["created_at"])
            self.saved[listing.directory_id] = values

        self._stage.later(keep)

    def mark_review(self, directory_ids: Sequence[str], *, reason: str | None, now: datetime) -> None:
        raise NotImplementedError("review marks are set after the staged chunks")


class TherapistStage(ChunkStage):
    """A chunk of therapist rows, staged (see the module docstring). `begin` takes what the
    rows may match by: therapist ids, directory ids, practice keys (normalised emails) and
    postcodes where a therapist without a directory id is looked for by name (an import's
    match); every therapist with any of them is read and locked. (So `find_by_name` of a staged
    chunk answers only therapists without a directory id, the only ones an import matches by name.)"""

    def __init__(self, shared: SharedTransaction) -> None:
        super().__init__(shared, THERAPIST_SCHEMA)
        self.therapists = StagedTherapistRepository(self)
        self.audit = StagedTherapistAuditLog(self)
        self.listings = StagedListingRepository(self)

    def _clear(self) -> None:
        super()._clear()
        self.therapists.clear()
        self.audit.entries = []
        self.listings.saved = {}

    def begin_keys(
        self,
        *,
        ids: Collection[uuid.UUID] = (),
        directory_ids: Collection[str] = (),
        practice_keys: Collection[str] = (),
        unlisted_postcodes: Collection[str] = (),
    ) -> None:
        connection = self._start()
        conditions: list[ColumnElement[bool]] = []
        table = therapists.c
        for column, values, kind in (
            (table.id, ids, Uuid()),
            (table.directory_id, directory_ids, String()),
            (table.practice_key, practice_keys, String()),
            (table.postcode, unlisted_postcodes, String()),
        ):
            if values:
                condition = column == any_(bindparam(None, list(set(values)), type_=ARRAY(kind)))
                if column is table.postcode:
                    condition = and_(condition, table.directory_id.is_(None))
                conditions.append(condition)
        if not conditions:
            return
        rows = connection.execute(select(therapists).where(or_(*conditions)).with_for_update()).mappings()
        self.therapists.load(rows.all())

    def _write(self, connection: Connection) -> None:
        inserted = [_to_row(therapist) for therapist in self.therapists.inserted.values()]
        bulk_insert(connection, therapists, inserted)
        updated = [_to_row(therapist) for therapist in self.therapists.updated.values()]
        for row in updated:
            del row["created_at"]
        bulk_update(connection, therapists, updated, key="id")
        bulk_insert(
            connection, therapist_audit_log, [entry.model_dump(mode="json") for entry in self.audit.entries]
        )
        bulk_insert(
            connection,
            directory_listings,
            list(self.listings.saved.values()),
            on_conflict="directory_id",
            keep=("first_import_id", "created_at"),
        )
        self._write_events(connection)
