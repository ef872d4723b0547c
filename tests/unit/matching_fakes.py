"""In-memory implementations of the matching service's ports, for fast unit tests of its use
cases and handlers. One `MatchingDatabase` holds the committed state; a unit of work works on a
copy and commits it back (leaving without commit rolls back), then runs the after-commit hooks
like the SQL unit of work. The queries answer as the SQL ones do (filters, order, paging, the
bounding box of limited rounds), so tests written against these fakes hold for PostgreSQL."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from therapy_platform.contracts.patients import birth_month_of
from therapy_platform.contracts.practices import hashed_practice_key, owner_name_rank, title_rank
from therapy_platform.matching.bootstrap import MatchingService
from therapy_platform.matching.domain.bundle import BundleRecord
from therapy_platform.matching.domain.bundles import (
    Bundle,
    BundleQuery,
    BundleStatus,
    MemberStatus,
    StaffAlert,
    bundle_reference,
)
from therapy_platform.matching.domain.candidates import (
    SearchState,
    TherapistState,
    effective_practice_key,
    search_candidate,
    therapist_candidate,
)
from therapy_platform.matching.domain.models import SearchCandidate, SearchStatus, TherapistCandidate
from therapy_platform.matching.domain.profiles import PatientProfile, TherapistProfile
from therapy_platform.matching.domain.read_models import ProfileChange, ProfileKind
from therapy_platform.matching.domain.records import AuditEntry, RoundRecord
from therapy_platform.matching.domain.search import Search
from therapy_platform.matching.domain.searches import (
    Exclusion,
    PatientSearch,
    SearchBundleOutcome,
    SearchDraft,
    SearchQuery,
)
from therapy_platform.matching.use_cases.searches import create_search
from therapy_platform.platform.errors import ConflictError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.geography.locations import MAX_GEODESIC_KM_PER_MINUTE
from therapy_platform.platform.geography.postcodes import postcode_directory
from therapy_platform.platform.unit_of_work import AfterCommitHooks, RecordingOutbox

_DEG_LAT_PER_KM = 1 / 110.5
_DEG_LON_PER_KM = 1 / 60.0


@dataclass
class StoredProfile:
    data: dict[str, Any] | None  # None: tombstone
    source_event_id: str
    source_timestamp: datetime


@dataclass
class Cooling:
    until: date
    set_at: datetime
    bundle_id: uuid.UUID


@dataclass
class MatchingDatabase:
    searches: dict[uuid.UUID, Search] = field(default_factory=dict)
    bundles: dict[uuid.UUID, BundleRecord] = field(default_factory=dict)
    rounds: dict[uuid.UUID, RoundRecord] = field(default_factory=dict)
    cooling: dict[uuid.UUID, Cooling] = field(default_factory=dict)
    alerts: list[StaffAlert] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    profiles: dict[ProfileKind, dict[uuid.UUID, StoredProfile]] = field(
        default_factory=lambda: {kind: {} for kind in ProfileKind}
    )
    processed_events: dict[uuid.UUID, str] = field(default_factory=dict)
    outbox: list[tuple[str, EventEnvelope]] = field(default_factory=list)
    last_number: int = 0

    def events(self, event_type: str | None = None) -> list[EventEnvelope]:
        return [e for _, e in self.outbox if event_type in (None, e.event_type)]

    def live_profile(self, kind: ProfileKind, entity_id: uuid.UUID) -> dict[str, Any] | None:
        stored = self.profiles[kind].get(entity_id)
        return None if stored is None else stored.data


# ---------------------------------------------------------------------------------- write side


class InMemorySearches:
    def __init__(self, db: MatchingDatabase) -> None:
        self._db = db

    def _unique(self, search: Search) -> None:
        if search.unfinished and any(
            other.id != search.id and other.patient_id == search.patient_id and other.unfinished
            for other in self._db.searches.values()
        ):
            raise ConflictError(
                f"patient {search.patient_id} already has an unfinished search",
                details={"patient_id": str(search.patient_id)},
            )

    def add(self, search: Search) -> None:
        self._unique(search)
        self._db.searches[search.id] = copy.deepcopy(search)

    def get(self, search_id: uuid.UUID, *, for_update: bool = False) -> Search | None:
        return copy.deepcopy(self._db.searches.get(search_id))

    def unfinished_of(self, patient_id: uuid.UUID) -> Search | None:
        found = [s for s in self._db.searches.values() if s.patient_id == patient_id and s.unfinished]
        return copy.deepcopy(found[0]) if found else None

    def save(self, search: Search) -> None:
        self._unique(search)
        self._db.searches[search.id] = copy.deepcopy(search)

    def add_exclusion(self, search_id: uuid.UUID, exclusion: Exclusion) -> bool:
        return self._db.searches[search_id].exclude(exclusion)


class InMemoryBundles:
    def __init__(self, db: MatchingDatabase) -> None:
        self._db = db

    def _by_number(self, bundles: Iterable[BundleRecord]) -> list[BundleRecord]:
        return [copy.deepcopy(b) for b in sorted(bundles, key=lambda b: b.number)]

    def add(self, bundles: Sequence[BundleRecord]) -> None:
        for bundle in bundles:
            open_in_practice = any(
                other.is_open and other.practice_key == bundle.practice_key
                for other in self._db.bundles.values()
            )
            assert not open_in_practice, "bundles_one_open_per_practice"
            self._db.last_number += 1
            bundle.number = self._db.last_number
            self._db.bundles[bundle.id] = copy.deepcopy(bundle)

    def get(self, bundle_id: uuid.UUID, *, for_update: bool = False) -> BundleRecord | None:
        return copy.deepcopy(self._db.bundles.get(bundle_id))

    def save(self, bundle: BundleRecord) -> None:
        self._db.bundles[bundle.id] = copy.deepcopy(bundle)

    def with_pending_member(self, search_id: uuid.UUID) -> list[BundleRecord]:
        return self._by_number(
            b
            for b in self._db.bundles.values()
            if b.is_open and any(m.search_id == search_id and m.pending for m in b.members)
        )

    def with_accepted_member(self, search_id: uuid.UUID, therapist_id: uuid.UUID) -> BundleRecord | None:
        found = [
            (m.responded_at or datetime.max, b)
            for b in self._db.bundles.values()
            if b.therapist_id == therapist_id
            for m in b.members
            if m.search_id == search_id and m.status is MemberStatus.ACCEPTED
        ]
        return copy.deepcopy(min(found, key=lambda pair: pair[0])[1]) if found else None

    def drafts_of(self, therapist_id: uuid.UUID) -> list[BundleRecord]:
        return self._by_number(
            b
            for b in self._db.bundles.values()
            if b.therapist_id == therapist_id and b.status is BundleStatus.DRAFT
        )

    def drafts_of_practice(self, practice_key: str) -> list[BundleRecord]:
        return self._by_number(
            b
            for b in self._db.bundles.values()
            if b.practice_key == practice_key and b.status is BundleStatus.DRAFT
        )

    def sent_before(self, cutoff: datetime, *, limit: int) -> list[uuid.UUID]:
        due = [
            b
            for b in self._db.bundles.values()
            if b.status is BundleStatus.SENT and b.sent_at is not None and b.sent_at <= cutoff
        ]
        return [b.id for b in sorted(due, key=lambda b: (b.sent_at, b.number))][:limit]


class InMemoryRecords:
    """Rounds, cooling periods, staff alerts and the audit log."""

    def __init__(self, db: MatchingDatabase) -> None:
        self._db = db

    def add(self, item: RoundRecord | StaffAlert) -> None:
        if isinstance(item, RoundRecord):
            self._db.rounds[item.id] = copy.deepcopy(item)
        else:
            self._db.alerts.append(item)

    def finish(self, round_record: RoundRecord) -> None:
        self._db.rounds[round_record.id] = copy.deepcopy(round_record)

    def extend(self, therapist_id: uuid.UUID, until: date, *, at: datetime, bundle_id: uuid.UUID) -> None:
        current = self._db.cooling.get(therapist_id)
        longest = max(until, current.until) if current else until
        self._db.cooling[therapist_id] = Cooling(longest, at, bundle_id)

    def record(self, entries: Sequence[AuditEntry]) -> None:
        self._db.audit.extend(entries)


class InMemoryProfiles:
    def __init__(self, db: MatchingDatabase) -> None:
        self._db = db

    def apply(self, change: ProfileChange) -> bool:
        table = self._db.profiles[change.kind]
        entity = uuid.UUID(change.entity_id)
        stored = table.get(entity)
        if stored is not None and (stored.data is None or stored.source_timestamp >= change.occurred_at):
            return False  # older than the copy, or after a tombstone
        table[entity] = StoredProfile(copy.deepcopy(change.data), change.event_id, change.occurred_at)
        return True

    def patient(self, patient_id: uuid.UUID) -> tuple[bool, PatientProfile | None]:
        stored = self._db.profiles[ProfileKind.PATIENT].get(patient_id)
        if stored is None:
            return False, None
        return True, None if stored.data is None else PatientProfile.from_payload(stored.data)

    def patients(self, patient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PatientProfile]:
        found = {i: self._db.live_profile(ProfileKind.PATIENT, i) for i in set(patient_ids)}
        return {i: PatientProfile.from_payload(data) for i, data in found.items() if data is not None}

    def therapists(self, therapist_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, TherapistProfile]:
        found = {i: self._db.live_profile(ProfileKind.THERAPIST, i) for i in set(therapist_ids)}
        return {i: TherapistProfile.from_payload(data) for i, data in found.items() if data is not None}


class InMemoryProcessedEvents:
    def __init__(self, db: MatchingDatabase) -> None:
        self._db = db

    def first_time(self, event_id: uuid.UUID, consumer: str, at: datetime) -> bool:
        if event_id in self._db.processed_events:
            return False
        self._db.processed_events[event_id] = consumer
        return True


class InMemoryOutbox:
    def __init__(self, db: MatchingDatabase) -> None:
        self._db = db

    def add(self, key: str, envelope: EventEnvelope) -> None:
        self._db.outbox.append((key, envelope))

    def add_many(self, events: Sequence[tuple[str, EventEnvelope]]) -> None:
        self._db.outbox.extend(events)


# ---------------------------------------------------------------------------------- query side


class InMemoryQueries:
    def __init__(self, db: MatchingDatabase) -> None:
        self._db = db

    def _counts(self, search_id: uuid.UUID) -> tuple[int, int]:
        used = open_bundles = 0
        for bundle in self._db.bundles.values():
            for member in bundle.members:
                if member.search_id != search_id:
                    continue
                used += bundle.status is not BundleStatus.DISCARDED
                open_bundles += bundle.is_open and member.pending
        return used, open_bundles

    def _view(self, search: Search, now: datetime) -> PatientSearch:
        used, open_bundles = self._counts(search.id)
        return search.view(contacts_used=used, open_bundles=open_bundles, now=now)

    def search(self, search_id: uuid.UUID, now: datetime) -> PatientSearch | None:
        search = self._db.searches.get(search_id)
        return None if search is None else self._view(search, now)

    def searches(self, query: SearchQuery, now: datetime) -> tuple[list[PatientSearch], int]:
        def matches(search: Search) -> bool:
            patient = self._db.live_profile(ProfileKind.PATIENT, search.patient_id) or {}
            return (
                (query.status is None or search.status == query.status)
                and (query.patient_id is None or search.patient_id == query.patient_id)
                and (
                    query.waiting_longer_than_days is None
                    or search.created_at < now - timedelta(days=query.waiting_longer_than_days)
                )
                and (
                    query.postcode_prefix is None
                    or str(patient.get("postcode") or "").startswith(query.postcode_prefix)
                )
            )

        found = sorted((s for s in self._db.searches.values() if matches(s)), key=lambda s: s.id)
        name = query.sort.lstrip("-")
        found.sort(key=lambda s: getattr(s, name), reverse=query.sort.startswith("-"))
        page = found[query.offset : query.offset + query.limit]
        return [self._view(s, now) for s in page], len(found)

    def search_history(self, search_id: uuid.UUID) -> list[SearchBundleOutcome]:
        rows = [
            (b, m)
            for b in sorted(self._db.bundles.values(), key=lambda b: (b.created_at, b.number))
            for m in b.members
            if m.search_id == search_id
        ]
        return [
            SearchBundleOutcome(
                bundle_id=b.id,
                reference=bundle_reference(b.number),
                therapist_id=b.therapist_id,
                bundle_status=b.status.value,
                member_status=m.status.value,
                outcome=m.outcome.value if m.outcome else None,
                created_at=b.created_at,
                sent_at=b.sent_at,
                responded_at=m.responded_at,
            )
            for b, m in rows
        ]

    def bundle(self, bundle_id: uuid.UUID, *, now: datetime, follow_up_after_days: int) -> Bundle | None:
        found = self._db.bundles.get(bundle_id)
        return (
            None
            if found is None
            else found.view(needs_follow_up=found.needs_follow_up(now, follow_up_after_days))
        )

    def bundles(
        self, query: BundleQuery, *, now: datetime, follow_up_after_days: int
    ) -> tuple[list[Bundle], int]:
        def matches(bundle: BundleRecord) -> bool:
            therapist = self._db.live_profile(ProfileKind.THERAPIST, bundle.therapist_id) or {}
            return (
                (query.status is None or bundle.status == query.status)
                and (query.therapist_id is None or bundle.therapist_id == query.therapist_id)
                and (
                    query.needs_follow_up is None
                    or bundle.needs_follow_up(now, follow_up_after_days) == query.needs_follow_up
                )
                and (query.search_id is None or any(m.search_id == query.search_id for m in bundle.members))
                and (
                    query.postcode_prefix is None
                    or str(therapist.get("postcode") or "").startswith(query.postcode_prefix)
                )
            )

        found = sorted((b for b in self._db.bundles.values() if matches(b)), key=lambda b: b.number)
        name = query.sort.lstrip("-")
        present = [b for b in found if getattr(b, name) is not None]
        missing = [b for b in found if getattr(b, name) is None]
        ordered = (
            sorted(present, key=lambda b: getattr(b, name), reverse=query.sort.startswith("-")) + missing
        )
        page = ordered[query.offset : query.offset + query.limit]
        return [b.view(needs_follow_up=b.needs_follow_up(now, follow_up_after_days)) for b in page], len(
            found
        )

    def alerts(self, *, open_only: bool, limit: int) -> list[StaffAlert]:
        found = [a for a in self._db.alerts if not open_only or a.resolved_at is None]
        found.sort(key=lambda a: str(a.id))
        found.sort(key=lambda a: a.created_at, reverse=True)
        return found[:limit]

    # ------------------------------------------------------------------ round inputs

    def round_inputs(
        self,
        *,
        therapist_ids: Sequence[uuid.UUID] | None = None,
        postcode_prefix: str | None = None,
        search_ids: Sequence[uuid.UUID] | None = None,
    ) -> tuple[list[TherapistCandidate], list[SearchCandidate]]:
        therapists = self._therapists(therapist_ids, postcode_prefix)
        limited = therapist_ids is not None or postcode_prefix is not None
        located = [t.location for t in therapists if t.status == "active" and t.location.is_known]
        if limited and not located:
            return therapists, []
        box = None
        if limited:
            lats = [loc.latitude for loc in located if loc.latitude is not None]
            lons = [loc.longitude for loc in located if loc.longitude is not None]
            box = (min(lats), max(lats), min(lons), max(lons))
        return therapists, self._searches(box, search_ids)

    def _therapists(
        self, therapist_ids: Sequence[uuid.UUID] | None, postcode_prefix: str | None
    ) -> list[TherapistCandidate]:
        live = {i: s for i, s in self._db.profiles[ProfileKind.THERAPIST].items() if s.data is not None}
        if therapist_ids is not None or postcode_prefix is not None:
            chosen = {
                i: s.data
                for i, s in live.items()
                if (therapist_ids is None or i in therapist_ids)
                and (
                    postcode_prefix is None
                    or (
                        str(s.data.get("postcode") or "").startswith(postcode_prefix)  # type: ignore[union-attr]
                        and s.data.get("status") == "active"  # type: ignore[union-attr]
                    )
                )
            }
            keys = {d.get("practice_key") for d in chosen.values() if d and d.get("practice_key")}
            picked = {i for i, s in live.items() if i in chosen or (s.data or {}).get("practice_key") in keys}
        else:
            picked = {i for i, s in live.items() if (s.data or {}).get("status") == "active"}
        open_bundles = [b for b in self._db.bundles.values() if b.is_open]
        open_therapists = {b.therapist_id for b in open_bundles}
        open_practices = {b.practice_key for b in open_bundles}
        candidates = []
        for therapist_id in picked:
            stored = live[therapist_id]
            data = stored.data or {}
            practice = effective_practice_key(therapist_id, data.get("practice_key"))
            cooling = self._db.cooling.get(therapist_id)
            newer = cooling.until if cooling and cooling.set_at > stored.source_timestamp else None
            state = TherapistState(
                has_open_bundle=therapist_id in open_therapists or practice in open_practices,
                cooling_until=newer,
            )
            candidates.append(therapist_candidate(data, state))
        return candidates

    def _searches(
        self, box: tuple[float, float, float, float] | None, search_ids: Sequence[uuid.UUID] | None
    ) -> list[SearchCandidate]:
        candidates = []
        for search in self._db.searches.values():
            patient = self._db.live_profile(ProfileKind.PATIENT, search.patient_id)
            if search.status is not SearchStatus.ACTIVE or patient is None:
                continue
            if search_ids is not None and search.id not in search_ids:
                continue
            if box is not None and not _in_box(patient, box):
                continue
            used, open_count = self._counts(search.id)
            practices = frozenset(
                b.practice_key
                for b in self._db.bundles.values()
                if b.status is not BundleStatus.DISCARDED
                and any(m.patient_id == search.patient_id for m in b.members)
            )
            state = SearchState(
                id=search.id,
                patient_id=search.patient_id,
                status=search.status.value,
                created_at=search.created_at,
                contact_budget=search.total_requested_contacts,
                contacts_used=used,
                open_bundle_count=open_count,
                contacted_practices=practices,
                excluded_therapist_ids=frozenset(search.exclusions),
            )
            candidates.append(search_candidate(state, patient))
        return candidates


def _in_box(patient: dict[str, Any], box: tuple[float, float, float, float]) -> bool:
    location = patient.get("location") or {}
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if latitude is None or longitude is None:
        return False  # SQL: a NULL comparison never passes
    south, north, west, east = box
    # As the SQL reader: the km limit, or a minutes limit's search radius when larger.
    reach = max(
        float(patient.get("max_travel_km") or 25.0),
        float(patient.get("max_travel_minutes") or 0.0) * MAX_GEODESIC_KM_PER_MINUTE,
    )
    lat, lon = float(latitude), float(longitude)
    return (
        south - reach * _DEG_LAT_PER_KM <= lat <= north + reach * _DEG_LAT_PER_KM
        and west - reach * _DEG_LON_PER_KM <= lon <= east + reach * _DEG_LON_PER_KM
    )


# ---------------------------------------------------------------------------------- unit of work


class InMemoryTherapistErasure:
    """Therapist erasure on the working copy (the SQL adapter's text scrub is proven against
    PostgreSQL): open bundles, practice keys replaced, bundle.sent rows and cooling dropped."""

    def __init__(self, db: MatchingDatabase) -> None:
        self._db = db

    def open_bundle_ids(self, therapist_id: uuid.UUID) -> list[uuid.UUID]:
        found = [b for b in self._db.bundles.values() if b.therapist_id == therapist_id and b.is_open]
        return [b.id for b in sorted(found, key=lambda b: b.number)]

    def scrub(self, therapist_id: uuid.UUID) -> int:
        theirs = [b for b in self._db.bundles.values() if b.therapist_id == therapist_id]
        keys = {str(b.id) for b in theirs}
        self._db.outbox[:] = [
            (key, e) for key, e in self._db.outbox if not (e.event_type == "bundle.sent" and key in keys)
        ]
        for bundle in theirs:
            bundle.practice_key = f"therapist:{therapist_id}"
        self._db.cooling.pop(therapist_id, None)
        return len(theirs)


class InMemoryMatchingUnitOfWork(AfterCommitHooks):
    """Works on a copy of the database; `commit()` makes the copy the database."""

    def __init__(
        self, database: MatchingDatabase, *, publish: Callable[[Sequence[EventEnvelope]], None] | None = None
    ) -> None:
        self.database = database
        self.publish = publish
        self.bundle_creation_locks = 0

    def _begin(self) -> None:
        self._working = copy.deepcopy(self.database)
        working = self._working
        self.outbox = RecordingOutbox(InMemoryOutbox(working))
        self.processed_events = InMemoryProcessedEvents(working)
        self.searches = InMemorySearches(working)
        self.bundles = InMemoryBundles(working)
        records = InMemoryRecords(working)
        self.rounds = self.cooling = self.alerts = self.audit = records
        self.profiles = InMemoryProfiles(working)
        self.queries = InMemoryQueries(working)
        self.therapist_erasure = InMemoryTherapistErasure(working)
        self.patient_erasure = InMemoryPatientErasure(working)

    def __enter__(self) -> Self:
        self._reset_hooks()
        self._begin()
        return self

    def commit(self) -> None:
        self.database.__dict__.update(self._working.__dict__)
        self._after_commit()
        self._begin()  # later work in the same block runs in a new transaction

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._begin()  # what was not committed is gone

    def lock_bundle_creation(self) -> None:
        self.bundle_creation_locks += 1


# ---------------------------------------------------------------------------------- a small world

_serial = iter(range(1, 1_000_000))


def _location(postcode: str) -> dict[str, Any]:
    return postcode_directory().centroid(postcode).model_dump(mode="json")


def therapist_payload(now: datetime, postcode: str = "10115", **overrides: Any) -> dict[str, Any]:
    """A `therapist.*` payload as the therapist service publishes it (the fields matching reads)."""
    n = next(_serial)
    payload: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "salutation": "Frau",
        "gender": "female",
        "title": None,
        "first_name": "Anna",
        "last_name": f"Therapeutin{n}",
        "postcode": postcode,
        "city": "Berlin",
        "email": f"praxis{n}@example.org",
        "phone": "030 1234",
        "phone_windows": {"mon": ["08:00-09:00"]},
        "procedures": ["VT", "TP"],
        "languages": ["de"],
        "status": "active",
        "block_reason": None,
        "next_contact_allowed_on": None,
        "location": _location(postcode),
        "created_at": (now - timedelta(days=400 - n % 300)).isoformat(),
    }
    payload.update(overrides)
    # What the therapist service makes of the record (contracts/therapists.py: no name or
    # contact on the bus): booleans, the hashed practice key and the owner ranks.
    email, phone = payload.pop("email", None), payload.pop("phone", None)
    last_name, title = payload.pop("last_name", ""), payload.pop("title", None)
    for personal in ("salutation", "first_name", "city", "street", "website", "fax", "block_reason"):
        payload.pop(personal, None)
    payload["reachable_by_email"] = bool(email)
    payload["reachable_by_phone"] = bool(phone)
    payload.setdefault("owner_name_rank", owner_name_rank(last_name or "", email))
    payload.setdefault("title_rank", title_rank(title))
    if "practice_key" not in overrides:
        payload["practice_key"] = hashed_practice_key(email)
    return payload


def patient_payload(postcode: str = "10117", **overrides: Any) -> dict[str, Any]:
    """A `patient.*` payload as the patient service publishes it (the fields matching reads)."""
    n = next(_serial)
    payload: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "first_name": "Petra",
        "last_name": f"Patientin{n}",
        "gender": "female",
        "birth_date": "1990-01-01",
        "postcode": postcode,
        "city": "Berlin",
        "health_insurer": "AOK Nordost",
        "symptoms": ["depression"],
        "therapy_procedures": ["VT", "TP", "AP", "ST"],
        "status": "open",
        "location": _location(postcode),
    }
    payload.update(overrides)
    # What the patient service makes of the record (contracts/patients.py): no name, contact
    # or insurer on the bus, the birth date coarsened to its month.
    birth = payload.pop("birth_date", None)
    month = None if birth is None else birth_month_of(date.fromisoformat(birth))
    payload.setdefault("birth_month", month)
    for personal in (
        "first_name",
        "last_name",
        "city",
        "street",
        "email",
        "phone",
        "health_insurer",
        "notes",
    ):
        payload.pop(personal, None)
    return payload


@dataclass
class MatchingWorld:
    """A database, the events published after each commit, and a service built on them."""

    database: MatchingDatabase = field(default_factory=MatchingDatabase)
    published: list[EventEnvelope] = field(default_factory=list)
    now: datetime = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # a Monday morning

    def uow(self) -> InMemoryMatchingUnitOfWork:
        return InMemoryMatchingUnitOfWork(self.database, publish=self.published.extend)

    def service(self, **overrides: Any) -> MatchingService:
        return MatchingService(unit_of_work=self.uow, clock=lambda: self.now, **overrides)

    def _profile(self, kind: ProfileKind, payload: dict[str, Any]) -> None:
        stored = StoredProfile(payload, str(uuid.uuid4()), self.now - timedelta(hours=1))
        self.database.profiles[kind][uuid.UUID(payload["id"])] = stored

    def therapist(self, postcode: str = "10115", **overrides: Any) -> uuid.UUID:
        payload = therapist_payload(self.now, postcode, **overrides)
        self._profile(ProfileKind.THERAPIST, payload)
        return uuid.UUID(payload["id"])

    def patient(self, postcode: str = "10117", **overrides: Any) -> uuid.UUID:
        payload = patient_payload(postcode, **overrides)
        self._profile(ProfileKind.PATIENT, payload)
        return uuid.UUID(payload["id"])

    def search(
        self, patient_id: uuid.UUID | None = None, *, waited_days: int = 30, budget: int = 10, **patient: Any
    ) -> PatientSearch:
        patient_id = patient_id or self.patient(**patient)
        created = self.now - timedelta(days=waited_days, seconds=next(_serial))
        draft = SearchDraft(patient_id=patient_id, total_requested_contacts=budget)
        return create_search(self.uow(), draft, actor="test", now=created).value


class InMemoryPatientErasure:
    """The matching erasure's port over the in-memory records: remembers whom it erased (the
    SQL adapter's effect is tests/integration/test_erasure_everywhere.py)."""

    def __init__(self, working: Any) -> None:
        self._working = working

    def erase_patient(self, patient_id: uuid.UUID) -> int:
        erased: list[uuid.UUID] = self._working.__dict__.setdefault("erased_patients", [])
        if patient_id in erased:
            return 0
        erased.append(patient_id)
        return 1
