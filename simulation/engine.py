"""One simulated run: a world, a policy, day by day through the platform's own use cases.

Each simulated day (times in UTC; the platform's calendar day is Berlin's):
- 05:00 expiry (`expire_all_due`: bundles sent 14 days ago expire, cooling starts);
- 06:00 the automatic round on the policy's weekdays (`run_round`, sent at once: staff are
  assumed to review the drafts the same morning); or, for the upstream policy, from 08:00 on
  working days staff pick therapists one at a time (`staff_bundle` with the six
  longest-waiting eligible searches);
- through the day, in time order: searches start (`create_search`), patients withdraw
  (`change_search` to cancelled), therapists answer (`record_response`: placements,
  exclusions, conflicts and their follow-up bundles, cooling);
- at the end of the day the invariants are checked (`invariants.py`) and the day is recorded.

The platform's code makes random ids (uuid4): a run replaces `uuid.uuid4` by a seeded one
while it runs, so that a seed gives the same ids, the same ties and the same numbers.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from simulation.behaviour import TherapistBehaviour
from simulation.invariants import CoolingLedger, Invariants
from simulation.learning import Learning
from simulation.policies import Policy
from simulation.store import SimulationStore, SimulationUnitOfWork
from simulation.world import Arrival, World
from therapy_platform.matching.domain.bundle import BundleRecord
from therapy_platform.matching.domain.bundles import (
    BundleKind,
    BundleResponseRequest,
    BundleStatus,
    MemberResponse,
    RoundRequest,
    StaffBundleRequest,
)
from therapy_platform.matching.domain.preferences import PreferenceModel
from therapy_platform.matching.domain.responses import MemberOutcome
from therapy_platform.matching.domain.round import plan_staff_bundle
from therapy_platform.matching.domain.rules import decide_practice, group_into_practices
from therapy_platform.matching.domain.searches import ContactRequest, SearchDraft, SearchPatch
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.matching.use_cases import searches as search_cases
from therapy_platform.platform.clock import platform_today

ACTOR = "simulation"
STAFF_PICKS_AT = timedelta(hours=3)  # 08:00 UTC
ROUND_AT = timedelta(hours=1)  # 06:00 UTC
STAFF_PRACTICES_PER_PICK = 20  # upstream default: each practice asked about once in 20 working days

# event priorities within one instant
_EXPIRY, _ROUND, _STAFF, _ARRIVAL, _ANSWER, _WITHDRAWAL, _END_OF_DAY = range(7)


@contextmanager
def seeded_uuids(seed: int) -> Iterator[None]:
    stream = random.Random(f"{seed}:uuid4")
    original = uuid.uuid4
    uuid.uuid4 = lambda: uuid.UUID(int=stream.getrandbits(128), version=4)
    try:
        yield
    finally:
        uuid.uuid4 = original


@dataclass
class SentBundle:
    number: int
    kind: BundleKind
    therapist_id: uuid.UUID
    size: int
    sent_at: datetime


@dataclass
class RunLog:
    """What happened, for the metrics."""

    search_of_arrival: dict[int, uuid.UUID] = field(default_factory=dict)
    placed_at: dict[uuid.UUID, datetime] = field(default_factory=dict)  # search id -> placement
    withdrawn_at: dict[uuid.UUID, datetime] = field(default_factory=dict)
    sent: list[SentBundle] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    expired: int = 0
    answered: int = 0
    rounds: int = 0
    staff_picks: int = 0
    top_ups: int = 0
    daily: list[dict[str, Any]] = field(default_factory=list)


class Simulation:
    def __init__(
        self,
        world: World,
        policy: Policy,
        *,
        full_checks: bool = False,
        on_day: Callable[[Simulation, int], None] | None = None,
    ) -> None:
        self.world = world
        self.policy = policy
        self.config = policy.config
        self.full_checks = full_checks
        self.on_day = on_day
        self.store = SimulationStore()
        self.uow = SimulationUnitOfWork(self.store)
        self.behaviour = TherapistBehaviour(world, world.spec.seed)
        self.ledger = CoolingLedger(self.config.cooling_days)
        self.invariants = Invariants(self.config, self.ledger)
        self.log = RunLog()
        self.patients: dict[uuid.UUID, Arrival] = {a.patient_id: a for a in world.arrivals}
        self._queue: list[tuple[datetime, int, int, Any]] = []
        self._serial = 0
        # Part 2 of issue 17: the learned preferences, fed by every answer, used by every round.
        self.learning = (
            Learning(PreferenceModel(threshold=policy.learned_threshold))
            if policy.learned_preferences
            else None
        )
        for therapist in world.therapists:
            self.store.add_therapist(therapist.payload)
            cooling = therapist.payload.get("next_contact_allowed_on")
            if cooling:
                until = datetime.fromisoformat(cooling).date()
                self.ledger.until[therapist.id] = until

    # ------------------------------------------------------------------ the queue

    def _push(self, at: datetime, priority: int, item: Any) -> None:
        self._serial += 1
        heapq.heappush(self._queue, (at, priority, self._serial, item))

    def run(self) -> Simulation:
        world = self.world
        with seeded_uuids(world.spec.seed):
            for arrival in world.arrivals:
                if arrival.backlog:
                    self._arrive(arrival)
                else:
                    self._push(arrival.at, _ARRIVAL, arrival)
            self._drain_sent()
            for day in range(world.spec.days):
                start = world.day_start(day)
                self._push(start, _EXPIRY, None)
                if start.weekday() in self.policy.round_weekdays:
                    self._push(start + ROUND_AT, _ROUND, None)
                if self.policy.staff_picks and start.weekday() < 5:
                    self._push(start + STAFF_PICKS_AT, _STAFF, day)
                self._push(start + timedelta(days=1) - timedelta(microseconds=1), _END_OF_DAY, day)
                while self._queue and self._queue[0][0] < start + timedelta(days=1):
                    at, priority, _, item = heapq.heappop(self._queue)
                    self._handle(at, priority, item)
        return self

    def _handle(self, at: datetime, priority: int, item: Any) -> None:
        if priority == _EXPIRY:
            self._expire(at)
        elif priority == _ROUND:
            self._round(at)
        elif priority == _STAFF:
            self._staff_picks(at, item)
        elif priority == _ARRIVAL:
            self._arrive(item)
        elif priority == _ANSWER:
            self._answer(at, item)
        elif priority == _WITHDRAWAL:
            self._withdraw(at, item)
        else:
            self._end_of_day(item)
        self._drain_sent()

    # ------------------------------------------------------------------ events

    def _arrive(self, arrival: Arrival) -> None:
        self.store.add_patient(arrival.payload)
        draft = SearchDraft(
            patient_id=arrival.patient_id, total_requested_contacts=self.policy.contact_budget
        )
        search = search_cases.create_search(self.uow, draft, actor=ACTOR, now=arrival.at).value
        self.log.search_of_arrival[arrival.index] = search.id
        if arrival.withdraws_at < self.world.end:
            self._push(arrival.withdraws_at, _WITHDRAWAL, search.id)

    def _withdraw(self, at: datetime, search_id: uuid.UUID) -> None:
        search = self.store.searches[search_id]
        if not search.unfinished:
            return
        patch = SearchPatch(status="cancelled", status_reason="patient withdrew")
        search_cases.change_search(self.uow, search_id, patch, actor=ACTOR, now=at)
        self.log.withdrawn_at[search_id] = at

    def _expire(self, at: datetime) -> None:
        expired = bundle_cases.expire_all_due(self.uow, now=at, config=self.config).value
        for bundle_id in expired:
            bundle = self.store.bundles[bundle_id]
            self.ledger.started(bundle.therapist_id, platform_today(at))
            self._learn(bundle, {m.search_id: MemberOutcome.NO_RESPONSE for m in bundle.members})
        self.log.expired += len(expired)

    def _round(self, at: datetime) -> None:
        request = RoundRequest(send_immediately=True)
        learned = self.learning.preference(at) if self.learning is not None else None
        bundle_cases.run_round(
            self.uow, request, actor=ACTOR, trigger="schedule", now=at, config=self.config, learned=learned
        )
        self.log.rounds += 1

    def _staff_picks(self, at: datetime, day: int) -> None:
        """Upstream: staff go through the eligible practices (potentially available first, then
        in an order of their own) and give each the six longest-waiting eligible searches, one
        therapist at a time, until the day's picks are made."""
        wanted = self.policy.staff_picks_per_day or math.ceil(self.world.practices / STAFF_PRACTICES_PER_PICK)
        today = platform_today(at)
        queries = self.uow.queries
        owners = []
        for members in group_into_practices(queries.therapists(None)).values():
            decision = decide_practice(members, today)
            if decision.practice is not None:
                owners.append((decision.practice.owner, members))
        order = random.Random(f"{self.world.spec.seed}:staff:{day}")
        order.shuffle(owners)
        owners.sort(key=lambda pair: not pair[0].potentially_available)
        size = min(self.policy.staff_bundle_size, self.config.max_bundle_size)
        for owner, members in owners:
            if wanted <= 0:
                break
            searches = queries.active_searches()
            plan = plan_staff_bundle(
                owner.id,
                members,
                searches,
                today,
                self.config,
                size=size,
                search_ids=[s.id for s in searches],
            )
            if plan.bundle is None:
                continue
            request = StaffBundleRequest(
                size=len(plan.bundle.members),
                search_ids=[m.search_id for m in plan.bundle.members],
                send_immediately=True,
            )
            bundle_cases.staff_bundle(self.uow, owner.id, request, actor=ACTOR, now=at, config=self.config)
            self._drain_sent()
            self.log.staff_picks += 1
            wanted -= 1

    def _answer(self, at: datetime, bundle_id: uuid.UUID) -> None:
        bundle = self.store.bundles[bundle_id]
        if bundle.status is not BundleStatus.SENT:
            return
        therapist = self.world.by_id[bundle.therapist_id]
        outcomes = self.behaviour.answer(therapist, bundle, at, self.patients)
        request = BundleResponseRequest(
            members=[MemberResponse(search_id=sid, outcome=outcome) for sid, outcome in outcomes.items()],
            responded_at=at,
        )
        recorded = bundle_cases.record_response(
            self.uow, bundle_id, request, actor=ACTOR, now=at, config=self.config
        ).value
        self.ledger.started(bundle.therapist_id, platform_today(at))
        self.log.answered += 1
        self.log.outcomes.update(outcome.value for outcome in outcomes.values())
        self.log.conflicts += len(recorded.conflicts)
        for placement in recorded.placements:
            self.invariants.placed(placement.search_id, placement.patient_id)
            self.log.placed_at[placement.search_id] = placement.placed_at
        self._learn(bundle, outcomes)

    def _learn(self, bundle: BundleRecord, outcomes: dict[uuid.UUID, MemberOutcome]) -> None:
        if self.learning is not None:
            self.learning.observe(self, bundle, outcomes)

    def _drain_sent(self) -> None:
        store = self.store
        while store.newly_sent:
            bundle = store.newly_sent.pop(0)
            assert bundle.sent_at is not None
            self.invariants.sent(store, bundle)
            self.log.sent.append(
                SentBundle(
                    bundle.number, bundle.kind, bundle.therapist_id, len(bundle.members), bundle.sent_at
                )
            )
            answer_at = self.behaviour.plan_answer(self.world.by_id[bundle.therapist_id], bundle.sent_at)
            if answer_at is not None:
                self._push(answer_at, _ANSWER, bundle.id)

    def _top_up(self, at: datetime) -> None:
        """Searches that used their whole budget and still wait get `top_up` more contacts."""
        if not self.policy.top_up:
            return
        for search in list(self.store._active_searches.values()):
            used, _ = self.store.contacts(search.id)
            if used >= search.total_requested_contacts:
                request = ContactRequest(count=self.policy.top_up)
                search_cases.add_contacts(self.uow, search.id, request, actor=ACTOR, now=at)
                self.log.top_ups += 1

    def _end_of_day(self, day: int) -> None:
        self._top_up(self.world.day_start(day + 1) - timedelta(minutes=1))
        self.invariants.end_of_day(self.store, full=self.full_checks)
        active = len(self.store._active_searches)
        self.log.daily.append(
            {
                "day": day,
                "waiting": active,
                "placed": len(self.log.placed_at),
                "open_bundles": len(self.store.open_bundles()),
            }
        )
        if self.on_day is not None:
            self.on_day(self, day)
