"""A round's inputs read from the read models and the matching service's own tables in a
handful of set-based queries (national scale: 35,000 therapists, 100,000 searches).

Only the fields the engine needs leave the database (each a column of its own, never names,
addresses or contacts). Each input set arrives as ONE JSON document (`json_agg` of one
array per row, `_json_rows`) parsed by one `json.loads`: pg8000's decoding per row and per
value (its timestamp parser above all) cost more than the database's work at national scale.
Timestamps travel as ISO text (`datetime.fromisoformat`); lists are aggregated into one string
and split here. A limited round (a region, chosen therapists) reads its searches and all their
bookkeeping in one statement whose parts share CTEs (`_json_documents`; docs/matching.md, "Speed
of a region round").
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Text,
    TextClause,
    and_,
    any_,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.pool import QueuePool

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

# A patient's reach box: location +/- their travel limit (25 km when unset) in degrees, with km
# per degree conservative so the box never cuts off a reachable patient: 110.5 km per degree of
# latitude, 60 per degree of longitude (cos(57 deg) * 111.3: Germany lies south of 55.1 N).
# Exactly the expression of the GiST index patient_profiles_reach (migration 0024): PostgreSQL
# uses an expression index only for the same expression.
_LAT: Final = "((patient_profiles.data -> 'location' ->> 'latitude')::double precision)"
_LON: Final = "((patient_profiles.data -> 'location' ->> 'longitude')::double precision)"
# A minutes limit's search radius uses KM_PER_MINUTE_BOUND (SQL text, rounded up from
# MAX_GEODESIC_KM_PER_MINUTE: a unit test keeps it at least that; the index has the same literal).
KM_PER_MINUTE_BOUND: Final = "1.154"
_REACH: Final = (
    "greatest(coalesce((patient_profiles.data ->> 'max_travel_km')::double precision, 25.0), "
    "coalesce((patient_profiles.data ->> 'max_travel_minutes')::double precision, 0.0) * "
    f"{KM_PER_MINUTE_BOUND})"
)
REACH_BOX: Final = (
    f"box(point({_LON} - {_REACH} / 60.0, {_LAT} - {_REACH} / 110.5), "
    f"point({_LON} + {_REACH} / 60.0, {_LAT} + {_REACH} / 110.5))"
)
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


def _fields(table: Any, fields: Sequence[str]) -> list[ColumnElement[Any]]:
    """The read model's fields as columns of their own: the rows' arrays carry values only (no
    key repeated per row), zipped back into a mapping by `_profile`."""
    return [table.c.data[name].label(f"f_{name}") for name in fields]


def _profile(fields: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(fields, values, strict=True))


def _json_rows(connection: Connection, statement: Select[Any]) -> list[list[Any]]:
    """The rows of `statement` as JSON arrays, fetched as one text value and parsed at once
    (uuids and timestamps arrive as their text forms)."""
    rows = statement.subquery()
    document = connection.execute(
        select(
            cast(
                func.coalesce(func.json_agg(func.json_build_array(*rows.c)), literal_column("'[]'::json")),
                Text,
            )
        ).select_from(rows)
    ).scalar_one()
    found: list[list[Any]] = json.loads(document)
    return found


def _json_array(statement: Select[Any]) -> ColumnElement[Any]:
    """The rows of `statement` as one JSON array of arrays (a scalar subquery)."""
    rows = statement.subquery()
    return (
        select(func.coalesce(func.json_agg(func.json_build_array(*rows.c)), literal_column("'[]'::json")))
        .select_from(rows)
        .scalar_subquery()
    )


def _json_documents(connection: Connection, *statements: Select[Any]) -> list[list[list[Any]]]:
    """The rows of several statements in one round trip and one document (a CTE they share is
    computed once: PostgreSQL materialises a CTE named more than once)."""
    document = connection.execute(
        select(cast(func.json_build_array(*(_json_array(s) for s in statements)), Text))
    ).scalar_one()
    found: list[list[list[Any]]] = json.loads(document)
    return found


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
    counts = _counts_by_search(
        _json_rows(connection, _counts_statement().where(bundle_members.c.search_id.in_(list(search_ids))))
    )
    return {uuid.UUID(key): value for key, value in counts.items()}


def _counts_statement() -> Select[Any]:
    return (
        _counts_of(bundle_members.c.search_id, bundles.c.status, bundle_members.c.status)
        .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
        .group_by(bundle_members.c.search_id)
    )


def _counts_of(search_id: Any, bundle_status: Any, member_status: Any) -> Select[Any]:
    """search id, contacts used (memberships in bundles not discarded), open bundles (pending
    in a draft or sent bundle)."""
    return select(
        search_id,
        func.count().filter(bundle_status != BundleStatus.DISCARDED),
        func.count().filter(and_(bundle_status.in_(OPEN), member_status == MemberStatus.PENDING)),
    )


def _ids_of(column: Any) -> ColumnElement[Any]:
    """All values of a CTE's column as one array, for `= ANY(...)`: an index condition (an IN
    subquery in an OR could not use the index)."""
    return func.coalesce(select(func.array_agg(column)).scalar_subquery(), literal_column("'{}'"))


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
        limited = therapist_ids is not None or postcode_prefix is not None
        if not limited and search_ids is None and self._may_read_beside():
            return self._national_side_by_side()
        therapists = self._therapist_candidates(therapist_ids, postcode_prefix)
        box = bounding_box(therapists) if limited else None
        if limited and box is None:
            return therapists, []
        return therapists, self._search_candidates(box, search_ids)

    def _may_read_beside(self) -> bool:
        """Whether a second connection of the engine's pool reads what this one would: only
        while this transaction has written nothing (no transaction id yet) and reads at READ
        COMMITTED, where every statement sees what is committed when it starts, on either
        connection. A round takes its lock and then reads, before it writes anything."""
        pool = self._connection.engine.pool
        if not isinstance(pool, QueuePool) or pool.size() < 2:
            return False
        written, isolation = self._connection.execute(
            select(func.pg_current_xact_id_if_assigned(), func.current_setting("transaction_isolation"))
        ).one()
        return written is None and isolation == "read committed"

    def _national_side_by_side(self) -> tuple[list[TherapistCandidate], list[SearchCandidate]]:
        """A national round's searches are read on a second connection while this one reads and
        decodes the therapists: PostgreSQL builds the searches' document (over a second of its
        time at national scale) while Python works, on a machine with two cores or more."""
        engine = self._connection.engine

        def searches() -> list[SearchCandidate]:
            with engine.connect() as beside:
                return SqlRoundInputs(beside)._search_candidates(None, None)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="round-searches") as worker:
            found = worker.submit(searches)
            therapists = self._therapist_candidates(None, None)
            return therapists, found.result()

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
            picked = chosen.cte("picked")
            colleague = therapist_profiles.alias("colleague")
            # The chosen and their colleagues as one id set (a semi-join the planner answers
            # through the postcode, practice-key and primary-key indexes; an OR of the two
            # conditions made it read every profile).
            conditions.append(
                therapist_profiles.c.id.in_(
                    union(
                        select(picked.c.id),
                        select(colleague.c.id).where(
                            colleague.c.data["practice_key"].astext.in_(
                                select(picked.c.pk).where(picked.c.pk.is_not(None))
                            )
                        ),
                    )
                )
            )
        else:
            conditions.append(active)
        # A cooling period matching started counts when it is newer than the read model's update.
        newer_cooling = case(
            (
                therapist_cooling.c.set_at > therapist_profiles.c.source_timestamp,
                therapist_cooling.c.next_contact_allowed_on,
            ),
            else_=None,
        )
        rows = _json_rows(
            self._connection,
            select(
                therapist_profiles.c.id,
                newer_cooling.label("cooling"),
                *_fields(therapist_profiles, _THERAPIST_MATCH_FIELDS),
            )
            .select_from(
                therapist_profiles.outerjoin(
                    therapist_cooling, therapist_cooling.c.therapist_id == therapist_profiles.c.id
                )
            )
            .where(*conditions),
        )
        open_rows = _json_rows(
            self._connection,
            select(bundles.c.therapist_id, bundles.c.practice_key).where(bundles.c.status.in_(OPEN)),
        )
        open_therapists = {uuid.UUID(therapist_id) for therapist_id, _ in open_rows}
        open_practices = {practice for _, practice in open_rows}
        candidates = []
        for raw_id, cooling, *values in rows:
            data = _profile(_THERAPIST_MATCH_FIELDS, values)
            therapist_id = uuid.UUID(raw_id)
            practice = effective_practice_key(therapist_id, data.get("practice_key"))
            state = TherapistState(
                has_open_bundle=therapist_id in open_therapists or practice in open_practices,
                cooling_until=None if cooling is None else date.fromisoformat(cooling),
            )
            candidates.append(therapist_candidate(data, state))
        return candidates

    def _search_candidates(
        self, box: tuple[float, float, float, float] | None, search_ids: Sequence[uuid.UUID] | None
    ) -> list[SearchCandidate]:
        conditions: list[ColumnElement[bool] | TextClause] = [
            searches.c.status == "active",
            patient_profiles.c.data.is_not(None),
        ]
        if search_ids is not None:
            conditions.append(searches.c.id.in_(list(search_ids)))
        if box is not None:
            south, north, west, east = box
            # The patient's reach box overlaps the region's: the index patient_profiles_reach
            # (migration 0024) answers it, and it holds exactly when the patient lies within
            # their own travel limit of the box (the km limit, or a minutes limit's search
            # radius when larger: whether the minutes count is the round's decision, by flag).
            conditions.append(
                text(f"{REACH_BOX} && box(point(:west, :south), point(:east, :north))").bindparams(
                    south=south, north=north, west=west, east=east
                )
            )
        chosen = (
            select(
                searches.c.id,
                searches.c.patient_id,
                searches.c.status,
                searches.c.created_at,
                searches.c.total_requested_contacts,
                *_fields(patient_profiles, _PATIENT_MATCH_FIELDS),
            )
            .join(patient_profiles, patient_profiles.c.id == searches.c.patient_id)
            .where(*conditions)
        )
        if box is None and search_ids is None:
            return self._national_search_candidates(chosen)
        # A limited round (a region, chosen therapists or searches): the searches and their
        # bookkeeping in ONE statement, the bookkeeping restricted to the chosen searches inside
        # the database (a CTE), never by thousands of ids sent back as parameters (compiling and
        # binding those cost more than the database's work for a region).
        found = chosen.cte("found")
        # The memberships of the chosen searches and of their patients (earlier searches
        # included: the practices that contacted a patient), each joined to its bundle once.
        contacts = (
            select(
                bundle_members.c.search_id,
                bundle_members.c.patient_id,
                bundle_members.c.status.label("member_status"),
                bundles.c.status.label("bundle_status"),
                bundles.c.practice_key,
            )
            .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
            .where(
                or_(
                    bundle_members.c.search_id == any_(_ids_of(found.c.id)),
                    bundle_members.c.patient_id == any_(_ids_of(found.c.patient_id)),
                )
            )
            .cte("contacts")
        )
        rows, counts, practices, exclusions = _json_documents(
            self._connection,
            select(found),
            _counts_of(contacts.c.search_id, contacts.c.bundle_status, contacts.c.member_status)
            .where(contacts.c.search_id.in_(select(found.c.id)))
            .group_by(contacts.c.search_id),
            select(contacts.c.patient_id, _joined_practices(contacts.c.practice_key))
            .where(
                contacts.c.bundle_status != BundleStatus.DISCARDED,
                contacts.c.patient_id.in_(select(found.c.patient_id)),
            )
            .group_by(contacts.c.patient_id),
            _exclusions_statement().where(search_exclusions.c.search_id.in_(select(found.c.id))),
        )
        return _search_candidates_of(
            rows,
            _counts_by_search(counts),
            _practices_by_patient(practices),
            _exclusions_by_search(exclusions),
        )

    def _national_search_candidates(self, chosen: Select[Any]) -> list[SearchCandidate]:
        rows = _json_rows(self._connection, chosen)
        if not rows:
            return []
        ids = [row[0] for row in rows]
        everything = len(ids) >= _EVERYTHING_FROM
        counts = _json_rows(
            self._connection,
            self._all_contact_counts()
            if everything
            else _counts_statement().where(bundle_members.c.search_id.in_([uuid.UUID(i) for i in ids])),
        )
        practices = _practices_statement()
        exclusions = _exclusions_statement()
        if not everything:
            practices = practices.where(
                bundle_members.c.patient_id.in_(list({uuid.UUID(row[1]) for row in rows}))
            )
            exclusions = exclusions.where(search_exclusions.c.search_id.in_([uuid.UUID(i) for i in ids]))
        return _search_candidates_of(
            rows,
            _counts_by_search(counts),
            _practices_by_patient(_json_rows(self._connection, practices)),
            _exclusions_by_search(_json_rows(self._connection, exclusions)),
        )

    def _all_contact_counts(self) -> Select[Any]:
        """The national round's variant: one pass over every membership of active searches."""
        return (
            _counts_statement()
            .join(searches, searches.c.id == bundle_members.c.search_id)
            .where(searches.c.status == "active")
        )


