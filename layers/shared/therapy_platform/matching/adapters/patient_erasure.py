"""Erasing one patient from the matching service's own records (`patient.deleted`, GDPR
Art. 17), inside the consumer's transaction (one with the eventId claim, so a redelivery finds
nothing left to change). The read model's tombstone is `profiles.py`; this is the rest:

- the patient's searches: staff notes and the status reason emptied (status, counts, dates stay);
- their exclusions: the free-text reason replaced by `[gelöscht]`;
- their bundle memberships: notes emptied (status, outcome, position stay: the counts hold);
- bundles they were in: the bundle's notes emptied (free text that may name them); in the
  stored response, their entries' notes redacted;
- audit entries of their searches and memberships: values blanked, keys kept (who did what
  when stays), reason emptied; audit entries of those bundles: their members' notes and
  patient summaries redacted;
- outbox payloads naming them: their members' patient summaries, notes and reasons redacted.

Structural: it needs no value of the person, only the ids this service holds
(`contracts/erasure.forget`).
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from sqlalchemy import Connection, String, Table, cast, or_, select, update

from therapy_platform.contracts.erasure import REDACTED, forget
from therapy_platform.matching.adapters.tables import (
    MATCHING_SCHEMA,
    bundle_members,
    bundles,
    matching_audit_log,
    search_exclusions,
    searches,
)
from therapy_platform.platform.idempotency import redact_stored_answers
from therapy_platform.platform.tables import outbox_table

_outbox = outbox_table(MATCHING_SCHEMA)
# What an entry that names the patient loses in stored JSON (payloads, audit values, responses).
PERSONAL_FIELDS: Final = ("patient", "notes", "status_reason", "reason", "outcome_notes")


def _blank(value: Any) -> Any:
    return {key: None for key in value} if isinstance(value, dict) else value


class SqlPatientErasure:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def erase_patient(self, patient_id: uuid.UUID) -> int:
        """Returns how many rows changed."""
        run = self._connection.execute
        search_ids = list(run(select(searches.c.id).where(searches.c.patient_id == patient_id)).scalars())
        members = run(
            select(bundle_members.c.id, bundle_members.c.bundle_id).where(
                bundle_members.c.patient_id == patient_id
            )
        ).all()
        member_ids = [row.id for row in members]
        bundle_ids = sorted({row.bundle_id for row in members})
        ids = [str(patient_id), *map(str, search_ids), *map(str, member_ids)]
        changed = 0
        if search_ids:
            changed += run(
                update(searches).where(searches.c.id.in_(search_ids)).values(notes=None, status_reason=None)
            ).rowcount
            changed += run(
                update(search_exclusions)
                .where(search_exclusions.c.search_id.in_(search_ids), search_exclusions.c.reason != REDACTED)
                .values(reason=REDACTED)
            ).rowcount
        if member_ids:
            changed += run(
                update(bundle_members).where(bundle_members.c.id.in_(member_ids)).values(notes=None)
            ).rowcount
        if bundle_ids:
            changed += run(update(bundles).where(bundles.c.id.in_(bundle_ids)).values(notes=None)).rowcount
            changed += self._forget(bundles, ("response",), bundles.c.id.in_(bundle_ids), ids)
        own = [*search_ids, *member_ids, patient_id]
        a = matching_audit_log.c
        for row in run(select(a.id, a.before, a.after, a.reason).where(a.entity_id.in_(own))).all():
            blanked = {"before": _blank(row.before), "after": _blank(row.after), "reason": None}
            if blanked != {"before": row.before, "after": row.after, "reason": row.reason}:
                run(update(matching_audit_log).where(a.id == row.id).values(**blanked))
                changed += 1
        if bundle_ids:
            changed += self._forget(matching_audit_log, ("before", "after"), a.entity_id.in_(bundle_ids), ids)
            # The bundles' own notes (emptied above) in their audit values and events.
            bundle_keys = [str(i) for i in bundle_ids]
            in_bundles = a.entity_id.in_(bundle_ids)
            changed += self._forget(
                matching_audit_log, ("before", "after"), in_bundles, bundle_keys, ("notes",)
            )
        mentioned = or_(*[cast(_outbox.c.envelope, String).contains(i) for i in ids])
        changed += self._forget(_outbox, ("envelope",), mentioned, ids)
        changed += redact_stored_answers(self._connection, MATCHING_SCHEMA, ids)
        if bundle_ids:
            changed += self._forget(_outbox, ("envelope",), mentioned, bundle_keys, ("notes",))
        return int(changed)

    def _forget(
        self,
        table: Table,
        names: tuple[str, ...],
        where: Any,
        ids: list[str],
        fields: tuple[str, ...] = PERSONAL_FIELDS,
    ) -> int:
        key = next(iter(table.primary_key.columns))
        columns = [table.c[name] for name in names]
        changed = 0
        for row in self._connection.execute(select(key, *columns).where(where)).mappings().all():
            values = {name: forget(row[name], ids, fields) for name in names if row[name] is not None}
            values = {name: value for name, value in values.items() if value != row[name]}
            if values:
                self._connection.execute(update(table).where(key == row[key.name]).values(**values))
                changed += 1
        return changed
