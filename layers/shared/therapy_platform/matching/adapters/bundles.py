"""Bundles and their members in PostgreSQL.

New drafts go in as column arrays (`platform/sql_bulk.py`: a national round writes 20,000
bundles and 100,000 members in two statements). `save` writes only what changed since a
bundle was loaded: the bundle row and the members whose columns differ, as the targeted
updates of a response or a withdrawal always were.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, select, update

from therapy_platform.matching.adapters.tables import bundle_members, bundles
from therapy_platform.matching.domain.bundle import BundleMemberRecord, BundleRecord
from therapy_platform.matching.domain.bundles import (
    OPEN_BUNDLE_STATUSES,
    BundleKind,
    BundleStatus,
    Channel,
    MemberStatus,
)
from therapy_platform.matching.domain.models import SoftFilter
from therapy_platform.matching.domain.responses import MemberOutcome, ResponseType
from therapy_platform.platform.sql_bulk import bulk_insert

OPEN: Final = [s.value for s in OPEN_BUNDLE_STATUSES]


def _value(value: Any) -> Any:
    return getattr(value, "value", value)


def bundle_columns(bundle: BundleRecord) -> dict[str, Any]:
    return {
        "therapist_id": bundle.therapist_id,
        "practice_key": bundle.practice_key,
        "kind": bundle.kind.value,
        "status": bundle.status.value,
        "round_id": bundle.round_id,
        "created_at": bundle.created_at,
        "created_by": bundle.created_by,
        "updated_at": bundle.updated_at,
        "sent_at": bundle.sent_at,
        "channel": _value(bundle.channel),
        "reminder_sent_at": bundle.reminder_sent_at,
        "answered_at": bundle.answered_at,
        "expired_at": bundle.expired_at,
        "discarded_at": bundle.discarded_at,
        "discard_reason": bundle.discard_reason,
        "response_type": _value(bundle.response_type),
        "accepted_count": bundle.accepted_count,
        "rejected_count": bundle.rejected_count,
        "no_response_count": bundle.no_response_count,
        "response": bundle.response,
        "applied_filters": [f.value for f in bundle.applied_filters],
        "skipped_filters": [f.value for f in bundle.skipped_filters],
        "notes": bundle.notes,
    }


def member_columns(member: BundleMemberRecord) -> dict[str, Any]:
    return {
        "search_id": member.search_id,
        "patient_id": member.patient_id,
        "position": member.position,
        "status": member.status.value,
        "outcome": _value(member.outcome),
        "responded_at": member.responded_at,
        "notes": member.notes,
    }


def _optional(kind: type[Any], value: Any) -> Any:
    return None if value is None else kind(value)


def member_from_row(row: Mapping[Any, Any]) -> BundleMemberRecord:
    return BundleMemberRecord(
        id=row["id"],
        search_id=row["search_id"],
        patient_id=row["patient_id"],
        position=row["position"],
        status=MemberStatus(row["status"]),
        outcome=_optional(MemberOutcome, row["outcome"]),
        responded_at=row["responded_at"],
        notes=row["notes"],
    )


def bundle_from_row(row: Mapping[Any, Any], members: Sequence[Mapping[Any, Any]]) -> BundleRecord:
    return BundleRecord(
        id=row["id"],
        number=int(row["number"]),
        therapist_id=row["therapist_id"],
        practice_key=row["practice_key"],
        kind=BundleKind(row["kind"]),
        status=BundleStatus(row["status"]),
        round_id=row["round_id"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        updated_at=row["updated_at"],
        sent_at=row["sent_at"],
        channel=_optional(Channel, row["channel"]),
        reminder_sent_at=row["reminder_sent_at"],
        answered_at=row["answered_at"],
        expired_at=row["expired_at"],
        discarded_at=row["discarded_at"],
        discard_reason=row["discard_reason"],
        response_type=_optional(ResponseType, row["response_type"]),
        accepted_count=row["accepted_count"],
        rejected_count=row["rejected_count"],
        no_response_count=row["no_response_count"],
        response=row["response"],
        applied_filters=[SoftFilter(f) for f in row["applied_filters"] or ()],
        skipped_filters=[SoftFilter(f) for f in row["skipped_filters"] or ()],
        notes=row["notes"],
        members=[member_from_row(m) for m in members],
    )


def load_bundles(connection: Connection, rows: Sequence[Mapping[Any, Any]]) -> list[BundleRecord]:
    """Bundle rows with their members (one query for all members)."""
    found: dict[uuid.UUID, list[Mapping[Any, Any]]] = defaultdict(list)
    if rows:
        members = connection.execute(
            select(bundle_members)
            .where(bundle_members.c.bundle_id.in_([row["id"] for row in rows]))
            .order_by(bundle_members.c.bundle_id, bundle_members.c.position)
        ).mappings()
        for member in members:
            found[member["bundle_id"]].append(member)
    return [bundle_from_row(row, found.get(row["id"], [])) for row in rows]


class SqlBundleRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        # What each bundle looked like when loaded: save() writes the difference.
        self._loaded: dict[uuid.UUID, tuple[dict[str, Any], dict[uuid.UUID, dict[str, Any]]]] = {}

    def _remember(self, loaded: list[BundleRecord]) -> list[BundleRecord]:
        for bundle in loaded:
            self._loaded[bundle.id] = (
                bundle_columns(bundle),
                {member.id: member_columns(member) for member in bundle.members},
            )
        return loaded

    def add(self, new: Sequence[BundleRecord]) -> None:
        bundle_rows = [
            {
                "id": b.id,
                "therapist_id": b.therapist_id,
                "practice_key": b.practice_key,
                "kind": b.kind.value,
                "status": b.status.value,
                "round_id": b.round_id,
                "created_at": b.created_at,
                "created_by": b.created_by,
                "updated_at": b.updated_at,
                "applied_filters": [f.value for f in b.applied_filters],
                "skipped_filters": [f.value for f in b.skipped_filters],
            }
            for b in new
        ]
        numbers = {
            returned.id: returned.number
            for returned in bulk_insert(self._connection, bundles, bundle_rows, returning=("id", "number"))
        }
        member_rows = [
            {
                "id": m.id,
                "bundle_id": b.id,
                "search_id": m.search_id,
                "patient_id": m.patient_id,
                "position": m.position,
                "status": m.status.value,
            }
            for b in new
            for m in b.members
        ]
        bulk_insert(self._connection, bundle_members, member_rows)
        for bundle in new:
            bundle.number = numbers[bundle.id]
        # Drafts carry nothing a bulk insert left out but notes: written by save() when set.
        for bundle in new:
            self._loaded[bundle.id] = (
                {**bundle_columns(bundle), "notes": None},
                {member.id: member_columns(member) for member in bundle.members},
            )

    def _select(self, *conditions: ColumnElement[bool], for_update: bool = False) -> list[BundleRecord]:
        statement = select(bundles).where(*conditions).order_by(bundles.c.number)
        if for_update:
            statement = statement.with_for_update(of=bundles)
        rows = self._connection.execute(statement).mappings().all()
        return self._remember(load_bundles(self._connection, rows))

    def get(self, bundle_id: uuid.UUID, *, for_update: bool = False) -> BundleRecord | None:
        found = self._select(bundles.c.id == bundle_id, for_update=for_update)
        return found[0] if found else None

    def save(self, bundle: BundleRecord) -> None:
        before, members_before = self._loaded.get(bundle.id, ({}, {}))
        columns = bundle_columns(bundle)
        changed = {name: value for name, value in columns.items() if before.get(name, object()) != value}
        if changed:
            self._connection.execute(update(bundles).where(bundles.c.id == bundle.id).values(**changed))
        for member in bundle.members:
            now = member_columns(member)
            then = members_before.get(member.id, {})
            member_changed = {name: value for name, value in now.items() if then.get(name, object()) != value}
            if member_changed:
                self._connection.execute(
                    update(bundle_members).where(bundle_members.c.id == member.id).values(**member_changed)
                )
        self._remember([bundle])

    def with_pending_member(self, search_id: uuid.UUID) -> list[BundleRecord]:
        ids = select(bundle_members.c.bundle_id).where(
            bundle_members.c.search_id == search_id, bundle_members.c.status == MemberStatus.PENDING.value
        )
        return self._select(bundles.c.id.in_(ids), bundles.c.status.in_(OPEN))

    def with_accepted_member(self, search_id: uuid.UUID, therapist_id: uuid.UUID) -> BundleRecord | None:
        bundle_id = self._connection.execute(
            select(bundle_members.c.bundle_id)
            .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
            .where(
                bundle_members.c.search_id == search_id,
                bundle_members.c.status == MemberStatus.ACCEPTED.value,
                bundles.c.therapist_id == therapist_id,
            )
            .order_by(bundle_members.c.responded_at)
            .limit(1)
        ).scalar()
        return None if bundle_id is None else self.get(bundle_id)

    def drafts_of(self, therapist_id: uuid.UUID) -> list[BundleRecord]:
        return self._select(
            bundles.c.therapist_id == therapist_id,
            bundles.c.status == BundleStatus.DRAFT.value,
            for_update=True,
        )

    def drafts_of_practice(self, practice_key: str) -> list[BundleRecord]:
        return self._select(
            bundles.c.practice_key == practice_key,
            bundles.c.status == BundleStatus.DRAFT.value,
            for_update=True,
        )

    def sent_before(self, cutoff: datetime, *, limit: int) -> list[uuid.UUID]:
        return list(
            self._connection.execute(
                select(bundles.c.id)
                .where(bundles.c.status == BundleStatus.SENT.value, bundles.c.sent_at <= cutoff)
                .order_by(bundles.c.sent_at, bundles.c.number)
                .limit(limit)
            ).scalars()
        )
