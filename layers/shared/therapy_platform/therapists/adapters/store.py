"""Therapist persistence in the `therapist_service` schema."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, and_, func, or_, select, true
from sqlalchemy.sql.elements import UnaryExpression

from therapy_platform.platform.geography.locations import Location
from therapy_platform.platform.sql_records import json_records
from therapy_platform.platform.unit_of_work import ChunkStage, SqlUnitOfWork
from therapy_platform.therapists.adapters.erasure import SqlTherapistErasures
from therapy_platform.therapists.adapters.tables import THERAPIST_SCHEMA, therapist_audit_log, therapists
from therapy_platform.therapists.domain.therapist import (
    Therapist,
    TherapistAuditEntry,
    TherapistQuery,
    search_text,
)

_LOCATION_COLUMNS = ("latitude", "longitude", "location_precision")


def _to_row(therapist: Therapist) -> dict[str, Any]:
    values = therapist.model_dump(mode="json", exclude={"location", "id", "created_at", "updated_at"})
    location = therapist.location
    return {
        **values,
        "id": therapist.id,
        "next_contact_allowed_on": therapist.next_contact_allowed_on,
        "contact_opt_out_at": therapist.contact_opt_out_at,
        "latitude": location.latitude,
        "longitude": location.longitude,
        "location_precision": str(location.precision),
        "search_text": search_text(
            therapist.first_name, therapist.last_name, therapist.city, therapist.email
        ),
        "created_at": therapist.created_at,
        "updated_at": therapist.updated_at,
    }


def _from_row(row: RowMapping) -> Therapist:
    values = {key: value for key, value in row.items() if key not in (*_LOCATION_COLUMNS, "search_text")}
    values["location"] = Location(
        latitude=row["latitude"], longitude=row["longitude"], precision=row["location_precision"]
    )
    return Therapist.model_validate(values)


def _filters(query: TherapistQuery, today: date) -> list[ColumnElement[bool]]:
    table = therapists.c
    conditions: list[ColumnElement[bool]] = []
    if query.status is not None:
        conditions.append(table.status == str(query.status))
    if query.postcode_prefix is not None:
        conditions.append(table.postcode.startswith(query.postcode_prefix, autoescape=True))
    if query.procedure is not None:
        conditions.append(table.procedures.contains([str(query.procedure)]))
    if query.language is not None:
        conditions.append(table.languages.contains([query.language]))
    if query.offers_group_therapy is not None:
        conditions.append(table.offers_group_therapy.is_(query.offers_group_therapy))
    if query.potentially_available is not None:
        conditions.append(table.potentially_available.is_(query.potentially_available))
    if query.in_cooling_period is True:
        conditions.append(table.next_contact_allowed_on > today)
    elif query.in_cooling_period is False:
        conditions.append(
            or_(table.next_contact_allowed_on.is_(None), table.next_contact_allowed_on <= today)
        )
    if query.text is not None:
        conditions.append(table.search_text.contains(query.text, autoescape=True))
    return conditions


def _order(sort: str) -> list[UnaryExpression[Any]]:
    column = therapists.c[sort.lstrip("-")]
    descending = sort.startswith("-")
    primary = column.desc().nulls_last() if descending else column.asc().nulls_last()
    # The id breaks ties, so pages never overlap or skip rows.
    return [primary, therapists.c.id.desc() if descending else therapists.c.id.asc()]


class SqlTherapistRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, therapist: Therapist) -> None:
        self._connection.execute(therapists.insert().values(**_to_row(therapist)))

    def get(self, therapist_id: uuid.UUID) -> Therapist | None:
        row = (
            self._connection.execute(select(therapists).where(therapists.c.id == therapist_id))
            .mappings()
            .first()
        )
        return _from_row(row) if row else None

    def get_for_update(self, therapist_id: uuid.UUID) -> Therapist | None:
        row = (
            self._connection.execute(
                select(therapists).where(therapists.c.id == therapist_id).with_for_update()
            )
            .mappings()
            .first()
        )
        return _from_row(row) if row else None

    def update(self, therapist: Therapist) -> None:
        values = _to_row(therapist)
        del values["id"], values["created_at"]
        self._connection.execute(therapists.update().where(therapists.c.id == therapist.id).values(**values))

    def list(self, query: TherapistQuery, *, today: date) -> tuple[Sequence[Therapist], int]:
        where = and_(true(), *_filters(query, today))
        total = self._connection.execute(
            select(func.count()).select_from(therapists).where(where)
        ).scalar_one()
        rows = self._connection.execute(
            select(therapists)
            .where(where)
            .order_by(*_order(query.sort))
            .limit(query.limit)
            .offset(query.offset)
        ).mappings()
        return [_from_row(row) for row in rows], int(total)

    def find_by_directory_id(self, directory_id: str) -> Therapist | None:
        row = (
            self._connection.execute(select(therapists).where(therapists.c.directory_id == directory_id))
            .mappings()
            .first()
        )
        return _from_row(row) if row else None

    def find_by_contact(self, *, email: str, last_name: str, postcode: str) -> Sequence[Therapist]:
        # The index narrows by practice and postcode; names compare case-folded in Python so the
        # match does not depend on the database's locale (Ö vs ö).
        rows = self._connection.execute(
            select(therapists)
            .where(therapists.c.practice_key == email.strip().lower(), therapists.c.postcode == postcode)
            .order_by(therapists.c.created_at, therapists.c.id)
        ).mappings()
        wanted = last_name.strip().casefold()
        return [therapist for therapist in map(_from_row, rows) if therapist.last_name.casefold() == wanted]

    def find_by_name(self, *, first_name: str, last_name: str, postcode: str) -> Sequence[Therapist]:
        # Few therapists share a postcode (the postcode index narrows); names compare case-folded
        # in Python, like find_by_contact. Only the names are read first: an import asks this for
        # every new entry, and whole records are built only for the (rare) matches.
        first, last = first_name.strip().casefold(), last_name.strip().casefold()
        names = self._connection.execute(
            select(therapists.c.id, therapists.c.first_name, therapists.c.last_name).where(
                therapists.c.postcode == postcode
            )
        )
        ids = [
            row.id for row in names if row.first_name.casefold() == first and row.last_name.casefold() == last
        ]
        if not ids:
            return []
        rows = self._connection.execute(
            select(therapists)
            .where(therapists.c.id.in_(ids))
            .order_by(therapists.c.created_at, therapists.c.id)
        ).mappings()
        return [_from_row(row) for row in rows]


class SqlTherapistAuditLog:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, entry: TherapistAuditEntry) -> None:
        self._connection.execute(therapist_audit_log.insert().values(**entry.model_dump(mode="json")))

    def entries_of(self, entity_id: uuid.UUID) -> list[dict[str, Any]]:
        return json_records(
            self._connection,
            select(therapist_audit_log)
            .where(therapist_audit_log.c.entity_id == entity_id)
            .order_by(therapist_audit_log.c.id),
        )


class SqlTherapistUnitOfWork(SqlUnitOfWork):
    """The therapist service's transaction: the therapist change, its audit entry and its events."""

    schema = THERAPIST_SCHEMA
    therapists: SqlTherapistRepository
    audit: SqlTherapistAuditLog
    erasures: SqlTherapistErasures

    def _bind(self, connection: Connection) -> None:
        self.therapists = SqlTherapistRepository(connection)
        self.audit = SqlTherapistAuditLog(connection)
        self.erasures = SqlTherapistErasures(connection)

    def _bind_stage(self, stage: ChunkStage) -> None:
        # A TherapistStage (adapters/staging.py): its repositories answer and record the chunk.
        staged: Any = stage
        self.therapists = staged.therapists
        self.audit = staged.audit
