"""The matching service's PostgreSQL side: searches, bundles, members, rounds, cooling, alerts
and audit, plus reading the round's inputs from the read models in bulk.

Concurrency: every operation that creates bundles first takes one transaction-scoped advisory
lock (`lock_bundle_creation`) and only then reads what it plans from. Two rounds started at the
same moment therefore run one after the other, and the second sees the first one's open
bundles and used contacts. The partial unique index `bundles_one_open_per_practice` is the
database's own guarantee on top.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Text,
    and_,
    cast,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from therapy_platform.matching.adapters.tables import (
    MATCHING_SCHEMA,
    bundle_members,
    bundles,
    matching_audit_log,
    patient_profiles,
    rounds,
    search_exclusions,
    searches,
    staff_alerts,
    therapist_cooling,
    therapist_profiles,
)
from therapy_platform.matching.domain.bundles import (
    OPEN_BUNDLE_STATUSES,
    Bundle,
    BundleKind,
    BundleMember,
    BundleQuery,
    BundleStatus,
    MemberStatus,
    StaffAlert,
    bundle_reference,
    member_reference,
)
from therapy_platform.matching.domain.candidates import (
    SearchState,
    TherapistState,
    effective_practice_key,
    search_candidate,
    therapist_candidate,
)
from therapy_platform.matching.domain.models import SearchCandidate, TherapistCandidate
from therapy_platform.matching.domain.round import PlannedBundle
from therapy_platform.matching.domain.searches import (
    Exclusion,
    PatientSearch,
    SearchBundleOutcome,
    SearchQuery,
)
from therapy_platform.platform.errors import ConflictError
from therapy_platform.platform.sql_bulk import bulk_insert
from therapy_platform.platform.unit_of_work import SqlUnitOfWork

# Any constant works as long as every bundle-creating code path uses the same one.
BUNDLE_CREATION_LOCK: Final = 7_270_001
_OPEN = [s.value for s in OPEN_BUNDLE_STATUSES]
# Degrees per km, conservative so a bounding box never cuts off a reachable patient.
_DEG_LAT_PER_KM: Final = 1 / 110.5
_DEG_LON_PER_KM: Final = 1 / 60.0  # cos(57 deg) * 111.3: Germany lies south of 55.1 N

# The patient fields matching reads from the read model (never names, addresses or contacts).
_PATIENT_MATCH_FIELDS: Final = (
    "location",
    "birth_date",
    "gender",
    "preferred_therapist_gender",
    "therapy_procedures",
    "languages",
    "shared_language_required",
    "needs_shared_language",
    "open_to_group_therapy",
    "group_only",
    "max_travel_km",
    "travel_mode",
    "availability",
    "symptoms",
    "excluded_therapist_ids",
    "status",
)


# The therapist fields a round reads (not phone numbers, addresses, websites).
_THERAPIST_MATCH_FIELDS: Final = (
    "id",
    "last_name",
    "created_at",
    "status",
    "location",
    "email",
    "practice_key",
    "title",
    "gender",
    "next_contact_allowed_on",
    "procedures",
    "languages",
    "preferred_patient_gender",
    "preferred_age_min",
    "preferred_age_max",
    "offers_group_therapy",
    "group_only",
    "working_hours",
    "symptom_preferences",
    "potentially_available",
)


def _subset(table: Any, fields: Sequence[str]) -> ColumnElement[Any]:
    pairs: list[Any] = []
    for name in fields:
        pairs.extend([literal(name), table.c.data[name]])
    return func.jsonb_build_object(*pairs)


def _patient_match_data() -> ColumnElement[Any]:
    return _subset(patient_profiles, _PATIENT_MATCH_FIELDS)


def _lat(table: Any) -> ColumnElement[float]:
    return cast(table.c.data["location"]["latitude"].astext, Float)


def _lon(table: Any) -> ColumnElement[float]:
    return cast(table.c.data["location"]["longitude"].astext, Float)


def _needs_follow_up(now: datetime, follow_up_after_days: int) -> ColumnElement[bool]:
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


class SqlMatchingStore:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # ------------------------------------------------------------------ locking

    def lock_bundle_creation(self) -> None:
        """Serialise bundle creation until this transaction ends (see module docstring)."""
        self._connection.execute(select(func.pg_advisory_xact_lock(BUNDLE_CREATION_LOCK)))

    # ------------------------------------------------------------------ read models

    def patient_profile(self, patient_id: uuid.UUID) -> tuple[bool, dict[str, Any] | None]:
        """(known, data): unknown patients (no event yet) and erased ones (tombstone, data None)."""
        row = self._connection.execute(
            select(patient_profiles.c.data).where(patient_profiles.c.id == patient_id)
        ).first()
        return (row is not None, None if row is None else row.data)

    def patient_profiles(self, patient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        ids = list(set(patient_ids))
        if not ids:
            return {}
        rows = self._connection.execute(
            select(patient_profiles.c.id, patient_profiles.c.data).where(
                patient_profiles.c.id.in_(ids), patient_profiles.c.data.is_not(None)
            )
        )
        return {row.id: row.data for row in rows}

    def therapist_profiles(self, therapist_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        ids = list(set(therapist_ids))
        if not ids:
            return {}
        rows = self._connection.execute(
            select(therapist_profiles.c.id, therapist_profiles.c.data).where(
                therapist_profiles.c.id.in_(ids), therapist_profiles.c.data.is_not(None)
            )
        )
        return {row.id: row.data for row in rows}

    def practice_members(self, practice_key: str) -> dict[uuid.UUID, dict[str, Any]]:
        rows = self._connection.execute(
            select(therapist_profiles.c.id, therapist_profiles.c.data).where(
                therapist_profiles.c.data["practice_key"].astext == practice_key
            )
        )
        return {row.id: row.data for row in rows}

    # ------------------------------------------------------------------ searches

    def add_search(self, values: Mapping[str, Any]) -> None:
        try:
            with self._connection.begin_nested():
                self._connection.execute(insert(searches).values(**values))
        except IntegrityError as error:  # a concurrent POST for the same patient won the race
            raise ConflictError(
                f"patient {values['patient_id']} already has an unfinished search",
                details={"patient_id": str(values["patient_id"])},
            ) from error

    def search_row(self, search_id: uuid.UUID, *, for_update: bool = False) -> dict[str, Any] | None:
        statement = select(searches).where(searches.c.id == search_id)
        if for_update:
            statement = statement.with_for_update()
        row = self._connection.execute(statement).mappings().first()
        return dict(row) if row else None

    def unfinished_search_of(self, patient_id: uuid.UUID) -> dict[str, Any] | None:
        row = (
            self._connection.execute(
                select(searches).where(
                    searches.c.patient_id == patient_id, searches.c.status.in_(["active", "paused"])
                )
            )
            .mappings()
            .first()
        )
        return dict(row) if row else None

    def update_search(self, search_id: uuid.UUID, values: Mapping[str, Any]) -> None:
        try:
            with self._connection.begin_nested():
                self._connection.execute(update(searches).where(searches.c.id == search_id).values(**values))
        except IntegrityError as error:  # reactivating while the patient has another unfinished search
            raise ConflictError(
                "the patient already has another unfinished search; finish that one first",
                details={"search_id": str(search_id)},
            ) from error

    def add_exclusion(
        self, search_id: uuid.UUID, therapist_id: uuid.UUID, *, reason: str, at: datetime, actor: str
    ) -> bool:
        statement = (
            pg_insert(search_exclusions)
            .values(
                search_id=search_id,
                therapist_id=therapist_id,
                reason=reason,
                excluded_at=at,
                excluded_by=actor,
            )
            .on_conflict_do_nothing()
            .returning(search_exclusions.c.search_id)
        )
        return self._connection.execute(statement).first() is not None

    def remove_exclusion(self, search_id: uuid.UUID, therapist_id: uuid.UUID) -> bool:
        result = self._connection.execute(
            search_exclusions.delete().where(
                search_exclusions.c.search_id == search_id, search_exclusions.c.therapist_id == therapist_id
            )
        )
        return bool(result.rowcount)

    def _contact_counts(self, search_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
        """search id -> (contacts used, open bundles)."""
        if not search_ids:
            return {}
        rows = self._connection.execute(
            select(
                bundle_members.c.search_id,
                func.count().filter(bundles.c.status != BundleStatus.DISCARDED),
                func.count().filter(
                    and_(bundles.c.status.in_(_OPEN), bundle_members.c.status == MemberStatus.PENDING)
                ),
            )
            .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
            .where(bundle_members.c.search_id.in_(list(search_ids)))
            .group_by(bundle_members.c.search_id)
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def _exclusions(self, search_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Exclusion]]:
        found: dict[uuid.UUID, list[Exclusion]] = defaultdict(list)
        if not search_ids:
            return found
        rows = self._connection.execute(
            select(search_exclusions)
            .where(search_exclusions.c.search_id.in_(list(search_ids)))
            .order_by(search_exclusions.c.excluded_at, search_exclusions.c.therapist_id)
        ).mappings()
        for row in rows:
            found[row["search_id"]].append(
                Exclusion(
                    therapist_id=row["therapist_id"],
                    reason=row["reason"],
                    excluded_at=row["excluded_at"],
                    excluded_by=row["excluded_by"],
                )
            )
        return found

    def _search_views(self, rows: Sequence[Mapping[Any, Any]], now: datetime) -> list[PatientSearch]:
        ids = [row["id"] for row in rows]
        counts = self._contact_counts(ids)
        exclusions = self._exclusions(ids)
        return [
            PatientSearch(
                **{column.name: row[column.name] for column in searches.c},
                contacts_used=counts.get(row["id"], (0, 0))[0],
                open_bundles=counts.get(row["id"], (0, 0))[1],
                exclusions=exclusions.get(row["id"], []),
                waiting_days=max(0, (now - row["created_at"]).days),
            )
            for row in rows
        ]

    def search_view(self, search_id: uuid.UUID, now: datetime) -> PatientSearch | None:
        row = self.search_row(search_id)
        return self._search_views([row], now)[0] if row else None

    def list_searches(self, query: SearchQuery, now: datetime) -> tuple[list[PatientSearch], int]:
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

    # ------------------------------------------------------------------ round inputs

    def round_inputs(
        self,
        *,
        therapist_ids: Sequence[uuid.UUID] | None = None,
        postcode_prefix: str | None = None,
        search_ids: Sequence[uuid.UUID] | None = None,
    ) -> tuple[list[TherapistCandidate], list[SearchCandidate]]:
        """Everything a round needs, read in a handful of set-based queries.

        Limited rounds (therapist ids, a postcode region) read the chosen therapists' whole
        practices (colleagues' open bundles and cooling count) and only the searches whose
        patients live within their own travel limit of the region's bounding box."""
        therapists = self._therapist_candidates(therapist_ids, postcode_prefix)
        limited = therapist_ids is not None or postcode_prefix is not None
        box = _bounding_box(therapists) if limited else None
        if limited and box is None:
            return therapists, []
        return therapists, self._search_candidates(box, search_ids)

    def _therapist_candidates(
        self, therapist_ids: Sequence[uuid.UUID] | None, postcode_prefix: str | None
    ) -> list[TherapistCandidate]:
        active = therapist_profiles.c.data["status"].astext == "active"
        conditions: list[ColumnElement[bool]] = [therapist_profiles.c.data.is_not(None)]
        if therapist_ids is not None or postcode_prefix is not None:
            chosen = select(
                therapist_profiles.c.id, therapist_profiles.c.data["practice_key"].astext.label("pk")
            )
            if therapist_ids is not None:
                chosen = chosen.where(therapist_profiles.c.id.in_(list(therapist_ids)))
            if postcode_prefix is not None:
                chosen = chosen.where(
                    therapist_profiles.c.data["postcode"].astext.startswith(postcode_prefix), active
                )
            picked = chosen.subquery()
            conditions.append(
                or_(
                    therapist_profiles.c.id.in_(select(picked.c.id)),
                    therapist_profiles.c.data["practice_key"].astext.in_(
                        select(picked.c.pk).where(picked.c.pk.is_not(None))
                    ),
                )
            )
        else:
            conditions.append(active)
        rows = self._connection.execute(
            select(
                therapist_profiles.c.id,
                _subset(therapist_profiles, _THERAPIST_MATCH_FIELDS).label("data"),
                therapist_profiles.c.source_timestamp,
                therapist_cooling.c.next_contact_allowed_on,
                therapist_cooling.c.set_at,
            )
            .select_from(
                therapist_profiles.outerjoin(
                    therapist_cooling, therapist_cooling.c.therapist_id == therapist_profiles.c.id
                )
            )
            .where(*conditions)
        ).all()
        open_rows = self._connection.execute(
            select(bundles.c.therapist_id, bundles.c.practice_key).where(bundles.c.status.in_(_OPEN))
        ).all()
        open_therapists = {row.therapist_id for row in open_rows}
        open_practices = {row.practice_key for row in open_rows}
        candidates = []
        for row in rows:
            practice = effective_practice_key(row.id, row.data.get("practice_key"))
            newer_cooling = (
                row.next_contact_allowed_on if row.set_at and row.set_at > row.source_timestamp else None
            )
            state = TherapistState(
                has_open_bundle=row.id in open_therapists or practice in open_practices,
                cooling_until=newer_cooling,
            )
            candidates.append(therapist_candidate(row.data, state))
        return candidates

    def _search_candidates(
        self, box: tuple[float, float, float, float] | None, search_ids: Sequence[uuid.UUID] | None
    ) -> list[SearchCandidate]:
        conditions: list[ColumnElement[bool]] = [
            searches.c.status == "active",
            patient_profiles.c.data.is_not(None),
        ]
        if search_ids is not None:
            conditions.append(searches.c.id.in_(list(search_ids)))
        if box is not None:
            south, north, west, east = box
            reach = func.coalesce(cast(patient_profiles.c.data["max_travel_km"].astext, Float), 25.0)
            lat, lon = _lat(patient_profiles), _lon(patient_profiles)
            conditions += [
                lat.between(south - reach * _DEG_LAT_PER_KM, north + reach * _DEG_LAT_PER_KM),
                lon.between(west - reach * _DEG_LON_PER_KM, east + reach * _DEG_LON_PER_KM),
            ]
        rows = self._connection.execute(
            select(
                searches.c.id,
                searches.c.patient_id,
                searches.c.status,
                # As text: datetime.fromisoformat is far faster than pg8000's strptime per row.
                cast(searches.c.created_at, Text).label("created_at"),
                searches.c.total_requested_contacts,
                _patient_match_data().label("data"),
            )
            .join(patient_profiles, patient_profiles.c.id == searches.c.patient_id)
            .where(*conditions)
        ).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        counts = self._contact_counts(ids) if len(ids) < 5000 else self._all_contact_counts()
        practices = self._contacted_practices([row.patient_id for row in rows], everything=len(ids) >= 5000)
        exclusions = self._exclusion_ids(ids, everything=len(ids) >= 5000)
        candidates = []
        for row in rows:
            used, open_count = counts.get(row.id, (0, 0))
            state = SearchState(
                id=row.id,
                patient_id=row.patient_id,
                status=row.status,
                created_at=datetime.fromisoformat(row.created_at),
                contact_budget=row.total_requested_contacts,
                contacts_used=used,
                open_bundle_count=open_count,
                contacted_practices=practices.get(row.patient_id, frozenset()),
                excluded_therapist_ids=exclusions.get(row.id, frozenset()),
            )
            candidates.append(search_candidate(state, row.data))
        return candidates

    def _all_contact_counts(self) -> dict[uuid.UUID, tuple[int, int]]:
        """The national round's variant: one pass over every membership of active searches."""
        rows = self._connection.execute(
            select(
                bundle_members.c.search_id,
                func.count().filter(bundles.c.status != BundleStatus.DISCARDED),
                func.count().filter(
                    and_(bundles.c.status.in_(_OPEN), bundle_members.c.status == MemberStatus.PENDING)
                ),
            )
            .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
            .join(searches, searches.c.id == bundle_members.c.search_id)
            .where(searches.c.status == "active")
            .group_by(bundle_members.c.search_id)
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def _contacted_practices(
        self, patient_ids: Sequence[uuid.UUID], *, everything: bool
    ) -> dict[uuid.UUID, frozenset[str]]:
        # string_agg, split here: pg8000 parses array columns character by character.
        statement = (
            select(
                bundle_members.c.patient_id, func.string_agg(func.distinct(bundles.c.practice_key), "\x1e")
            )
            .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
            .where(bundles.c.status != BundleStatus.DISCARDED)
            .group_by(bundle_members.c.patient_id)
        )
        if not everything:
            statement = statement.where(bundle_members.c.patient_id.in_(list(set(patient_ids))))
        return {row[0]: frozenset(row[1].split("\x1e")) for row in self._connection.execute(statement)}

    def _exclusion_ids(
        self, search_ids: Sequence[uuid.UUID], *, everything: bool
    ) -> dict[uuid.UUID, frozenset[uuid.UUID]]:
        statement = select(search_exclusions.c.search_id, search_exclusions.c.therapist_id)
        if not everything:
            statement = statement.where(search_exclusions.c.search_id.in_(list(search_ids)))
        found: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        for row in self._connection.execute(statement):
            found[row[0]].add(row[1])
        return {key: frozenset(value) for key, value in found.items()}

    # ------------------------------------------------------------------ bundles

    def add_round(self, values: Mapping[str, Any]) -> None:
        self._connection.execute(insert(rounds).values(**values))

    def finish_round(self, round_id: uuid.UUID, *, finished_at: datetime, summary: Mapping[str, Any]) -> None:
        self._connection.execute(
            update(rounds)
            .where(rounds.c.id == round_id)
            .values(finished_at=finished_at, summary=dict(summary))
        )

    def insert_bundles(
        self,
        planned: Sequence[PlannedBundle],
        *,
        kind: BundleKind,
        round_id: uuid.UUID | None,
        actor: str,
        now: datetime,
    ) -> list[Bundle]:
        """Write planned bundles as drafts with their members; return them as stored."""
        bundle_rows: list[dict[str, Any]] = []
        for plan in planned:
            bundle_rows.append(
                {
                    "id": uuid.uuid4(),
                    "therapist_id": plan.therapist_id,
                    "practice_key": plan.practice_key,
                    "kind": kind.value,
                    "status": BundleStatus.DRAFT.value,
                    "round_id": round_id,
                    "created_at": now,
                    "created_by": actor,
                    "updated_at": now,
                    "applied_filters": [f.value for f in plan.applied_filters],
                    "skipped_filters": [f.value for f in plan.skipped_filters],
                }
            )
        numbers = {
            returned.id: returned.number
            for returned in bulk_insert(self._connection, bundles, bundle_rows, returning=("id", "number"))
        }
        member_rows: list[dict[str, Any]] = []
        for plan, bundle_row in zip(planned, bundle_rows, strict=True):
            for member in plan.members:
                member_rows.append(
                    {
                        "id": uuid.uuid4(),
                        "bundle_id": bundle_row["id"],
                        "search_id": member.search_id,
                        "patient_id": member.patient_id,
                        "position": member.position,
                        "status": MemberStatus.PENDING.value,
                    }
                )
        bulk_insert(self._connection, bundle_members, member_rows)
        members_by_bundle: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
        for member_row in member_rows:
            members_by_bundle[member_row["bundle_id"]].append(member_row)
        # Built without validation: every value was made right here (a national round builds 20,000).
        stored = []
        for plan, bundle_row in zip(planned, bundle_rows, strict=True):
            number = numbers[bundle_row["id"]]
            members = [
                BundleMember.model_construct(
                    id=m["id"],
                    search_id=m["search_id"],
                    patient_id=m["patient_id"],
                    position=m["position"],
                    reference=member_reference(number, m["position"]),
                    status=MemberStatus.PENDING,
                    outcome=None,
                    responded_at=None,
                    notes=None,
                    patient=None,
                )
                for m in members_by_bundle[bundle_row["id"]]
            ]
            stored.append(
                Bundle.model_construct(
                    **{
                        **_BUNDLE_DEFAULTS,
                        "id": bundle_row["id"],
                        "number": number,
                        "reference": bundle_reference(number),
                        "therapist_id": plan.therapist_id,
                        "practice_key": plan.practice_key,
                        "kind": kind,
                        "status": BundleStatus.DRAFT,
                        "round_id": round_id,
                        "created_at": now,
                        "created_by": actor,
                        "updated_at": now,
                        "size": len(members),
                        "applied_filters": list(plan.applied_filters),
                        "skipped_filters": list(plan.skipped_filters),
                        "needs_follow_up": False,
                        "members": members,
                    },
                )
            )
        return stored

    def bundle(
        self, bundle_id: uuid.UUID, *, now: datetime, follow_up_after_days: int = 7, for_update: bool = False
    ) -> Bundle | None:
        statement = select(
            bundles, _needs_follow_up(now, follow_up_after_days).label("needs_follow_up")
        ).where(bundles.c.id == bundle_id)
        if for_update:
            statement = statement.with_for_update(of=bundles)
        row = self._connection.execute(statement).mappings().first()
        if row is None:
            return None
        members = self._members([bundle_id])
        return _bundle_model(row, members.get(bundle_id, []), needs_follow_up=bool(row["needs_follow_up"]))

    def _members(self, bundle_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
        found: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
        if not bundle_ids:
            return found
        rows = self._connection.execute(
            select(bundle_members)
            .where(bundle_members.c.bundle_id.in_(list(bundle_ids)))
            .order_by(bundle_members.c.bundle_id, bundle_members.c.position)
        ).mappings()
        for row in rows:
            found[row["bundle_id"]].append(dict(row))
        return found

    def list_bundles(
        self, query: BundleQuery, *, now: datetime, follow_up_after_days: int = 7
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
                select(bundles, follow_up.label("needs_follow_up"))
                .where(*conditions)
                .order_by(order, bundles.c.number)
                .offset(query.offset)
                .limit(query.limit)
            )
            .mappings()
            .all()
        )
        members = self._members([row["id"] for row in rows])
        return [
            _bundle_model(row, members.get(row["id"], []), needs_follow_up=bool(row["needs_follow_up"]))
            for row in rows
        ], int(total)

    def update_bundle(self, bundle_id: uuid.UUID, values: Mapping[str, Any]) -> None:
        self._connection.execute(update(bundles).where(bundles.c.id == bundle_id).values(**values))

    def update_member(self, member_id: uuid.UUID, values: Mapping[str, Any]) -> None:
        self._connection.execute(
            update(bundle_members).where(bundle_members.c.id == member_id).values(**values)
        )

    def pending_memberships(self, search_id: uuid.UUID) -> list[dict[str, Any]]:
        """The search's pending memberships in open (draft or sent) bundles, with the bundle."""
        rows = self._connection.execute(
            select(
                bundle_members.c.id,
                bundle_members.c.bundle_id,
                bundle_members.c.position,
                bundles.c.number,
                bundles.c.status.label("bundle_status"),
                bundles.c.therapist_id,
            )
            .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
            .where(
                bundle_members.c.search_id == search_id,
                bundle_members.c.status == MemberStatus.PENDING,
                bundles.c.status.in_(_OPEN),
            )
            .order_by(bundles.c.number)
        ).mappings()
        return [dict(row) for row in rows]

    def accepted_member_of(self, search_id: uuid.UUID, therapist_id: uuid.UUID) -> dict[str, Any] | None:
        row = (
            self._connection.execute(
                select(bundle_members.c.id, bundle_members.c.bundle_id, bundle_members.c.responded_at)
                .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
                .where(
                    bundle_members.c.search_id == search_id,
                    bundle_members.c.status == MemberStatus.ACCEPTED,
                    bundles.c.therapist_id == therapist_id,
                )
                .order_by(bundle_members.c.responded_at)
            )
            .mappings()
            .first()
        )
        return dict(row) if row else None

    def open_bundle_ids(
        self, *, therapist_id: uuid.UUID | None = None, status: BundleStatus | None = None
    ) -> list[uuid.UUID]:
        conditions: list[ColumnElement[bool]] = [bundles.c.status.in_(_OPEN)]
        if therapist_id is not None:
            conditions.append(bundles.c.therapist_id == therapist_id)
        if status is not None:
            conditions.append(bundles.c.status == status)
        return list(
            self._connection.execute(
                select(bundles.c.id).where(*conditions).order_by(bundles.c.number)
            ).scalars()
        )

    def bundles_of_search_in_drafts(self, search_id: uuid.UUID) -> list[uuid.UUID]:
        return list(
            self._connection.execute(
                select(bundle_members.c.bundle_id)
                .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
                .where(bundle_members.c.search_id == search_id, bundles.c.status == BundleStatus.DRAFT)
            ).scalars()
        )

    def sent_before(self, cutoff: datetime, *, limit: int) -> list[uuid.UUID]:
        return list(
            self._connection.execute(
                select(bundles.c.id)
                .where(bundles.c.status == BundleStatus.SENT, bundles.c.sent_at <= cutoff)
                .order_by(bundles.c.sent_at, bundles.c.number)
                .limit(limit)
            ).scalars()
        )

    # ------------------------------------------------------------------ cooling, alerts, audit

    def set_cooling(
        self, therapist_id: uuid.UUID, until: date, *, at: datetime, bundle_id: uuid.UUID
    ) -> None:
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

    def add_alert(self, alert: StaffAlert) -> None:
        self._connection.execute(insert(staff_alerts).values(**alert.model_dump()))

    def alerts(self, *, open_only: bool, limit: int) -> list[StaffAlert]:
        statement = (
            select(staff_alerts).order_by(staff_alerts.c.created_at.desc(), staff_alerts.c.id).limit(limit)
        )
        if open_only:
            statement = statement.where(staff_alerts.c.resolved_at.is_(None))
        return [
            StaffAlert.model_validate(dict(row)) for row in self._connection.execute(statement).mappings()
        ]

    def audit(self, entries: Sequence[Mapping[str, Any]]) -> None:
        bulk_insert(self._connection, matching_audit_log, [dict(entry) for entry in entries])

    def audit_entries(self, entity_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = self._connection.execute(
            select(matching_audit_log)
            .where(matching_audit_log.c.entity_id == entity_id)
            .order_by(matching_audit_log.c.at, matching_audit_log.c.id)
        ).mappings()
        return [dict(row) for row in rows]

    def eligible_therapist_rows(self, postcode_prefix: str) -> list[dict[str, Any]]:
        """Active, located therapists of a region with their practice's size (the staff list is
        then narrowed by the practice rules in the use case)."""
        rows = self._connection.execute(
            select(therapist_profiles.c.id, therapist_profiles.c.data).where(
                therapist_profiles.c.data.is_not(None),
                therapist_profiles.c.data["postcode"].astext.startswith(postcode_prefix),
            )
        )
        return [{"id": row.id, "data": row.data} for row in rows]


_BUNDLE_DEFAULTS: Final = {name: None for name in Bundle.model_fields}


def _bounding_box(therapists: Sequence[TherapistCandidate]) -> tuple[float, float, float, float] | None:
    located = [t.location for t in therapists if t.status == "active" and t.location.is_known]
    if not located:
        return None
    lats = [loc.latitude for loc in located if loc.latitude is not None]
    lons = [loc.longitude for loc in located if loc.longitude is not None]
    return min(lats), max(lats), min(lons), max(lons)


def _bundle_model(
    row: Mapping[Any, Any], members: Sequence[Mapping[str, Any]], *, needs_follow_up: bool
) -> Bundle:
    number = int(row["number"])
    return Bundle(
        id=row["id"],
        number=number,
        reference=bundle_reference(number),
        therapist_id=row["therapist_id"],
        practice_key=row["practice_key"],
        kind=row["kind"],
        status=row["status"],
        round_id=row.get("round_id"),
        created_at=row["created_at"],
        created_by=row["created_by"],
        updated_at=row["updated_at"],
        sent_at=row.get("sent_at"),
        channel=row.get("channel"),
        reminder_sent_at=row.get("reminder_sent_at"),
        answered_at=row.get("answered_at"),
        expired_at=row.get("expired_at"),
        discarded_at=row.get("discarded_at"),
        discard_reason=row.get("discard_reason"),
        response_type=row.get("response_type"),
        accepted_count=row.get("accepted_count"),
        rejected_count=row.get("rejected_count"),
        no_response_count=row.get("no_response_count"),
        size=len(members),
        applied_filters=row.get("applied_filters") or [],
        skipped_filters=row.get("skipped_filters") or [],
        notes=row.get("notes"),
        needs_follow_up=needs_follow_up,
        members=[
            BundleMember(
                id=m["id"],
                search_id=m["search_id"],
                patient_id=m["patient_id"],
                position=m["position"],
                reference=member_reference(number, m["position"]),
                status=m["status"],
                outcome=m.get("outcome"),
                responded_at=m.get("responded_at"),
                notes=m.get("notes"),
            )
            for m in members
        ],
    )


class SqlMatchingUnitOfWork(SqlUnitOfWork):
    schema = MATCHING_SCHEMA
    store: SqlMatchingStore

    def _bind(self, connection: Connection) -> None:
        self.store = SqlMatchingStore(connection)
