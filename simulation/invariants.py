"""What must hold on every simulated day, checked against the simulator's own records and the
store (not against the rules' own answers): a cooling violation is judged by a ledger the
simulator keeps of every response and expiry, independent of the platform's cooling table.

- no patient (and no search) is placed twice;
- no bundle reaches a practice while one of its active members is in a cooling period started
  by an answer or an expiry (follow-up bundles after a conflict are the documented exception:
  they go to the therapist who just answered, outside the cooling period);
- no practice has two open bundles;
- automatic rounds make bundles of `min_bundle_size`..`max_bundle_size` members, staff bundles
  of 1..`max_bundle_size`;
- no search uses more contacts than its budget, nor sits in more open bundles than allowed;
- a placed search has no pending membership left.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from simulation.store import SimulationStore
from therapy_platform.matching.domain.bundle import BundleRecord
from therapy_platform.matching.domain.bundles import BundleKind
from therapy_platform.matching.domain.models import MatchingConfig, SearchStatus
from therapy_platform.platform.clock import platform_today


@dataclass
class CoolingLedger:
    """The last day of each therapist's cooling period, as the simulator saw answers and
    expiries happen (and as the therapists' records said at the start)."""

    cooling_days: int
    until: dict[uuid.UUID, date] = field(default_factory=dict)

    def started(self, therapist_id: uuid.UUID, on: date) -> None:
        end = on + timedelta(days=self.cooling_days)
        self.until[therapist_id] = max(end, self.until.get(therapist_id, end))

    def cooling_on(self, therapist_id: uuid.UUID, day: date) -> bool:
        until = self.until.get(therapist_id)
        return until is not None and until > day


@dataclass
class Invariants:
    config: MatchingConfig
    ledger: CoolingLedger
    violations: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    placed_searches: set[uuid.UUID] = field(default_factory=set)
    placed_patients: set[uuid.UUID] = field(default_factory=set)
    checked_days: int = 0

    def _fail(self, kind: str, detail: str) -> None:
        self.violations[kind] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{kind}: {detail}")

    def placed(self, search_id: uuid.UUID, patient_id: uuid.UUID) -> None:
        if search_id in self.placed_searches:
            self._fail("search_placed_twice", str(search_id))
        if patient_id in self.placed_patients:
            self._fail("patient_placed_twice", str(patient_id))
        self.placed_searches.add(search_id)
        self.placed_patients.add(patient_id)

    def sent(self, store: SimulationStore, bundle: BundleRecord) -> None:
        """A bundle just sent: cooling of its practice, its size, its members' budgets."""
        assert bundle.sent_at is not None
        day = platform_today(bundle.sent_at)
        size = len(bundle.members)
        if bundle.kind is BundleKind.ROUND:
            if not self.config.min_bundle_size <= size <= self.config.max_bundle_size:
                self._fail("round_bundle_size", f"{bundle.reference}: {size}")
        elif not 1 <= size <= self.config.max_bundle_size:
            self._fail("staff_bundle_size", f"{bundle.reference}: {size}")
        if bundle.kind is not BundleKind.FOLLOW_UP:
            for therapist_id in store.practice_members(bundle.practice_key):
                active = store.therapist_payloads[therapist_id].get("status") == "active"
                if active and self.ledger.cooling_on(therapist_id, day):
                    self._fail("cooling", f"{bundle.reference} to {bundle.practice_key} on {day}")
                    break
        for member in bundle.members:
            self._budget(store, member.search_id)

    def _budget(self, store: SimulationStore, search_id: uuid.UUID) -> None:
        search = store.searches[search_id]
        used, open_bundles = store.contacts(search_id)
        if used > search.total_requested_contacts:
            self._fail("contact_budget", f"{search_id}: {used} > {search.total_requested_contacts}")
        if open_bundles > self.config.max_open_bundles_per_search:
            self._fail("open_bundle_limit", f"{search_id}: {open_bundles}")

    def end_of_day(self, store: SimulationStore, *, full: bool) -> None:
        """The store's state after a day; `full` also walks every search (tests)."""
        self.checked_days += 1
        open_by_practice = Counter(b.practice_key for b in store.open_bundles())
        for practice, count in open_by_practice.items():
            if count > 1:
                self._fail("two_open_bundles", practice)
        if not full:
            return
        for search in store.searches.values():
            self._budget(store, search.id)
            if search.status is SearchStatus.PLACED:
                _, open_bundles = store.contacts(search.id)
                if open_bundles:
                    self._fail("placed_but_pending", str(search.id))

    @property
    def total(self) -> int:
        return sum(self.violations.values())
