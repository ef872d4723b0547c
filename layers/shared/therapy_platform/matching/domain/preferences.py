"""Learned therapist preferences: how likely a therapist is to accept a presented patient,
learned from their answers, shrunk towards what their region and everyone do.

What is learned: for each therapist and each member feature (a symptom, an age band, a
distance band, a wanted procedure the therapist offers, a shared language other than German),
how often a presented patient with that feature was accepted. Only answers that say something
about the patient count: `accepted` is a success, `rejected_unsuitable` and `rejected_other`
are failures; `rejected_capacity` (no place) and `no_response` say nothing about the patient
and are ignored.

Shrinkage (hierarchical Beta-Binomial with fixed prior strengths): a feature's population
rate is a Beta(1, 1) posterior over everyone's answers; a region's rate has that as its prior
mean with `region_strength` pseudo-answers; a therapist's rate has their region's as its prior
mean with `therapist_strength` pseudo-answers:

    rate_t(f) = (therapist_strength * rate_region(f) + accepted_t(f)) / (therapist_strength + answered_t(f))

so a therapist with three answers stays close to their region, one with thirty speaks for
themself. A therapist's propensity for a patient is the mean of their rates over the patient's
features; their baseline is the same over every answer they gave.

How it is used (and only so): as the `learned_preferences` soft filter of progressive
filtering (`rules.soft_filters_for`), after every hard constraint, kept only when at least the
minimum bundle size remains. It keeps a search unless the therapist's propensity for it is
below `threshold` times their baseline. The bound on moving a patient back from waiting-time
order: a search waiting `protect_after_days` or longer always passes (the filter can pass a
patient over for at most that long); inside a bundle the order stays longest waiting first.
Pure: no I/O; the caller feeds it answers (`observe`) and asks for a predicate (`preference`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from therapy_platform.matching.domain.models import SearchCandidate, TherapistCandidate
from therapy_platform.matching.domain.responses import MemberOutcome
from therapy_platform.matching.domain.rules import LearnedPreference, age_on
from therapy_platform.platform.clock import platform_today
from therapy_platform.platform.geography.locations import MEAN_EARTH_RADIUS_KM, Location, distance_km

AGE_BANDS: Final = ((0, 29, "age:<30"), (30, 44, "age:30-44"), (45, 59, "age:45-59"), (60, 200, "age:60+"))
DISTANCE_BANDS: Final = ((5.0, "km:<5"), (10.0, "km:5-10"), (20.0, "km:10-20"), (float("inf"), "km:20+"))
_SPHERE_MARGIN: Final = 0.0075  # as platform/geography/locations.py: sphere vs ellipsoid, with room
OVERALL: Final = "overall"  # the pseudo-feature every answer has (the baseline)
INFORMATIVE: Final = {
    MemberOutcome.ACCEPTED: True,
    MemberOutcome.REJECTED_UNSUITABLE: False,
    MemberOutcome.REJECTED_OTHER: False,
}


def informative(outcome: MemberOutcome) -> bool | None:
    """True (accepted), False (declined for the patient) or None (says nothing about them)."""
    return INFORMATIVE.get(outcome)


def region_of(location: Location) -> str:
    """A coarse region of a location (a cell of half a degree, about 55 x 35 km)."""
    if location.latitude is None or location.longitude is None:
        return "unknown"
    return f"{round(location.latitude * 2) / 2:.1f}:{round(location.longitude * 2) / 2:.1f}"


def member_features(therapist: TherapistCandidate, search: SearchCandidate, today: date) -> frozenset[str]:
    """What the model learns about one presented patient, as the therapist saw them."""
    features = {f"symptom:{symptom}" for symptom in search.symptoms}
    if search.birth_date is not None:
        age = age_on(search.birth_date, today)
        features.update(label for low, high, label in AGE_BANDS if low <= age <= high)
    band = distance_band(search.location, therapist.location)
    if band is not None:
        features.add(band)
    features.update(f"procedure:{p.value}" for p in search.therapy_procedures & therapist.procedures)
    if (search.languages - {"de"}) & therapist.languages:
        features.add("language:shared")
    return frozenset(features)


@dataclass(frozen=True)
class PresentedAnswers:
    """The informative answers one therapist gave about one patient presented on one day
    (what the read path gathers from bundle members and the patient read model)."""

    therapist: TherapistCandidate
    features: frozenset[str]  # `member_features` of the pair on the day the bundle was sent
    accepted: int
    answered: int  # accepted + rejected_unsuitable + rejected_other


@dataclass(frozen=True)
class FeatureEstimate:
    """One therapist's learned acceptance for patients with one feature."""

    feature: str  # e.g. `symptom:F32`, `age:30-44`, `km:<5`, `procedure:...`, `language:shared`, `overall`
    accepted: int
    answered: int  # informative answers: accepted + rejected_unsuitable + rejected_other
    prior: float  # the region's rate the therapist's is shrunk towards
    posterior: float  # the therapist's shrunk rate (the model's estimate)


