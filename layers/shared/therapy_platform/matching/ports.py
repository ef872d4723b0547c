"""Ports of the matching service.

Write side: one repository per aggregate or record the use cases load and save (searches,
bundles with their members, rounds, cooling periods, staff alerts, the audit log, the read
models of patients and therapists). Query side: `MatchingQueries` answers lists and details
and reads a round's inputs in bulk. Both live in the one `MatchingUnitOfWork`, so a use case
reads what it has just written and everything commits together.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Protocol

from therapy_platform.matching.domain.analytics import (
    BundleCounts,
    BundleEfficiencyQuery,
    FunnelCounts,
    OutcomeTally,
    PlacementQuery,
    PreferenceQuery,
    WaitingRow,
)
from therapy_platform.matching.domain.bundle import BundleRecord
from therapy_platform.matching.domain.bundles import Bundle, BundleQuery, StaffAlert
from therapy_platform.matching.domain.models import SearchCandidate, TherapistCandidate
from therapy_platform.matching.domain.preferences import PresentedAnswers
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
from therapy_platform.platform.ports import ProcessedEvents, UnitOfWork


class SearchRepository(Protocol):
    def add(self, search: Search) -> None:
        """Raises ConflictError when the patient has another unfinished search (a race)."""
        ...

    def get(self, search_id: uuid.UUID, *, for_update: bool = False) -> Search | None: ...

    def unfinished_of(self, patient_id: uuid.UUID) -> Search | None: ...

    def save(self, search: Search) -> None:
        """Write what changed since it was loaded (exclusions included). Raises ConflictError
        when reactivating it would give the patient a second unfinished search."""
        ...

    def add_exclusion(self, search_id: uuid.UUID, exclusion: Exclusion) -> bool:
        """Exclude a therapist without loading (or locking) the search; False when excluded
        already."""
        ...


class BundleRepository(Protocol):
    def add(self, bundles: Sequence[BundleRecord]) -> None:
        """Write new drafts with their members and give each its number."""
        ...

    def get(self, bundle_id: uuid.UUID, *, for_update: bool = False) -> BundleRecord | None: ...

    def save(self, bundle: BundleRecord) -> None:
        """Write what changed since it was loaded (the bundle row, changed members)."""
        ...

    def with_pending_member(self, search_id: uuid.UUID) -> list[BundleRecord]:
        """Open (draft or sent) bundles in which the search is a pending member, by number."""
        ...

    def with_accepted_member(self, search_id: uuid.UUID, therapist_id: uuid.UUID) -> BundleRecord | None:
        """The therapist's bundle in which the search was accepted (earliest answer first)."""
        ...

    def drafts_of(self, therapist_id: uuid.UUID) -> list[BundleRecord]:
        """The therapist's draft bundles, locked, by number."""
        ...

    def drafts_of_practice(self, practice_key: str) -> list[BundleRecord]:
        """The draft bundles addressed to any member of the practice (its mailbox), locked, by number."""
        ...

    def sent_before(self, cutoff: datetime, *, limit: int) -> list[uuid.UUID]:
        """Sent bundles sent at or before `cutoff`, oldest first."""
        ...


class RoundRepository(Protocol):
    def add(self, round_record: RoundRecord) -> None: ...

    def finish(self, round_record: RoundRecord) -> None: ...


class CoolingRepository(Protocol):
    def extend(self, therapist_id: uuid.UUID, until: date, *, at: datetime, bundle_id: uuid.UUID) -> None:
        """Start (or lengthen, never shorten) the therapist's cooling period."""
        ...


class AlertRepository(Protocol):
    def add(self, alert: StaffAlert) -> None: ...


class AuditLog(Protocol):
    def record(self, entries: Sequence[AuditEntry]) -> None: ...


class ProfileRepository(Protocol):
    """The read models of patients and therapists (fed by their events)."""

    def apply(self, change: ProfileChange) -> bool:
        """Apply the change unless the stored copy is newer or a tombstone. Returns True when
        the row changed. (Redeliveries are caught before, by the eventId claim.)"""
        ...

    def patient(self, patient_id: uuid.UUID) -> tuple[bool, PatientProfile | None]:
        """(known, profile): unknown patients (no event yet) and erased ones (profile None)."""
        ...

    def patients(self, patient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PatientProfile]: ...

    def therapists(self, therapist_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, TherapistProfile]: ...


