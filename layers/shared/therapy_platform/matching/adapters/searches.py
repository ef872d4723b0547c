"""Patient searches in PostgreSQL: the `searches` row and its `search_exclusions`.

`save` writes only what changed since the search was loaded (columns and exclusions), so a
change never overwrites another transaction's work on fields it did not touch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from therapy_platform.matching.adapters.tables import search_exclusions, searches
from therapy_platform.matching.domain.models import SearchStatus
from therapy_platform.matching.domain.search import Search
from therapy_platform.matching.domain.searches import UNFINISHED, Exclusion
from therapy_platform.platform.errors import ConflictError

_COLUMNS: Final = (
    "patient_id",
    "status",
    "created_at",
    "updated_at",
    "total_requested_contacts",
    "placed_therapist_id",
    "placed_at",
    "status_reason",
    "notes",
)


def search_columns(search: Search) -> dict[str, Any]:
    return {
        "patient_id": search.patient_id,
        "status": search.status.value,
        "created_at": search.created_at,
        "updated_at": search.updated_at,
        "total_requested_contacts": search.total_requested_contacts,
        "placed_therapist_id": search.placed_therapist_id,
        "placed_at": search.placed_at,
        "status_reason": search.status_reason,
        "notes": search.notes,
    }


def search_from_row(row: Mapping[Any, Any], exclusions: list[Exclusion]) -> Search:
    return Search(
        id=row["id"],
        patient_id=row["patient_id"],
        status=SearchStatus(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        total_requested_contacts=row["total_requested_contacts"],
        placed_therapist_id=row["placed_therapist_id"],
        placed_at=row["placed_at"],
        status_reason=row["status_reason"],
        notes=row["notes"],
        exclusions={e.therapist_id: e for e in exclusions},
    )


def exclusion_from_row(row: Mapping[Any, Any]) -> Exclusion:
    return Exclusion(
        therapist_id=row["therapist_id"],
        reason=row["reason"],
        excluded_at=row["excluded_at"],
        excluded_by=row["excluded_by"],
    )


class SqlSearchRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        # What each search looked like when loaded: save() writes the difference.
        self._loaded: dict[uuid.UUID, tuple[dict[str, Any], frozenset[uuid.UUID]]] = {}

    def _remember(self, search: Search) -> Search:
        self._loaded[search.id] = (search_columns(search), frozenset(search.exclusions))
        return search

    def add(self, search: Search) -> None:
        try:
            with self._connection.begin_nested():
                self._connection.execute(insert(searches).values(id=search.id, **search_columns(search)))
        except IntegrityError as error:  # a concurrent POST for the same patient won the race
            raise ConflictError(
                f"patient {search.patient_id} already has an unfinished search",
                details={"patient_id": str(search.patient_id)},
            ) from error
        self._write_exclusions(search.id, list(search.exclusions.values()))
        self._remember(search)

    def _load(self, condition: Any, *, for_update: bool) -> Search | None:
        statement = select(searches).where(condition)
        if for_update:
            statement = statement.with_for_update()
        row = self._connection.execute(statement).mappings().first()
        if row is None:
            return None
        exclusions = self._connection.execute(
            select(search_exclusions).where(search_exclusions.c.search_id == row["id"])
        ).mappings()
        return self._remember(search_from_row(row, [exclusion_from_row(e) for e in exclusions]))

    def get(self, search_id: uuid.UUID, *, for_update: bool = False) -> Search | None:
        return self._load(searches.c.id == search_id, for_update=for_update)

    def unfinished_of(self, patient_id: uuid.UUID) -> Search | None:
        return self._load(
            (searches.c.patient_id == patient_id) & searches.c.status.in_([s.value for s in UNFINISHED]),
            for_update=False,
        )

    def save(self, search: Search) -> None:
        columns = search_columns(search)
        before, excluded_before = self._loaded.get(search.id, ({}, frozenset()))
        changed = {name: value for name, value in columns.items() if before.get(name, object()) != value}
        if changed:
            try:
                with self._connection.begin_nested():
                    self._connection.execute(
                        update(searches).where(searches.c.id == search.id).values(**changed)
                    )
            except IntegrityError as error:  # reactivating while the patient has another unfinished search
                raise ConflictError(
                    "the patient already has another unfinished search; finish that one first",
                    details={"search_id": str(search.id)},
                ) from error
        lifted = excluded_before - search.exclusions.keys()
        if lifted:
            self._connection.execute(
                delete(search_exclusions).where(
                    search_exclusions.c.search_id == search.id,
                    search_exclusions.c.therapist_id.in_(list(lifted)),
                )
            )
        self._write_exclusions(
            search.id, [e for t, e in search.exclusions.items() if t not in excluded_before]
        )
        self._remember(search)

    def _write_exclusions(self, search_id: uuid.UUID, exclusions: list[Exclusion]) -> None:
        for exclusion in exclusions:
            self.add_exclusion(search_id, exclusion)

    def add_exclusion(self, search_id: uuid.UUID, exclusion: Exclusion) -> bool:
        statement = (
            pg_insert(search_exclusions)
            .values(search_id=search_id, **exclusion.model_dump())
            .on_conflict_do_nothing()
            .returning(search_exclusions.c.search_id)
        )
        return self._connection.execute(statement).first() is not None
