"""An erased therapist in the `matching_service` schema (`therapist.deleted`, GDPR Art. 17;
rules in matching/domain/therapist_erasure.py): finding their open bundles, and scrubbing what
the service holds about them. Every statement is idempotent.

- `bundle.sent` outbox rows of their bundles (they carry the addressee's name and contact data)
  are deleted; their values are first collected, with the bundles' practice keys (emails), and
  replaced by `[erased]` in the remaining outbox payloads, the audit log and staff alerts;
- bundles: the practice key becomes `therapist:<therapist id>`;
- the cooling period row is deleted (nobody left to protect);
- the read model row is tombstoned by the consumer's generic `*.deleted` handling.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, Text, cast, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from therapy_platform.matching.adapters.tables import (
    MATCHING_SCHEMA,
    bundles,
    matching_audit_log,
    staff_alerts,
    therapist_cooling,
)
from therapy_platform.matching.domain.bundles import OPEN_BUNDLE_STATUSES
from therapy_platform.matching.domain.therapist_erasure import (
    ERASED_MARK,
    erased_practice_key,
    identifying_values,
)
from therapy_platform.platform.sql_redaction import mentions as _mentions
from therapy_platform.platform.sql_redaction import redacted
from therapy_platform.platform.tables import outbox_table


def _redacted(column: Any, values: list[str]) -> ColumnElement[Any]:
    return redacted(column, values, ERASED_MARK)


class SqlTherapistErasure:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def open_bundle_ids(self, therapist_id: uuid.UUID) -> list[uuid.UUID]:
        return list(
            self._connection.execute(
                select(bundles.c.id)
                .where(
                    bundles.c.therapist_id == therapist_id,
                    bundles.c.status.in_([status.value for status in OPEN_BUNDLE_STATUSES]),
                )
                .order_by(bundles.c.number)
            ).scalars()
        )

    def scrub(self, therapist_id: uuid.UUID) -> int:
        run = self._connection.execute
        rows = run(
            select(bundles.c.id, bundles.c.practice_key).where(bundles.c.therapist_id == therapist_id)
        ).all()
        bundle_keys = [str(row.id) for row in rows]
        outbox = outbox_table(MATCHING_SCHEMA)
        sent = (
            [(outbox.c.event_type == "bundle.sent") & outbox.c.aggregate_key.in_(bundle_keys)]
            if bundle_keys
            else []
        )
        contacts = (
            list(run(select(outbox.c.envelope["payload"]["therapist"]).where(*sent)).scalars())
            if sent
            else []
        )
        values = identifying_values(contacts, [row.practice_key for row in rows])
        if sent:
            run(outbox.delete().where(*sent))
        if values:
            envelope_text = cast(outbox.c.envelope, Text)
            run(
                update(outbox)
                .where(_mentions(envelope_text, values))
                .values(envelope=cast(_redacted(envelope_text, values), JSONB))
            )
            audit = matching_audit_log.c
            for column in ("before", "after"):
                text = cast(audit[column], Text)
                run(
                    update(matching_audit_log)
                    .where(_mentions(text, values))
                    .values({column: cast(_redacted(text, values), JSONB)})
                )
            run(
                update(matching_audit_log)
                .where(_mentions(audit.reason, values))
                .values(reason=_redacted(audit.reason, values))
            )
            run(
                update(staff_alerts)
                .where(_mentions(staff_alerts.c.message, values))
                .values(message=_redacted(staff_alerts.c.message, values))
            )
        scrubbed = run(
            update(bundles)
            .where(bundles.c.therapist_id == therapist_id)
            .values(practice_key=erased_practice_key(therapist_id))
        ).rowcount
        run(therapist_cooling.delete().where(therapist_cooling.c.therapist_id == therapist_id))
        return int(scrubbed)
