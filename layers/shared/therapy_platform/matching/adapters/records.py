"""The matching service's bookkeeping in PostgreSQL: rounds, cooling periods, staff alerts
and the audit log (written in bulk: a national round audits 20,000 bundles)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields
from datetime import date, datetime

from sqlalchemy import Connection, func, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from therapy_platform.matching.adapters.tables import (
    matching_audit_log,
    rounds,
    staff_alerts,
    therapist_cooling,
)
from therapy_platform.matching.domain.bundles import StaffAlert
from therapy_platform.matching.domain.records import AuditEntry, RoundRecord
from therapy_platform.platform.sql_bulk import bulk_insert

_AUDIT_FIELDS = tuple(f.name for f in fields(AuditEntry))
_ROUND_FIELDS = tuple(f.name for f in fields(RoundRecord))


class SqlRoundRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, round_record: RoundRecord) -> None:
        self._connection.execute(
            insert(rounds).values({name: getattr(round_record, name) for name in _ROUND_FIELDS})
        )

    def finish(self, round_record: RoundRecord) -> None:
        self._connection.execute(
            update(rounds)
            .where(rounds.c.id == round_record.id)
            .values(finished_at=round_record.finished_at, summary=round_record.summary)
        )


class SqlCoolingRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def extend(self, therapist_id: uuid.UUID, until: date, *, at: datetime, bundle_id: uuid.UUID) -> None:
        statement = pg_insert(therapist_cooling).values(
            therapist_id=therapist_id, next_contact_allowed_on=until, set_at=at, bundle_id=bundle_id
        )
        self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=[therapist_cooling.c.therapist_id],
                set_={
                    "next_contact_allowed_on": func.greatest(
                        therapist_cooling.c.next_contact_allowed_on,
                        statement.excluded.next_contact_allowed_on,
                    ),
                    "set_at": statement.excluded.set_at,
                    "bundle_id": statement.excluded.bundle_id,
                },
            )
        )


class SqlAlertRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, alert: StaffAlert) -> None:
        self._connection.execute(insert(staff_alerts).values(**alert.model_dump()))


class SqlAuditLog:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def record(self, entries: Sequence[AuditEntry]) -> None:
        # Shallow rows: the before/after payloads are large and written as they are.
        rows = [{name: getattr(entry, name) for name in _AUDIT_FIELDS} for entry in entries]
        bulk_insert(self._connection, matching_audit_log, rows)
