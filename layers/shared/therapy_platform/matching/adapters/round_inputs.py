"""A round's inputs read from the read models and the matching service's own tables in a
handful of set-based queries (national scale: 35,000 therapists, 100,000 searches).

Only the fields the engine needs leave the database (a JSON subset of each profile, never
names, addresses or contacts); timestamps travel as text because `datetime.fromisoformat` is
far faster than pg8000's parsing per row; lists are aggregated into one string and split here
because pg8000 parses array columns character by character.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Float, Text, and_, cast, func, literal, or_, select

from therapy_platform.matching.adapters.bundles import OPEN
from therapy_platform.matching.adapters.tables import (
    bundle_members,
    bundles,
    patient_profiles,
    search_exclusions,
    searches,
    therapist_cooling,
    therapist_profiles,
)
from therapy_platform.matching.domain.bundles import BundleStatus, MemberStatus
from therapy_platform.matching.domain.candidates import (
    SearchState,
    TherapistState,
    effective_practice_key,
    search_candidate,
    therapist_candidate,
)
from therapy_platform.matching.domain.models import SearchCandidate, TherapistCandidate
from therapy_platform.platform.geography.locations import MAX_GEODESIC_KM_PER_MINUTE

# Degrees per km, conservative so a bounding box never cuts off a reachable patient.
_DEG_LAT_PER_KM: Final = 1 / 110.5
_DEG_LON_PER_KM: Final = 1 / 60.0  # cos(57 deg) * 111.3: Germany lies south of 55.1 N
_EVERYTHING_FROM: Final = 5000  # searches from which one pass over all rows beats an IN list

# The patient fields matching reads from the read model (never names, addresses or contacts).
_PATIENT_MATCH_FIELDS: Final = (
    "location",
    "birth_month",
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
    "max_travel_minutes",
    "postcode",  # its two-digit region only (feature flag travel_time_reach)
    "availability",
    "symptoms",
    "excluded_therapist_ids",
    "status",
)

# The therapist fields a round reads (not phone numbers, street addresses, websites).
_THERAPIST_MATCH_FIELDS: Final = (
    "id",
    "created_at",
    "status",
    "location",
    "practice_key",
    "owner_name_rank",
    "title_rank",
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
    "contact_opt_out",
    "postcode",  # only its region is kept (the automatic_rounds flag): a practice's public address
)


def _subset(table: Any, fields: Sequence[str]) -> ColumnElement[Any]:
    pairs: list[Any] = []
    for name in fields:
        pairs.extend([literal(name), table.c.data[name]])
    return func.jsonb_build_object(*pairs)


def _lat(table: Any) -> ColumnElement[float]:
    return cast(table.c.data["location"]["latitude"].astext, Float)


def _lon(table: Any) -> ColumnElement[float]:
    return cast(table.c.data["location"]["longitude"].astext, Float)


def bounding_box(therapists: Sequence[TherapistCandidate]) -> tuple[float, float, float, float] | None:
    """South, north, west, east of the active located therapists (None: there are none)."""
    located = [t.location for t in therapists if t.status == "active" and t.location.is_known]
    if not located:
        return None
    lats = [loc.latitude for loc in located if loc.latitude is not None]
    lons = [loc.longitude for loc in located if loc.longitude is not None]
    return min(lats), max(lats), min(lons), max(lons)


def contact_counts(
    connection: Connection, search_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int]]:
    """search id -> (contacts used, open bundles). A contact is a membership in any bundle that
    was not discarded; an open bundle one in which the search is still pending."""
    if not search_ids:
        return {}
    rows = connection.execute(
        select(
            bundle_members.c.search_id,
            func.count().filter(bundles.c.status != BundleStatus.DISCARDED),
            func.count().filter(
                and_(bundles.c.status.in_(OPEN), bundle_members.c.status == MemberStatus.PENDING)
            ),
        )
        .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
        .where(bundle_members.c.search_id.in_(list(search_ids)))
        .group_by(bundle_members.c.search_id)
    )
    return {row[0]: (row[1], row[2]) for row in rows}


class SqlRoundInputs:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def read(
        self,
        *,
        therapist_ids: Sequence[uuid.UUID] | None = None,
        postcode_prefix: str | None = None,
        search_ids: Sequence[uuid.UUID] | None = None,
    ) -> tuple[list[TherapistCandidate], list[SearchCandidate]]:
        """Limited rounds (therapist ids, a postcode region) read the chosen therapists' whole
        practices (colleagues' open bundles and cooling count) and only the searches whose
        patients live within their own travel limit of the region's bounding box."""
        therapists = self._therapist_candidates(therapist_ids, postcode_prefix)
        limited = therapist_ids is not None or postcode_prefix is not None
        box = bounding_box(therapists) if limited else None
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
            select(bundles.c.therapist_id, bundles.c.practice_key).where(bundles.c.status.in_(OPEN))
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
            # The km limit, or a minutes limit's search radius when larger (domain/travel.py):
            # whether the minutes count is the round's decision (feature flag), so read both.
            reach = func.greatest(
                func.coalesce(cast(patient_profiles.c.data["max_travel_km"].astext, Float), 25.0),
                func.coalesce(cast(patient_profiles.c.data["max_travel_minutes"].astext, Float), 0.0)
                * MAX_GEODESIC_KM_PER_MINUTE,
            )
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
                cast(searches.c.created_at, Text).label("created_at"),
                searches.c.total_requested_contacts,
                _subset(patient_profiles, _PATIENT_MATCH_FIELDS).label("data"),
            )
            .join(patient_profiles, patient_profiles.c.id == searches.c.patient_id)
            .where(*conditions)
        ).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        everything = len(ids) >= _EVERYTHING_FROM
        counts = self._all_contact_counts() if everything else contact_counts(self._connection, ids)
        practices = self._contacted_practices([row.patient_id for row in rows], everything=everything)
        exclusions = self._exclusion_ids(ids, everything=everything)
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
                    and_(bundles.c.status.in_(OPEN), bundle_members.c.status == MemberStatus.PENDING)
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
