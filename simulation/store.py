"""The matching service's ports for a simulation: one in-process store, indexed for speed.

The platform's use cases (`run_round`, `staff_bundle`, `record_response`, `expire_bundles`,
`create_search`, `change_search`) run on this unit of work unchanged. It answers as the
PostgreSQL adapters do (the same candidates through `domain/candidates.py`, the same counts of
used contacts and open bundles, bundles by number), with three simplifications a simulation can
afford and the tests' fakes (tests/unit/matching_fakes.py) do not make:

- no copies and no rollback: a loaded aggregate is the stored one, and a use case that raised
  would leave its changes behind. The simulator treats any exception as a bug and stops.
- limited rounds (a therapist, a region) read every active search, not only those in the
  region's bounding box: a superset, which the planner's own reach check narrows the same way.
- events are counted and handed to the after-commit hook, not stored; the audit log is counted.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Any, Self

from therapy_platform.matching.domain.bundle import BundleRecord
from therapy_platform.matching.domain.bundles import (
    Bundle,
    BundleQuery,
    BundleStatus,
    MemberStatus,
    StaffAlert,
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
from therapy_platform.matching.domain.read_models import ProfileChange
from therapy_platform.matching.domain.records import AuditEntry, RoundRecord
from therapy_platform.matching.domain.search import Search
from therapy_platform.matching.domain.searches import (
    Exclusion,
    PatientSearch,
    SearchBundleOutcome,
    SearchQuery,
)
from therapy_platform.platform.errors import ConflictError
from therapy_platform.platform.events import EventEnvelope
from therapy_platform.platform.unit_of_work import AfterCommitHooks, RecordingOutbox


@dataclass
class Cooling:
    until: date
    set_at: datetime


@dataclass
class SimulationStore:
    """The committed state of one simulated matching service."""

    therapist_payloads: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    patient_payloads: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    searches: dict[uuid.UUID, Search] = field(default_factory=dict)
    bundles: dict[uuid.UUID, BundleRecord] = field(default_factory=dict)
    cooling: dict[uuid.UUID, Cooling] = field(default_factory=dict)
    alerts: list[StaffAlert] = field(default_factory=list)
    rounds: int = 0
    audit_entries: int = 0
    events: Counter[str] = field(default_factory=Counter)
    last_number: int = 0
    # indexes (a bundle's members, therapist and practice never change in a simulation)
    _therapist_profiles: dict[uuid.UUID, TherapistProfile] = field(default_factory=dict)
    _patient_profiles: dict[uuid.UUID, PatientProfile] = field(default_factory=dict)
    _practice_members: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    _active_searches: dict[uuid.UUID, Search] = field(default_factory=dict)
    _searches_of_patient: dict[uuid.UUID, list[Search]] = field(default_factory=dict)
    _bundles_of_search: dict[uuid.UUID, list[BundleRecord]] = field(default_factory=dict)
    _bundles_of_patient: dict[uuid.UUID, list[BundleRecord]] = field(default_factory=dict)
    _bundles_of_practice: dict[str, list[BundleRecord]] = field(default_factory=dict)
    _bundles_of_therapist: dict[uuid.UUID, list[BundleRecord]] = field(default_factory=dict)
    _open: dict[uuid.UUID, BundleRecord] = field(default_factory=dict)  # draft or sent, pruned lazily
    _reported_sent: set[uuid.UUID] = field(default_factory=set)
    _candidates: dict[tuple[uuid.UUID, TherapistState], TherapistCandidate] = field(default_factory=dict)
    newly_sent: list[BundleRecord] = field(default_factory=list)  # the simulator drains it

    # ------------------------------------------------------------------ read models

    def add_therapist(self, payload: dict[str, Any]) -> None:
        therapist_id = uuid.UUID(str(payload["id"]))
        self.therapist_payloads[therapist_id] = payload
        self._therapist_profiles[therapist_id] = TherapistProfile.from_payload(payload)
        key = effective_practice_key(therapist_id, payload.get("practice_key"))
        self._practice_members.setdefault(key, []).append(therapist_id)

    def add_patient(self, payload: dict[str, Any]) -> None:
        patient_id = uuid.UUID(str(payload["id"]))
        self.patient_payloads[patient_id] = payload
        self._patient_profiles[patient_id] = PatientProfile.from_payload(payload)

    # ------------------------------------------------------------------ bookkeeping

    def contacts(self, search_id: uuid.UUID) -> tuple[int, int]:
        """(contacts used, open bundles) as the SQL query counts them."""
        used = open_bundles = 0
        for bundle in self._bundles_of_search.get(search_id, ()):
            if bundle.status is BundleStatus.DISCARDED:
                continue
            used += 1
            if bundle.is_open:
                member = bundle.member_of(search_id)
                open_bundles += member is not None and member.pending
        return used, open_bundles

    def open_bundles(self) -> list[BundleRecord]:
        for bundle_id in [b.id for b in self._open.values() if not b.is_open]:
            del self._open[bundle_id]
        return sorted(self._open.values(), key=lambda b: b.number)

    def practice_of(self, therapist_id: uuid.UUID) -> str:
        payload = self.therapist_payloads[therapist_id]
        return effective_practice_key(therapist_id, payload.get("practice_key"))

    def practice_members(self, practice_key: str) -> list[uuid.UUID]:
        return self._practice_members.get(practice_key, [])

    def bundles_of_therapist(self, therapist_id: uuid.UUID) -> list[BundleRecord]:
        return self._bundles_of_therapist.get(therapist_id, [])

    def bundles_of_search(self, search_id: uuid.UUID) -> list[BundleRecord]:
        return self._bundles_of_search.get(search_id, [])

    def _index_search(self, search: Search) -> None:
        if search.status is SearchStatus.ACTIVE:
            self._active_searches[search.id] = search
        else:
            self._active_searches.pop(search.id, None)

    def _saved_bundle(self, bundle: BundleRecord) -> None:
        if bundle.status is BundleStatus.SENT and bundle.id not in self._reported_sent:
            self._reported_sent.add(bundle.id)
            self.newly_sent.append(bundle)


# ---------------------------------------------------------------------------------- repositories


class _Searches:
    def __init__(self, store: SimulationStore) -> None:
        self._store = store

    def _unique(self, search: Search) -> None:
        others = self._store._searches_of_patient.get(search.patient_id, [])
        if search.unfinished and any(o.id != search.id and o.unfinished for o in others):
            raise ConflictError(f"patient {search.patient_id} already has an unfinished search")

    def add(self, search: Search) -> None:
        self._unique(search)
        self._store.searches[search.id] = search
        self._store._searches_of_patient.setdefault(search.patient_id, []).append(search)
        self._store._index_search(search)

    def get(self, search_id: uuid.UUID, *, for_update: bool = False) -> Search | None:
        return self._store.searches.get(search_id)

    def unfinished_of(self, patient_id: uuid.UUID) -> Search | None:
        found = [s for s in self._store._searches_of_patient.get(patient_id, []) if s.unfinished]
        return found[0] if found else None

    def save(self, search: Search) -> None:
        self._unique(search)
        self._store.searches[search.id] = search
        self._store._index_search(search)

    def add_exclusion(self, search_id: uuid.UUID, exclusion: Exclusion) -> bool:
        return self._store.searches[search_id].exclude(exclusion)


class _Bundles:
    def __init__(self, store: SimulationStore) -> None:
        self._store = store

    def add(self, bundles: Sequence[BundleRecord]) -> None:
        store = self._store
        for bundle in bundles:
            practice = store._bundles_of_practice.setdefault(bundle.practice_key, [])
            if any(other.is_open for other in practice):
                raise AssertionError(f"bundles_one_open_per_practice: {bundle.practice_key}")
            store.last_number += 1
            bundle.number = store.last_number
            store.bundles[bundle.id] = bundle
            store._open[bundle.id] = bundle
            practice.append(bundle)
            store._bundles_of_therapist.setdefault(bundle.therapist_id, []).append(bundle)
            for member in bundle.members:
                store._bundles_of_search.setdefault(member.search_id, []).append(bundle)
                store._bundles_of_patient.setdefault(member.patient_id, []).append(bundle)
            store._saved_bundle(bundle)

    def get(self, bundle_id: uuid.UUID, *, for_update: bool = False) -> BundleRecord | None:
        return self._store.bundles.get(bundle_id)

    def save(self, bundle: BundleRecord) -> None:
        self._store._saved_bundle(bundle)

    def with_pending_member(self, search_id: uuid.UUID) -> list[BundleRecord]:
        found = [
            b
            for b in self._store._bundles_of_search.get(search_id, [])
            if b.is_open and any(m.search_id == search_id and m.pending for m in b.members)
        ]
        return sorted(found, key=lambda b: b.number)

    def with_accepted_member(self, search_id: uuid.UUID, therapist_id: uuid.UUID) -> BundleRecord | None:
        found = [
            (m.responded_at or datetime.max, b.number, b)
            for b in self._store._bundles_of_search.get(search_id, [])
            if b.therapist_id == therapist_id
            for m in b.members
            if m.search_id == search_id and m.status is MemberStatus.ACCEPTED
        ]
        return min(found, key=lambda row: (row[0], row[1]))[2] if found else None

    def drafts_of(self, therapist_id: uuid.UUID) -> list[BundleRecord]:
        found = self._store._bundles_of_therapist.get(therapist_id, [])
        return sorted((b for b in found if b.status is BundleStatus.DRAFT), key=lambda b: b.number)

    def drafts_of_practice(self, practice_key: str) -> list[BundleRecord]:
        found = self._store._bundles_of_practice.get(practice_key, [])
        return sorted((b for b in found if b.status is BundleStatus.DRAFT), key=lambda b: b.number)

    def sent_before(self, cutoff: datetime, *, limit: int) -> list[uuid.UUID]:
        due = [
            b
            for b in self._store.open_bundles()
            if b.status is BundleStatus.SENT and b.sent_at is not None and b.sent_at <= cutoff
        ]
        return [b.id for b in sorted(due, key=lambda b: (b.sent_at, b.number))][:limit]


class _Records:
    """Rounds, cooling periods, staff alerts and the audit log."""

    def __init__(self, store: SimulationStore) -> None:
        self._store = store

    def add(self, item: RoundRecord | StaffAlert) -> None:
        if isinstance(item, RoundRecord):
            self._store.rounds += 1
        else:
            self._store.alerts.append(item)

    def finish(self, round_record: RoundRecord) -> None:
        pass

    def extend(self, therapist_id: uuid.UUID, until: date, *, at: datetime, bundle_id: uuid.UUID) -> None:
        current = self._store.cooling.get(therapist_id)
        longest = max(until, current.until) if current else until
        self._store.cooling[therapist_id] = Cooling(longest, at)

    def record(self, entries: Sequence[AuditEntry]) -> None:
        self._store.audit_entries += len(entries)


class _Profiles:
    def __init__(self, store: SimulationStore) -> None:
        self._store = store

    def apply(self, change: ProfileChange) -> bool:
        raise NotImplementedError("a simulation writes its read models directly")

    def patient(self, patient_id: uuid.UUID) -> tuple[bool, PatientProfile | None]:
        profile = self._store._patient_profiles.get(patient_id)
        return profile is not None, profile

    def patients(self, patient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PatientProfile]:
        profiles = self._store._patient_profiles
        return {i: profiles[i] for i in set(patient_ids) if i in profiles}

    def therapists(self, therapist_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, TherapistProfile]:
        profiles = self._store._therapist_profiles
        return {i: profiles[i] for i in set(therapist_ids) if i in profiles}


class _Processed:
    def first_time(self, event_id: uuid.UUID, consumer: str, at: datetime) -> bool:
        return True


class _CountingOutbox:
    def __init__(self, store: SimulationStore) -> None:
        self._store = store

    def add(self, key: str, envelope: EventEnvelope) -> None:
        self._store.events[envelope.event_type] += 1

    def add_many(self, events: Sequence[tuple[str, EventEnvelope]]) -> None:
        for _, envelope in events:
            self._store.events[envelope.event_type] += 1


class _Queries:
    def __init__(self, store: SimulationStore) -> None:
        self._store = store

    def search(self, search_id: uuid.UUID, now: datetime) -> PatientSearch | None:
        search = self._store.searches.get(search_id)
        if search is None:
            return None
        used, open_bundles = self._store.contacts(search_id)
        return search.view(contacts_used=used, open_bundles=open_bundles, now=now)

    def searches(self, query: SearchQuery, now: datetime) -> tuple[list[PatientSearch], int]:
        raise NotImplementedError("not used by the simulation")

    def search_history(self, search_id: uuid.UUID) -> list[SearchBundleOutcome]:
        raise NotImplementedError("not used by the simulation")

    def bundle(self, bundle_id: uuid.UUID, *, now: datetime, follow_up_after_days: int) -> Bundle | None:
        found = self._store.bundles.get(bundle_id)
        return (
            None
            if found is None
            else found.view(needs_follow_up=found.needs_follow_up(now, follow_up_after_days))
        )

    def bundles(
        self, query: BundleQuery, *, now: datetime, follow_up_after_days: int
    ) -> tuple[list[Bundle], int]:
        raise NotImplementedError("not used by the simulation")

    def alerts(self, *, open_only: bool, limit: int) -> list[StaffAlert]:
        found = [a for a in self._store.alerts if not open_only or a.resolved_at is None]
        return sorted(found, key=lambda a: a.created_at, reverse=True)[:limit]

    def round_inputs(
        self,
        *,
        therapist_ids: Sequence[uuid.UUID] | None = None,
        postcode_prefix: str | None = None,
        search_ids: Sequence[uuid.UUID] | None = None,
    ) -> tuple[list[TherapistCandidate], list[SearchCandidate]]:
        return self.therapists(therapist_ids, postcode_prefix), self.active_searches(search_ids)

    def therapists(
        self, therapist_ids: Sequence[uuid.UUID] | None, postcode_prefix: str | None = None
    ) -> list[TherapistCandidate]:
        store = self._store
        payloads = store.therapist_payloads
        if therapist_ids is None and postcode_prefix is None:
            picked = [i for i, p in payloads.items() if p.get("status") == "active"]
        else:
            chosen = [
                i
                for i, p in payloads.items()
                if (therapist_ids is None or i in therapist_ids)
                and (
                    postcode_prefix is None
                    or (
                        str(p.get("postcode") or "").startswith(postcode_prefix)
                        and p.get("status") == "active"
                    )
                )
            ]
            practices = dict.fromkeys(store.practice_of(i) for i in chosen)
            picked = [member for key in practices for member in store.practice_members(key)]
        candidates = []
        for therapist_id in picked:
            key = store.practice_of(therapist_id)
            cooling = store.cooling.get(therapist_id)
            state = TherapistState(
                has_open_bundle=any(b.is_open for b in store._bundles_of_practice.get(key, ())),
                cooling_until=cooling.until if cooling else None,
            )
            cached = store._candidates.get((therapist_id, state))
            if cached is None:
                # Same read model and state, same candidate: built once (the read models do not
                # change during a simulation).
                cached = store._candidates[(therapist_id, state)] = therapist_candidate(
                    payloads[therapist_id], state
                )
            candidates.append(cached)
        return candidates

    def active_searches(self, search_ids: Sequence[uuid.UUID] | None = None) -> list[SearchCandidate]:
        store = self._store
        wanted = None if search_ids is None else set(search_ids)
        candidates = []
        for search in store._active_searches.values():
            if wanted is not None and search.id not in wanted:
                continue
            patient = store.patient_payloads.get(search.patient_id)
            if patient is None:
                continue
            used, open_count = store.contacts(search.id)
            practices = frozenset(
                b.practice_key
                for b in store._bundles_of_patient.get(search.patient_id, ())
                if b.status is not BundleStatus.DISCARDED
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


class _NoErasure:
    def open_bundle_ids(self, therapist_id: uuid.UUID) -> list[uuid.UUID]:
        raise NotImplementedError("no erasure in a simulation")

    def scrub(self, therapist_id: uuid.UUID) -> int:
        raise NotImplementedError("no erasure in a simulation")

    def erase_patient(self, patient_id: uuid.UUID) -> int:
        raise NotImplementedError("no erasure in a simulation")


class SimulationUnitOfWork(AfterCommitHooks):
    """`MatchingUnitOfWork` over a `SimulationStore` (see the module's note on what it skips)."""

    def __init__(
        self, store: SimulationStore, *, publish: Callable[[Sequence[EventEnvelope]], None] | None = None
    ) -> None:
        self.store = store
        self.publish = publish
        self.outbox = RecordingOutbox(_CountingOutbox(store))
        self.processed_events = _Processed()
        self.searches = _Searches(store)
        self.bundles = _Bundles(store)
        records = _Records(store)
        self.rounds = self.cooling = self.alerts = self.audit = records
        self.profiles = _Profiles(store)
        self.queries = _Queries(store)
        self.therapist_erasure = self.patient_erasure = _NoErasure()

    def __enter__(self) -> Self:
        self._reset_hooks()
        self.outbox.written = []
        return self

    def commit(self) -> None:
        self._after_commit()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._discard_uncommitted()

    def lock_bundle_creation(self) -> None:
        pass