def _sphere_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (lat1, lon1, lat2, lon2))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * MEAN_EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def distance_band(a: Location, b: Location) -> str | None:
    """The distance band of two locations (None: either is unknown). The geodesic decides, as
    everywhere in matching; the spherical distance (within 0.56 % of it) answers every pair not
    within 0.75 % of a band's edge, about 30 times faster (a national read has 200,000 pairs)."""
    if a.latitude is None or a.longitude is None or b.latitude is None or b.longitude is None:
        return None
    km = _sphere_km(a.latitude, a.longitude, b.latitude, b.longitude)
    if any(abs(km - limit) <= limit * _SPHERE_MARGIN for limit, _ in DISTANCE_BANDS[:-1]):
        km = distance_km(a, b)
    return next(label for limit, label in DISTANCE_BANDS if km < limit)


@dataclass
class _Counts:
    accepted: int = 0
    answered: int = 0

    def add(self, accepted: bool) -> None:
        self.answered += 1
        self.accepted += accepted


@dataclass
class PreferenceModel:
    """Counts of informative answers at three levels; rates are computed on demand, so the
    model is up to date after every `observe` (each response event)."""

    region_strength: float = 20.0
    therapist_strength: float = 8.0
    threshold: float = 0.6
    protect_after_days: int = 60
    _population: dict[str, _Counts] = field(default_factory=dict)
    _regions: dict[tuple[str, str], _Counts] = field(default_factory=dict)
    _therapists: dict[tuple[uuid.UUID, str], _Counts] = field(default_factory=dict)
    _region_of_therapist: dict[uuid.UUID, str] = field(default_factory=dict)
    # therapist_rate's answers until the next observation (a round asks the same few thousand
    # (therapist, feature) rates for hundreds of thousands of pairs)
    _rates: dict[tuple[uuid.UUID, str], float] = field(default_factory=dict)
    _features_of: dict[uuid.UUID, set[str]] = field(default_factory=dict)  # what each has answered about

    def __post_init__(self) -> None:
        if self.region_strength <= 0 or self.therapist_strength <= 0:
            raise ValueError("prior strengths must be positive")
        if not 0 <= self.threshold <= 1 or self.protect_after_days < 0:
            raise ValueError("threshold must lie in [0, 1] and protect_after_days be >= 0")

    def observe(self, therapist: TherapistCandidate, features: Iterable[str], outcome: MemberOutcome) -> bool:
        """Learn from one member's answer; False when the outcome says nothing about the patient."""
        accepted = informative(outcome)
        if accepted is None:
            return False
        region = region_of(therapist.location)
        self._region_of_therapist[therapist.id] = region
        self._rates.clear()
        self._features_of.setdefault(therapist.id, set()).update((OVERALL, *features))
        for feature in (OVERALL, *features):
            self._population.setdefault(feature, _Counts()).add(accepted)
            self._regions.setdefault((region, feature), _Counts()).add(accepted)
            self._therapists.setdefault((therapist.id, feature), _Counts()).add(accepted)
        return True

    # ------------------------------------------------------------------ rates

    def population_rate(self, feature: str) -> float:
        counts = self._population.get(feature) or self._population.get(OVERALL) or _Counts()
        return (1 + counts.accepted) / (2 + counts.answered)

    def region_rate(self, region: str, feature: str) -> float:
        counts = self._regions.get((region, feature), _Counts())
        prior = self.population_rate(feature)
        return (self.region_strength * prior + counts.accepted) / (self.region_strength + counts.answered)

    def therapist_rate(self, therapist: TherapistCandidate, feature: str) -> float:
        key = (therapist.id, feature)
        rate = self._rates.get(key)
        if rate is None:
            region = self._region_of_therapist.get(therapist.id) or region_of(therapist.location)
            counts = self._therapists.get(key, _Counts())
            prior = self.region_rate(region, feature)
            rate = (self.therapist_strength * prior + counts.accepted) / (
                self.therapist_strength + counts.answered
            )
            self._rates[key] = rate
        return rate

    def answers(self, therapist: TherapistCandidate) -> int:
        return self._therapists.get((therapist.id, OVERALL), _Counts()).answered

    def propensity(self, therapist: TherapistCandidate, features: Iterable[str]) -> float:
        rates = [self.therapist_rate(therapist, feature) for feature in features]
        return sum(rates) / len(rates) if rates else self.therapist_rate(therapist, OVERALL)

    # ------------------------------------------------------------------ the soft filter

    def keeps(
        self,
        therapist: TherapistCandidate,
        search: SearchCandidate,
        now: datetime,
        *,
        features: frozenset[str] | None = None,
    ) -> bool:
        """The soft filter's answer: keep the search in the therapist's bundle? (`features`:
        the pair's `member_features`, when the caller has them already.)"""
        if (now - search.created_at).days >= self.protect_after_days:
            return True
        if features is None:
            features = member_features(therapist, search, platform_today(now))
        baseline = self.therapist_rate(therapist, OVERALL)
        return self.propensity(therapist, features) >= self.threshold * baseline

    # ------------------------------------------------------------------ counts read in bulk

    def observe_counts(
        self, therapist: TherapistCandidate, features: Iterable[str], accepted: int, answered: int
    ) -> None:
        """Learn `answered` informative answers at once (`accepted` of them acceptances) about
        patients with these features: the same as that many `observe` calls."""
        if answered <= 0:
            return
        if not 0 <= accepted <= answered:
            raise ValueError("accepted must lie in [0, answered]")
        region = region_of(therapist.location)
        self._region_of_therapist[therapist.id] = region
        self._rates.clear()
        self._features_of.setdefault(therapist.id, set()).update((OVERALL, *features))
        for feature in (OVERALL, *features):
            for counts in (
                self._population.setdefault(feature, _Counts()),
                self._regions.setdefault((region, feature), _Counts()),
                self._therapists.setdefault((therapist.id, feature), _Counts()),
            ):
                counts.accepted += accepted
                counts.answered += answered

    def estimates(self, therapist_id: uuid.UUID) -> list[FeatureEstimate]:
        """What the model holds about one therapist: per feature they answered about, their
        own counts, the prior they are shrunk to (their region's rate) and the posterior."""
        region = self._region_of_therapist.get(therapist_id)
        if region is None:
            return []
        rows = []
        for feature in self._features_of.get(therapist_id, ()):
            counts = self._therapists[therapist_id, feature]
            prior = self.region_rate(region, feature)
            posterior = (self.therapist_strength * prior + counts.accepted) / (
                self.therapist_strength + counts.answered
            )
            rows.append(FeatureEstimate(feature, counts.accepted, counts.answered, prior, posterior))
        return sorted(rows, key=lambda row: (row.feature != OVERALL, row.feature))

    def preference(self, now: datetime) -> LearnedPreference:
        """The predicate a round plans with (a snapshot of nothing: it reads the live counts)."""
        return lambda therapist, search: self.keeps(therapist, search, now)


def model_from_answers(
    answers: Iterable[PresentedAnswers], model: PreferenceModel | None = None
) -> PreferenceModel:
    """A model learned from every answer given so far (built fresh whenever a round reads its
    inputs, so it reflects every response event up to that moment; nothing is cached)."""
    model = model if model is not None else PreferenceModel()
    for answer in answers:
        model.observe_counts(answer.therapist, answer.features, answer.accepted, answer.answered)
    return model
