"""How simulated therapists answer the bundles the platform sends them.

When a bundle is sent (`plan_answer`): whether and when the therapist answers. Some never
answer (the bundle expires after 14 days); the others answer with their own probability after
a log-normally distributed delay, or after the reminder (day 7) with a second probability.

When they answer (`answer`), each member in turn:
- withdrawn in the meantime (placed elsewhere, withdrew): declined, unless the therapist wants
  the patient, has a place and missed the withdrawal notice: an acceptance, which the platform
  records as a conflict and answers with a follow-up bundle;
- a symptom the therapist does not treat (hidden): rejected as unsuitable (85 %);
- otherwise the therapist wants the patient with probability sigmoid(affinity + effects), the
  effects being their published symptom preferences, their hidden comfortable ages and
  distance, their main procedure and a shared non-German language. The wanted ones are
  accepted, best first, while free places last (a place opens and lapses on the therapist's
  own schedule, `world.Place`); the others are declined for capacity or for other reasons.

Random numbers come from streams keyed by the therapist (the n-th bundle a therapist gets
draws the same timing under every policy) and by the (therapist, patient) pair (the same pair
is wanted or not under every policy): common random numbers, so that policies are compared on
equal luck.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Final

from simulation.world import Arrival, SimTherapist, World
from therapy_platform.matching.domain.bundle import BundleRecord
from therapy_platform.matching.domain.bundles import MemberStatus
from therapy_platform.matching.domain.responses import MemberOutcome
from therapy_platform.platform.geography.locations import distance_km

REMINDER_AFTER: Final = timedelta(days=7)
LAST_ANSWER: Final = timedelta(days=13, hours=20)  # expiry takes bundles sent 14 days before
UNSUITABLE_REJECTION: Final = 0.85


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@dataclass(frozen=True)
class Wish:
    """What a therapist thinks of one presented patient."""

    probability: float  # of wanting them
    wanted: bool
    unsuitable: bool


@dataclass
class TherapistBehaviour:
    world: World
    seed: int
    _streams: dict[int, random.Random] = field(default_factory=dict)
    _filled: dict[int, set[int]] = field(default_factory=dict)  # therapist index -> filled place indexes
    filled_places: int = 0
    _distances: dict[tuple[int, int], float | None] = field(default_factory=dict)

    def _stream(self, therapist: SimTherapist) -> random.Random:
        stream = self._streams.get(therapist.index)
        if stream is None:
            stream = self._streams[therapist.index] = random.Random(f"{self.seed}:answers:{therapist.index}")
        return stream

    def plan_answer(self, therapist: SimTherapist, sent_at: datetime) -> datetime | None:
        """When the therapist will answer a bundle sent at `sent_at` (None: never; it expires)."""
        traits = therapist.traits
        stream = self._stream(therapist)
        first, delay, second, late = stream.random(), stream.random(), stream.random(), stream.random()
        if traits.never_answers:
            return None
        if first < traits.answer_probability:
            days = traits.delay_median_days * math.exp(1.0 * _normal(delay))
            if days < REMINDER_AFTER.days:
                return sent_at + timedelta(days=max(days, 0.02))
        if second < traits.reminder_response:
            return sent_at + REMINDER_AFTER + (LAST_ANSWER - REMINDER_AFTER) * (0.05 + 0.9 * late)
        return None

    def wish(self, therapist: SimTherapist, patient: Arrival) -> Wish:
        traits = therapist.traits
        pair = random.Random(f"{self.seed}:wish:{therapist.index}:{patient.index}")
        draw, unsuitable_draw = pair.random(), pair.random()
        if patient.symptoms & traits.unsuitable_symptoms and unsuitable_draw < UNSUITABLE_REJECTION:
            return Wish(0.0, False, True)
        probability = sigmoid(self.log_odds(therapist, patient))
        return Wish(probability, draw < probability, False)

    def log_odds(self, therapist: SimTherapist, patient: Arrival) -> float:
        traits = therapist.traits
        score = traits.affinity
        if patient.symptoms & therapist.symptom_preferences:
            score += 1.0
        if patient.symptoms & traits.unsuitable_symptoms:
            score -= 2.0
        low, high = traits.comfortable_ages
        if not low <= patient.age <= high:
            score -= 1.2
        km = self._km(therapist, patient)
        if km is not None and km > traits.comfortable_km:
            score -= 0.12 * (km - traits.comfortable_km)
        if therapist.procedures and therapist.procedures[0] in patient.procedures:
            score += 0.5
        if (patient.languages - {"de"}) & therapist.languages:
            score += 1.0
        return score

    def _km(self, therapist: SimTherapist, patient: Arrival) -> float | None:
        key = (therapist.index, patient.index)
        if key not in self._distances:
            self._distances[key] = distance_km(patient.location, therapist.location)
        return self._distances[key]

    def free_places(self, therapist: SimTherapist, at: datetime) -> list[int]:
        filled = self._filled.get(therapist.index, set())
        open_now = [
            (place.lapses, n)
            for n, place in enumerate(therapist.places)
            if place.opens <= at < place.lapses and n not in filled
        ]
        return [n for _, n in sorted(open_now)]  # the one lapsing first is given first

    def answer(
        self, therapist: SimTherapist, bundle: BundleRecord, at: datetime, patients: dict[uuid.UUID, Arrival]
    ) -> dict[uuid.UUID, MemberOutcome]:
        free = self.free_places(therapist, at)
        stream = self._stream(therapist)
        outcomes: dict[uuid.UUID, MemberOutcome] = {}
        wanted: list[tuple[float, int, uuid.UUID]] = []
        for member in bundle.members:
            patient = patients[member.patient_id]
            wish = self.wish(therapist, patient)
            missed_notice = stream.random() < therapist.traits.ignores_withdrawals
            if member.status is MemberStatus.WITHDRAWN:
                conflict = wish.wanted and free and missed_notice
                outcomes[member.search_id] = (
                    MemberOutcome.ACCEPTED if conflict else MemberOutcome.REJECTED_OTHER
                )
            elif not free:
                outcomes[member.search_id] = MemberOutcome.REJECTED_CAPACITY
            elif wish.unsuitable:
                outcomes[member.search_id] = MemberOutcome.REJECTED_UNSUITABLE
            elif wish.wanted:
                wanted.append((-wish.probability, member.position, member.search_id))
            else:
                outcomes[member.search_id] = MemberOutcome.REJECTED_OTHER
        wanted.sort()
        filled = self._filled.setdefault(therapist.index, set())
        for rank, (_, _, search_id) in enumerate(wanted):
            if rank < len(free):
                outcomes[search_id] = MemberOutcome.ACCEPTED
                filled.add(free[rank])
                self.filled_places += 1
            else:
                outcomes[search_id] = MemberOutcome.REJECTED_CAPACITY
        return outcomes

    def places_opened(self, start: datetime, end: datetime) -> int:
        return sum(
            1 for t in self.world.therapists if t.active for place in t.places if start <= place.opens < end
        )


def _normal(u: float) -> float:
    """A standard normal quantile of a uniform draw (one draw per value keeps streams aligned)."""
    return NormalDist().inv_cdf(min(max(u, 1e-9), 1 - 1e-9))