class MatchingQueries(Protocol):
    """Lists, details and a round's inputs, read in the unit of work's transaction."""

    def search(self, search_id: uuid.UUID, now: datetime) -> PatientSearch | None: ...

    def searches(self, query: SearchQuery, now: datetime) -> tuple[list[PatientSearch], int]: ...

    def search_history(self, search_id: uuid.UUID) -> list[SearchBundleOutcome]: ...

    def bundle(self, bundle_id: uuid.UUID, *, now: datetime, follow_up_after_days: int) -> Bundle | None: ...

    def bundles(
        self, query: BundleQuery, *, now: datetime, follow_up_after_days: int
    ) -> tuple[list[Bundle], int]: ...

    def alerts(self, *, open_only: bool, limit: int) -> list[StaffAlert]: ...

    def round_inputs(
        self,
        *,
        therapist_ids: Sequence[uuid.UUID] | None = None,
        postcode_prefix: str | None = None,
        search_ids: Sequence[uuid.UUID] | None = None,
    ) -> tuple[list[TherapistCandidate], list[SearchCandidate]]:
        """Everything a round needs. Limited rounds (therapist ids, a region) read the chosen
        therapists' whole practices and only the searches within reach of them."""
        ...


class TherapistErasure(Protocol):
    """An erased therapist's data (matching/adapters/therapist_erasure.py)."""

    def open_bundle_ids(self, therapist_id: uuid.UUID) -> list[uuid.UUID]:
        """Their draft and sent bundles, oldest first."""
        ...

    def scrub(self, therapist_id: uuid.UUID) -> int:
        """Remove their contact data from bundles, outbox, audit and alerts; returns the
        number of bundles scrubbed."""
        ...


class MatchingUnitOfWork(UnitOfWork, Protocol):
    @property
    def searches(self) -> SearchRepository: ...

    @property
    def bundles(self) -> BundleRepository: ...

    @property
    def rounds(self) -> RoundRepository: ...

    @property
    def cooling(self) -> CoolingRepository: ...

    @property
    def alerts(self) -> AlertRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def profiles(self) -> ProfileRepository: ...

    @property
    def queries(self) -> MatchingQueries: ...

    @property
    def processed_events(self) -> ProcessedEvents: ...

    @property
    def therapist_erasure(self) -> TherapistErasure: ...

    @property
    def patient_erasure(self) -> PatientErasure: ...

    def lock_bundle_creation(self) -> None:
        """Serialise bundle creation until this transaction ends: call it before reading what a
        round plans from, so concurrent rounds never double-book a practice or a search."""
        ...


class PatientErasure(Protocol):
    """Erases an erased patient's traces from the service's own records (adapters/patient_erasure.py)."""

    def erase_patient(self, patient_id: uuid.UUID) -> int:
        """Returns how many rows changed (0 on a second run)."""
        ...


class PreferenceAnswers(Protocol):
    """The answers learned therapist preferences are computed from (read only;
    `adapters/preference_answers.py`)."""

    def answers(self) -> list[PresentedAnswers]:
        """Every informative answer (accepted, rejected_unsuitable, rejected_other) of a sent
        bundle's member, grouped by therapist, patient and day sent, with the pair's features."""
        ...


class AnalyticsQueries(Protocol):
    """Figures over the service's own data (read only; `adapters/analytics.py`)."""

    def bundle_counts(self, query: BundleEfficiencyQuery) -> list[BundleCounts]:
        """One row per bundle size and one for every size together (`bundle_size` None)."""
        ...

    def preference_tallies(self, query: PreferenceQuery) -> tuple[int, list[OutcomeTally]]:
        """(groups in all, the tallies of the page's groups: totals and one per attribute value)."""
        ...

    def funnel(self, query: PlacementQuery) -> list[FunnelCounts]:
        """One row per region and month, and the total (region and month None)."""
        ...

    def waiting_longest(self, query: PlacementQuery) -> list[WaitingRow]: ...

    def preference_answers(self) -> list[PresentedAnswers]:
        """What learned preferences are computed from (as `PreferenceAnswers.answers`)."""
        ...
