"""Therapist erasure in the `therapist_service` schema (GDPR Art. 17): the SQL that deletes one
therapist's personal data, and the `erased_therapists` table that keeps them erased (ids and
SHA-256 suppression keys only; therapists/domain/erasure.py). The DDL lives in
infra/migrations/versions/0017_terasure.py."""

from __future__ import annotations

import uuid

from sqlalchemy import Column, Connection, DateTime, String, Table, Uuid, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from therapy_platform.platform.tables import idempotency_keys_table, metadata, outbox_table
from therapy_platform.therapists.adapters.tables import THERAPIST_SCHEMA, therapist_audit_log, therapists
from therapy_platform.therapists.domain.erasure import TherapistErasure
from therapy_platform.therapists.imports.adapters.tables import directory_import_items, directory_listings

erased_therapists = Table(
    "erased_therapists",
    metadata,
    Column("therapist_id", Uuid, primary_key=True),
    Column("suppression_keys", ARRAY(String(64)), nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=False),
    schema=THERAPIST_SCHEMA,
)


class SqlTherapistErasures:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, therapist_id: uuid.UUID) -> TherapistErasure | None:
        row = (
            self._connection.execute(
                select(erased_therapists).where(erased_therapists.c.therapist_id == therapist_id)
            )
            .mappings()
            .first()
        )
        return TherapistErasure.model_validate(dict(row)) if row else None

    def suppressed_keys(self) -> frozenset[str]:
        keys = self._connection.execute(select(func.unnest(erased_therapists.c.suppression_keys))).scalars()
        return frozenset(keys)

    def listed_directory_ids(self, therapist_id: uuid.UUID) -> set[str]:
        return set(
            self._connection.execute(
                select(directory_listings.c.directory_id).where(
                    directory_listings.c.therapist_id == therapist_id
                )
            ).scalars()
        )

    def erase_personal_data(self, therapist_id: uuid.UUID) -> None:
        ident = str(therapist_id)
        directory_ids = self.listed_directory_ids(therapist_id)
        current = self._connection.execute(
            select(therapists.c.directory_id).where(therapists.c.id == therapist_id)
        ).scalar_one_or_none()
        if current:
            directory_ids.add(current)
        items = directory_import_items.c
        self._connection.execute(
            delete(directory_import_items).where(
                or_(items.therapist_id == therapist_id, items.directory_id.in_(directory_ids))
            )
        )
        self._connection.execute(
            delete(directory_listings).where(directory_listings.c.therapist_id == therapist_id)
        )
        self._connection.execute(
            update(therapist_audit_log)
            .where(therapist_audit_log.c.entity_id == therapist_id)
            .values(before=None, after=None, reason=None)
        )
        outbox = outbox_table(THERAPIST_SCHEMA)
        self._connection.execute(delete(outbox).where(outbox.c.aggregate_key == ident))
        # A stored answer to a repeated create (24 h) holds the whole record.
        keys = idempotency_keys_table(THERAPIST_SCHEMA)
        self._connection.execute(
            delete(keys).where(or_(keys.c.location.contains(ident), keys.c.body.contains(ident)))
        )
        self._connection.execute(delete(therapists).where(therapists.c.id == therapist_id))

    def add(self, erasure: TherapistErasure) -> None:
        self._connection.execute(
            erased_therapists.insert().values(
                therapist_id=erasure.therapist_id,
                suppression_keys=sorted(erasure.suppression_keys),
                erased_at=erasure.erased_at,
            )
        )
