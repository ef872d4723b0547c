"""The matching service's query side in PostgreSQL: search and bundle details and lists,
a search's bundle history, staff alerts, and a round's inputs (`round_inputs.py`)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, func, or_, select

from therapy_platform.matching.adapters.bundles import load_bundles
from therapy_platform.matching.adapters.round_inputs import SqlRoundInputs, contact_counts
from therapy_platform.matching.adapters.searches import exclusion_from_row, search_from_row
from therapy_platform.matching.adapters.tables import (
    bundle_members,
    bundles,
    patient_profiles,
    search_exclusions,
    searches,
    staff_alerts,
    therapist_profiles,
)
from therapy_platform.matching.domain.bundles import (
    Bundle,
    BundleQuery,
    BundleStatus,
    MemberStatus,
    StaffAlert,
    bundle_reference,
)
from therapy_platform.matching.domain.models import SearchCandidate, TherapistCandidate
from therapy_platform.matching.domain.searches import (
    Exclusion,
    PatientSearch,
    SearchBundleOutcome,
    SearchQuery,
)


def _needs_follow_up(now: datetime, follow_up_after_days: int) -> ColumnElement[bool]:
    """The SQL twin of `BundleRecord.needs_follow_up` (for filtering lists)."""
    conflict = exists().where(
        and_(bundle_members.c.bundle_id == bundles.c.id, bundle_members.c.status == MemberStatus.CONFLICT)
    )
    return or_(
        and_(
            bundles.c.status == BundleStatus.SENT,
            bundles.c.sent_at <= now - timedelta(days=follow_up_after_days),
        ),
        conflict,
    )


class SqlMatchingQueries:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._round_inputs = SqlRoundInputs(connection)

    # ------------------------------------------------------------------ searches

    def _exclusions(self, search_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Exclusion]]:
        found: dict[uuid.UUID, list[Exclusion]] = defaultdict(list)
        if not search_ids:
            return found
        rows = self._connection.execute(
            select(search_exclusions).where(search_exclusions.c.search_id.in_(list(search_ids)))
        ).mappings()
        for row in rows:
            found[row["search_id"]].append(exclusion_from_row(row))
        return found

    def _search_views(self, rows: Sequence[Mapping[Any, Any]], now: datetime) -> list[PatientSearch]:
        ids = [row["id"] for row in rows]
        counts = contact_counts(self._connection, ids)
        exclusions = self._exclusions(ids)
        views = []
        for row in rows:
            used, open_bundles = counts.get(row["id"], (0, 0))
            search = search_from_row(row, exclusions.get(row["id"], []))
            views.append(search.view(contacts_used=used, open_bundles=open_bundles, now=now))
        return views

    def search(self, search_id: uuid.UUID, now: datetime) -> PatientSearch | None:
        row = self._connection.execute(select(searches).where(searches.c.id == search_id)).mappings().first()
        return self._search_views([row], now)[0] if row else None

    def searches(self, query: SearchQuery, now: datetime) -> tuple[list[PatientSearch], int]:
        conditions: list[ColumnElement[bool]] = []
        if query.status is not None:
            conditions.append(searches.c.status == query.status)
        if query.patient_id is not None:
            conditions.append(searches.c.patient_id == query.patient_id)
        if query.waiting_longer_than_days is not None:
            conditions.append(searches.c.created_at < now - timedelta(days=query.waiting_longer_than_days))
        if query.postcode_prefix is not None:
            conditions.append(
                exists().where(
                    patient_profiles.c.id == searches.c.patient_id,
                    patient_profiles.c.data["postcode"].astext.startswith(query.postcode_prefix),
                )
            )
        total = self._connection.execute(
            select(func.count()).select_from(searches).where(*conditions)
        ).scalar_one()
        column = searches.c[query.sort.lstrip("-")]
        order = column.desc() if query.sort.startswith("-") else column.asc()
        rows = (
            self._connection.execute(
                select(searches)
                .where(*conditions)
                .order_by(order, searches.c.id)
                .offset(query.offset)
                .limit(query.limit)
            )
            .mappings()
            .all()
        )
        return self._search_views(rows, now), int(total)

    def search_history(self, search_id: uuid.UUID) -> list[SearchBundleOutcome]:
        rows = self._connection.execute(
            select(
                bundle_members,
                bundles.c.number,
                bundles.c.therapist_id,
                bundles.c.status.label("bundle_status"),
                bundles.c.created_at,
                bundles.c.sent_at,
            )
            .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
            .where(bundle_members.c.search_id == search_id)
            .order_by(bundles.c.created_at, bundles.c.number)
        ).mappings()
        return [
            SearchBundleOutcome(
                bundle_id=row["bundle_id"],
                reference=bundle_reference(row["number"]),
                therapist_id=row["therapist_id"],
                bundle_status=row["bundle_status"],
                member_status=row["status"],
                outcome=row["outcome"],
                created_at=row["created_at"],
                sent_at=row["sent_at"],
                responded_at=row["responded_at"],
            )
            for row in rows
        ]

    # ------------------------------------------------------------------ bundles

    def bundle(self, bundle_id: uuid.UUID, *, now: datetime, follow_up_after_days: int) -> Bundle | None:
        rows = self._connection.execute(select(bundles).where(bundles.c.id == bundle_id)).mappings().all()
        return next(
            (
                b.view(needs_follow_up=b.needs_follow_up(now, follow_up_after_days))
                for b in load_bundles(self._connection, rows)
            ),
            None,
        )

    def bundles(
        self, query: BundleQuery, *, now: datetime, follow_up_after_days: int
    ) -> tuple[list[Bundle], int]:
        follow_up = _needs_follow_up(now, follow_up_after_days)
        conditions: list[ColumnElement[bool]] = []
        if query.status is not None:
            conditions.append(bundles.c.status == query.status)
        if query.therapist_id is not None:
            conditions.append(bundles.c.therapist_id == query.therapist_id)
        if query.needs_follow_up is not None:
            conditions.append(follow_up if query.needs_follow_up else ~follow_up)
        if query.search_id is not None:
            conditions.append(
                exists().where(
                    bundle_members.c.bundle_id == bundles.c.id, bundle_members.c.search_id == query.search_id
                )
            )
        if query.postcode_prefix is not None:
            conditions.append(
                exists().where(
                    therapist_profiles.c.id == bundles.c.therapist_id,
                    therapist_profiles.c.data["postcode"].astext.startswith(query.postcode_prefix),
                )
            )
        total = self._connection.execute(
            select(func.count()).select_from(bundles).where(*conditions)
        ).scalar_one()
        column = bundles.c[query.sort.lstrip("-")]
        order = column.desc().nulls_last() if query.sort.startswith("-") else column.asc().nulls_last()
        rows = (
            self._connection.execute(
                select(bundles)
                .where(*conditions)
                .order_by(order, bundles.c.number)
                .offset(query.offset)
                .limit(query.limit)
            )
            .mappings()
            .all()
        )
        return [
            b.view(needs_follow_up=b.needs_follow_up(now, follow_up_after_days))
            for b in load_bundles(self._connection, rows)
        ], int(total)

    # ------------------------------------------------------------------ alerts, rounds

    def alerts(self, *, open_only: bool, limit: int) -> list[StaffAlert]:
        statement = (
            select(staff_alerts).order_by(staff_alerts.c.created_at.desc(), staff_alerts.c.id).limit(limit)
        )
        if open_only:
            statement = statement.where(staff_alerts.c.resolved_at.is_(None))
        return [
            StaffAlert.model_validate(dict(row)) for row in self._connection.execute(statement).mappings()
        ]

    def round_inputs(
        self,
        *,
        therapist_ids: Sequence[uuid.UUID] | None = None,
        postcode_prefix: str | None = None,
        search_ids: Sequence[uuid.UUID] | None = None,
    ) -> tuple[list[TherapistCandidate], list[SearchCandidate]]:
        return self._round_inputs.read(
            therapist_ids=therapist_ids, postcode_prefix=postcode_prefix, search_ids=search_ids
        )
