"""The read path of learned therapist preferences (issue 17): every informative answer a
therapist gave about a presented patient, from the matching service's own schema only
(`bundles`, `bundle_members` with their responses, and the patient and therapist read models).

One set-based query counts the answers per (therapist, patient, day the bundle was sent); two
more read the few profile fields the model's features need (never names, addresses or
contacts). The features themselves are computed by the domain (`member_features`), the same
function the simulator learns with, so the deployed model and the measured one agree. An
erased patient (tombstone) still counts towards the therapist's baseline (`overall`) but has
no features; an erased therapist's answers are left out.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, text

from therapy_platform.matching.domain.candidates import (
    SearchState,
    search_candidate,
    therapist_candidate,
)
from therapy_platform.matching.domain.models import TherapistCandidate
from therapy_platform.matching.domain.preferences import INFORMATIVE, PresentedAnswers, member_features
from therapy_platform.matching.domain.responses import MemberOutcome
from therapy_platform.platform.clock import PLATFORM_TIMEZONE

S: Final = "matching_service"
_INFORMATIVE: Final = tuple(outcome.value for outcome in INFORMATIVE)
_ACCEPTED: Final = MemberOutcome.ACCEPTED.value

# The members with an informative answer, of bundles that reached the therapist. The profile
# reads repeat this condition rather than send 100,000 ids back as a parameter.
_ANSWERED: Final = f"""FROM {S}.bundle_members m
  JOIN {S}.bundles b ON b.id = m.bundle_id
 WHERE b.sent_at IS NOT NULL AND m.outcome = ANY(:informative)"""
_ANSWERS: Final = text(f"""
SELECT b.therapist_id::text AS therapist_id, m.patient_id::text AS patient_id,
       to_char((b.sent_at AT TIME ZONE '{PLATFORM_TIMEZONE}')::date, 'YYYY-MM-DD') AS sent_on,
       count(*) FILTER (WHERE m.outcome = :accepted) AS accepted, count(*) AS answered
  {_ANSWERED}
 GROUP BY 1, 2, 3
""")
_THERAPISTS: Final = text(f"""
SELECT jsonb_build_object('id', t.id::text, 'created_at', t.data -> 'created_at',
       'status', t.data -> 'status', 'location', t.data -> 'location',
       'procedures', t.data -> 'procedures', 'languages', t.data -> 'languages') AS profile
  FROM {S}.therapist_profiles t
 WHERE t.data IS NOT NULL AND t.id IN (SELECT b.therapist_id {_ANSWERED})
""")
_PATIENTS: Final = text(f"""
SELECT p.id::text AS id, jsonb_build_object('location', p.data -> 'location',
       'birth_month', p.data -> 'birth_month', 'therapy_procedures', p.data -> 'therapy_procedures',
       'languages', p.data -> 'languages', 'symptoms', p.data -> 'symptoms') AS profile
  FROM {S}.patient_profiles p
 WHERE p.data IS NOT NULL AND p.id IN (SELECT m.patient_id {_ANSWERED})
""")
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)


def read_answers(connection: Connection) -> list[PresentedAnswers]:
    params = {"accepted": _ACCEPTED, "informative": list(_INFORMATIVE)}
    rows = connection.execute(_ANSWERS, params).all()
    if not rows:
        return []
    therapists: dict[str, TherapistCandidate] = {}
    for (profile,) in connection.execute(_THERAPISTS, params):
        if profile.get("created_at") is None:
            profile = {**profile, "created_at": _EPOCH.isoformat()}
        therapists[profile["id"]] = therapist_candidate(profile)
    patients: dict[str, dict[str, Any]] = {
        row.id: row.profile for row in connection.execute(_PATIENTS, params)
    }
    # One candidate per patient (the features' patient facts do not depend on the day; the age
    # is taken on the day the bundle was sent).
    candidates = {
        patient_id: search_candidate(_state(patient_id), profile) for patient_id, profile in patients.items()
    }
    answers = []
    for row in rows:
        therapist = therapists.get(row.therapist_id)
        if therapist is None:
            continue
        search = candidates.get(row.patient_id)
        features: frozenset[str] = frozenset()
        if search is not None:
            features = member_features(therapist, search, date.fromisoformat(row.sent_on))
        answers.append(PresentedAnswers(therapist, features, int(row.accepted), int(row.answered)))
    return answers


def _state(patient_id: str) -> SearchState:
    # Only the patient's fields matter to the features; the search's own are placeholders.
    patient = uuid.UUID(patient_id)
    return SearchState(
        id=patient,
        patient_id=patient,
        status="active",
        created_at=_EPOCH,
        contact_budget=0,
    )


class SqlPreferenceAnswers:
    """The `PreferenceAnswers` port over PostgreSQL: one read-only transaction per call."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine

    def answers(self) -> list[PresentedAnswers]:
        with self._engine().connect() as connection, connection.begin():
            connection.execute(text("SET TRANSACTION READ ONLY"))
            return read_answers(connection)


__all__: Sequence[str] = ("SqlPreferenceAnswers", "read_answers")
