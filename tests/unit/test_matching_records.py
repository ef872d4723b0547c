"""Pure rules of searches and bundles: status machines, request models, the data-minimised
patient summary, distance bands and turning read-model payloads into candidates."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from therapy_platform.matching.domain.bundles import (
    BundleResponseRequest,
    BundleStatus,
    RoundRequest,
    StaffBundleRequest,
    check_bundle_transition,
    distance_band,
    member_reference,
)
from therapy_platform.matching.domain.candidates import (
    SearchState,
    TherapistState,
    search_candidate,
    therapist_candidate,
)
from therapy_platform.matching.domain.models import SearchStatus
from therapy_platform.matching.domain.profiles import PatientProfile, TherapistProfile
from therapy_platform.matching.domain.searches import SearchPatch, check_search_transition
from therapy_platform.matching.use_cases.bundles import patient_summary
from therapy_platform.platform.errors import ConflictError

ALLOWED_SEARCH = {
    (SearchStatus.ACTIVE, SearchStatus.PAUSED),
    (SearchStatus.ACTIVE, SearchStatus.PLACED),
    (SearchStatus.ACTIVE, SearchStatus.CANCELLED),
    (SearchStatus.PAUSED, SearchStatus.ACTIVE),
    (SearchStatus.PAUSED, SearchStatus.CANCELLED),
    (SearchStatus.PLACED, SearchStatus.ACTIVE),
}
ALLOWED_BUNDLE = {
    (BundleStatus.DRAFT, BundleStatus.SENT),
    (BundleStatus.DRAFT, BundleStatus.DISCARDED),
    (BundleStatus.SENT, BundleStatus.ANSWERED),
    (BundleStatus.SENT, BundleStatus.EXPIRED),
}


@given(st.sampled_from(SearchStatus), st.sampled_from(SearchStatus))
def test_search_transitions_follow_the_domain_state_machine(current: SearchStatus, new: SearchStatus) -> None:
    if (current, new) in ALLOWED_SEARCH:
        check_search_transition(current, new, reason="the place fell through")
    else:
        with pytest.raises(ConflictError) as error:
            check_search_transition(current, new, reason="x")
        assert current.value in error.value.message and new.value in error.value.message


def test_placed_back_to_active_needs_a_reason() -> None:
    with pytest.raises(ConflictError, match="only with a reason"):
        check_search_transition(SearchStatus.PLACED, SearchStatus.ACTIVE, reason=None)


@given(st.sampled_from(BundleStatus), st.sampled_from(BundleStatus))
def test_bundle_transitions_follow_the_domain_state_machine(current: BundleStatus, new: BundleStatus) -> None:
    if (current, new) in ALLOWED_BUNDLE:
        check_bundle_transition(current, new)
    else:
        with pytest.raises(ConflictError):
            check_bundle_transition(current, new)


def test_request_models_refuse_contradictions() -> None:
    with pytest.raises(ValidationError, match="schließen einander aus"):
        RoundRequest(dry_run=True, send_immediately=True)
    with pytest.raises(ValidationError):
        StaffBundleRequest(size=7)
    twice = uuid.uuid4()
    with pytest.raises(ValidationError, match="mehrfach"):
        BundleResponseRequest.model_validate(
            {"members": [{"search_id": str(twice), "outcome": "accepted"}] * 2}
        )
    with pytest.raises(ValidationError, match="Zeitzone"):
        BundleResponseRequest.model_validate(
            {
                "members": [{"search_id": str(twice), "outcome": "accepted"}],
                "responded_at": "2026-11-20T10:00:00",
            }
        )
    with pytest.raises(ValidationError, match="braucht placed_therapist_id"):
        SearchPatch(status="placed")
    with pytest.raises(ValidationError, match="mindestens eines"):
        SearchPatch()


@given(st.floats(min_value=0, max_value=1000, allow_nan=False))
def test_distance_bands_are_coarse_and_ordered(km: float) -> None:
    bands = ["up to 5 km", "5-10 km", "10-25 km", "more than 25 km"]
    band = distance_band(km)
    assert band in bands
    assert bands.index(band) == (0 if km <= 5 else 1 if km <= 10 else 2 if km <= 25 else 3)
    assert distance_band(None) == "unknown"


def test_patient_summary_carries_no_name_address_or_contact() -> None:
    profile = {
        "id": str(uuid.uuid4()),
        "first_name": "Jürgen",
        "last_name": "Weiß",
        "street": "Invalidenstraße 12",
        "email": "j@example.org",
        "phone": "030 1",
        "birth_month": "1978-03",
        "gender": "male",
        "symptoms": ["depression"],
        "previous_therapy": True,
        "location": {"latitude": 52.53, "longitude": 13.38, "precision": "postcode"},
    }
    therapist = {
        "id": str(uuid.uuid4()),
        "location": {"latitude": 52.52, "longitude": 13.40, "precision": "postcode"},
    }
    summary = patient_summary(
        PatientProfile.from_payload(profile),
        TherapistProfile.from_payload(therapist),
        member_reference(12, 3),
        date(2026, 11, 23),
    )
    text = summary.model_dump_json()
    assert summary.reference == "B12-3" and summary.age == 48 and summary.distance_band == "up to 5 km"
    for secret in ("Jürgen", "Weiß", "Invalidenstraße", "j@example.org", "030 1"):
        assert secret not in text


def test_candidates_from_read_model_payloads() -> None:
    therapist_id = uuid.uuid4()
    therapist = therapist_candidate(
        {
            "id": str(therapist_id),
            "last_name": "Schäfer",
            "created_at": "2026-01-01T00:00:00Z",
            "status": "active",
            "email": "praxis@schaefer.de",
            "practice_key": "praxis@schaefer.de",
            "procedures": ["VT"],
            "working_hours": {"mon": ["08:00-12:00"]},
            "next_contact_allowed_on": "2026-12-01",
            "location": {"latitude": 52.5, "longitude": 13.4, "precision": "postcode"},
        },
        TherapistState(has_open_bundle=True, cooling_until=date(2027, 1, 1)),
    )
    assert therapist.id == therapist_id and therapist.has_open_bundle
    assert therapist.next_contact_allowed_on == date(2027, 1, 1)  # matching's newer cooling wins
    assert therapist.working_hours and therapist.location.is_known
    search = search_candidate(
        SearchState(
            id=uuid.uuid4(),
            patient_id=uuid.uuid4(),
            status="active",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            contact_budget=10,
        ),
        {"languages": ["tr"], "location": {"latitude": None, "longitude": None, "precision": "unknown"}},
    )
    assert search.needs_shared_language and not search.location.is_known
    unready = PatientProfile.from_payload(
        {"id": str(uuid.uuid4()), "location": {"precision": "unknown"}, "symptoms": []}
    )
    problems = unready.readiness_problems()
    assert len(problems) == 3