def _practices_statement() -> Select[Any]:
    """patient id -> the practices that contacted them (in bundles not discarded), joined."""
    return (
        select(bundle_members.c.patient_id, _joined_practices(bundles.c.practice_key))
        .join(bundles, bundles.c.id == bundle_members.c.bundle_id)
        .where(bundles.c.status != BundleStatus.DISCARDED)
        .group_by(bundle_members.c.patient_id)
    )


def _joined_practices(practice_key: Any) -> ColumnElement[Any]:
    return func.string_agg(func.distinct(practice_key), "\x1e")


def _exclusions_statement() -> Select[Any]:
    return select(search_exclusions.c.search_id, search_exclusions.c.therapist_id)


def _counts_by_search(rows: list[list[Any]]) -> dict[str, tuple[int, int]]:
    """Keyed by the search id's text form, as the round's reads look them up."""
    return {row[0]: (row[1], row[2]) for row in rows}


def _practices_by_patient(rows: list[list[Any]]) -> dict[str, frozenset[str]]:
    return {patient_id: frozenset(joined.split("\x1e")) for patient_id, joined in rows}


def _exclusions_by_search(rows: list[list[Any]]) -> dict[str, frozenset[uuid.UUID]]:
    found: dict[str, set[uuid.UUID]] = defaultdict(set)
    for search_id, therapist_id in rows:
        found[search_id].add(uuid.UUID(therapist_id))
    return {key: frozenset(value) for key, value in found.items()}


def _search_candidates_of(
    rows: list[list[Any]],
    counts: dict[str, tuple[int, int]],
    practices: dict[str, frozenset[str]],
    exclusions: dict[str, frozenset[uuid.UUID]],
) -> list[SearchCandidate]:
    """The candidates from the search rows and their bookkeeping, looked up by the ids' text
    forms as PostgreSQL wrote them (no parsing per lookup)."""
    candidates = []
    for search_key, patient_key, status, created_at, budget, *values in rows:
        data = _profile(_PATIENT_MATCH_FIELDS, values)
        used, open_count = counts.get(search_key, (0, 0))
        state = SearchState(
            id=uuid.UUID(search_key),
            patient_id=uuid.UUID(patient_key),
            status=status,
            created_at=datetime.fromisoformat(created_at),
            contact_budget=budget,
            contacts_used=used,
            open_bundle_count=open_count,
            contacted_practices=practices.get(patient_key, frozenset()),
            excluded_therapist_ids=exclusions.get(search_key, frozenset()),
        )
        candidates.append(search_candidate(state, data))
    return candidates
