"""The simulator's side of learned therapist preferences (issue 17 part 2): every recorded
answer is fed to the platform's pure `PreferenceModel` as it happens, and each round plans
with the model's soft filter (`run_round(..., learned=...)`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from therapy_platform.matching.domain.bundle import BundleRecord
from therapy_platform.matching.domain.candidates import SearchState, search_candidate, therapist_candidate
from therapy_platform.matching.domain.models import SearchCandidate, TherapistCandidate
from therapy_platform.matching.domain.preferences import PreferenceModel, member_features
from therapy_platform.matching.domain.responses import MemberOutcome
from therapy_platform.matching.domain.rules import LearnedPreference
from therapy_platform.platform.clock import platform_today

if TYPE_CHECKING:
    from simulation.engine import Simulation


class Learning:
    def __init__(self, model: PreferenceModel | None = None) -> None:
        self.model = model or PreferenceModel()
        self._therapists: dict[uuid.UUID, TherapistCandidate] = {}
        self.observed = 0

    def _therapist(self, simulation: Simulation, therapist_id: uuid.UUID) -> TherapistCandidate:
        found = self._therapists.get(therapist_id)
        if found is None:
            payload = simulation.store.therapist_payloads[therapist_id]
            found = self._therapists[therapist_id] = therapist_candidate(payload)
        return found

    def observe(
        self, simulation: Simulation, bundle: BundleRecord, outcomes: dict[uuid.UUID, MemberOutcome]
    ) -> None:
        therapist = self._therapist(simulation, bundle.therapist_id)
        at = bundle.answered_at or bundle.expired_at or bundle.updated_at
        today = platform_today(at)
        for member in bundle.members:
            search = simulation.store.searches[member.search_id]
            state = SearchState(
                id=search.id,
                patient_id=search.patient_id,
                status=search.status.value,
                created_at=search.created_at,
                contact_budget=search.total_requested_contacts,
            )
            candidate = search_candidate(state, simulation.store.patient_payloads[search.patient_id])
            features = member_features(therapist, candidate, today)
            self.observed += self.model.observe(therapist, features, outcomes[member.search_id])

    def preference(self, now: datetime) -> LearnedPreference:
        """The model's soft filter for one round; a pair's features are computed once per round."""
        model, today = self.model, platform_today(now)
        features: dict[tuple[uuid.UUID, uuid.UUID], frozenset[str]] = {}

        def keeps(therapist: TherapistCandidate, search: SearchCandidate) -> bool:
            key = (therapist.id, search.id)
            if key not in features:
                features[key] = member_features(therapist, search, today)
            return model.keeps(therapist, search, now, features=features[key])

        return keeps
