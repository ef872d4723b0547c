"""Hypothesis strategies for the matching engine: small worlds around Berlin where distances,
preferences and limits collide often."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from hypothesis import strategies as st

from therapy_platform.contracts.practices import hashed_practice_key, owner_name_rank, title_rank
from therapy_platform.contracts.schedule import Weekday
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.matching.domain import SearchCandidate, TherapistCandidate
from therapy_platform.platform.geography.locations import Location, LocationPrecision, TravelMode

TODAY = date(2026, 3, 2)
BASE = datetime(2025, 1, 1, tzinfo=UTC)

_known = st.builds(
    lambda lat, lon: Location.at(lat, lon, LocationPrecision.POSTCODE),
    st.floats(52.3, 52.7),
    st.floats(13.1, 13.7),
)
_near_mitte = st.builds(
    lambda lat, lon: Location.at(lat, lon, LocationPrecision.ADDRESS),
    st.floats(52.50, 52.54),
    st.floats(13.38, 13.42),
)
# Mostly known, sometimes not: unknown locations must never pass.
locations = st.one_of(_known, _known, _known, _known, st.just(Location.unknown()))
procedures = st.one_of(
    st.just(frozenset(TherapyProcedure)),
    st.frozensets(st.sampled_from(list(TherapyProcedure)), max_size=4),
)
languages = st.frozensets(st.sampled_from(["de", "en", "tr"]), min_size=1, max_size=2)
symptoms = st.frozensets(st.sampled_from(["depression", "anxiety", "trauma", "grief"]), max_size=2)
schedules = st.dictionaries(
    st.sampled_from([Weekday.MON, Weekday.TUE, Weekday.WED]),
    st.sampled_from([((480, 720),), ((720, 1080),), ((600, 660),)]),
    max_size=2,
)
uuids = st.uuids(version=4)


@st.composite
def therapists(draw: st.DrawFn, therapist_id: uuid.UUID) -> TherapistCandidate:
    email = draw(st.sampled_from([None, "praxis@mueller.example", "weiss@example.de", "team@example.de"]))
    age_min = draw(st.sampled_from([None, None, None, 18, 30]))
    offers_group = draw(st.booleans())
    return TherapistCandidate(
        id=therapist_id,
        owner_name_rank=owner_name_rank(draw(st.sampled_from(["Müller", "Weiß", "Koch", "Schmidt"])), email),
        title_rank=title_rank(draw(st.sampled_from([None, "Dr.", "Prof. Dr.", "Dipl.-Psych."]))),
        created_at=BASE + timedelta(days=draw(st.integers(0, 5))),
        status=draw(st.sampled_from(["active"] * 6 + ["blocked", "inactive"])),
        location=draw(locations),
        practice_key=hashed_practice_key(email),
        gender=draw(st.sampled_from(list(Gender))),
        next_contact_allowed_on=draw(st.sampled_from([None] * 5 + [TODAY, TODAY + timedelta(days=3)])),
        has_open_bundle=draw(st.integers(0, 7)) == 7,
        procedures=draw(procedures),
        languages=draw(languages),
        preferred_patient_gender=draw(st.sampled_from([None] * 6 + [Gender.FEMALE, Gender.MALE])),
        preferred_age_min=age_min,
        preferred_age_max=draw(st.sampled_from([None, 60])) if age_min is not None else None,
        offers_group_therapy=offers_group,
        group_only=offers_group and draw(st.integers(0, 3)) == 3,
        working_hours=draw(schedules),
        symptom_preferences=draw(symptoms),
        preferred_age_band=draw(st.sampled_from([None, (25, 45)])),
        potentially_available=draw(st.booleans()),
    )


@st.composite
def searches(draw: st.DrawFn, search_id: uuid.UUID, patient_id: uuid.UUID) -> SearchCandidate:
    group_open = draw(st.booleans())
    budget = draw(st.sampled_from([3, 1, 2, 4, 10, 0]))
    return SearchCandidate(
        id=search_id,
        patient_id=patient_id,
        created_at=BASE + timedelta(days=draw(st.integers(0, 30))),
        location=draw(locations),
        status=draw(st.sampled_from(["active"] * 6 + ["paused", "placed"])),
        birth_date=draw(st.sampled_from([None, date(1990, 5, 1), date(1950, 1, 1), date(2004, 3, 3)])),
        gender=draw(st.sampled_from(list(Gender))),
        preferred_therapist_gender=draw(st.sampled_from(["any"] * 4 + ["female", "male"])),
        therapy_procedures=draw(procedures.filter(bool)),
        languages=draw(languages),
        needs_shared_language=draw(st.integers(0, 3)) == 3,
        open_to_group_therapy=group_open,
        group_only=group_open and draw(st.integers(0, 3)) == 3,
        max_travel_km=draw(st.sampled_from([25.0, 50.0, 15.0, 5.0])),
        travel_mode=draw(st.sampled_from(list(TravelMode))),
        max_travel_minutes=draw(st.sampled_from([None, None, 45])),
        availability=draw(schedules),
        symptoms=draw(symptoms),
        contacts_used=draw(st.sampled_from([0, 0, 0, budget])),
        contact_budget=budget,
        open_bundle_count=draw(st.sampled_from([0, 0, 0, 1, 2, 3])),
    )


@st.composite
def worlds(draw: st.DrawFn, dense: bool = False) -> tuple[list[TherapistCandidate], list[SearchCandidate]]:
    """`dense`: most records eligible and close together, so that bundles actually form."""
    therapist_ids = draw(st.lists(uuids, min_size=3 if dense else 0, max_size=10, unique=True))
    all_therapists = [draw(therapists(tid)) for tid in therapist_ids]
    if dense:
        all_therapists = [
            replace(t, status="active", location=draw(_near_mitte), next_contact_allowed_on=None)
            if draw(st.integers(0, 4))
            else t
            for t in all_therapists
        ]
    search_ids = draw(st.lists(uuids, min_size=6 if dense else 0, max_size=30, unique=True))
    patient_pool = draw(st.lists(uuids, min_size=1, max_size=25, unique=True))
    practice_keys = sorted({t.practice for t in all_therapists})
    found: list[SearchCandidate] = []
    no_practice: st.SearchStrategy[frozenset[str]] = st.just(frozenset())
    some_practice = (
        st.frozensets(st.sampled_from(practice_keys), max_size=1) if practice_keys else no_practice
    )
    no_therapist: st.SearchStrategy[frozenset[uuid.UUID]] = st.just(frozenset())
    some_therapist = (
        st.frozensets(st.sampled_from(therapist_ids), max_size=1) if therapist_ids else no_therapist
    )
    for sid in search_ids:
        # mostly one search per patient, sometimes a patient with two
        patient_id = draw(st.one_of(uuids, st.sampled_from(patient_pool)))
        search = draw(searches(sid, patient_id))
        contacted = draw(st.one_of(no_practice, some_practice))
        excluded = draw(st.one_of(no_therapist, some_therapist))
        search_excluded = draw(st.one_of(no_therapist, some_therapist))
        search = replace(
            search,
            contacted_practices=contacted,
            patient_excluded_therapist_ids=excluded,
            search_excluded_therapist_ids=search_excluded,
        )
        if dense and draw(st.integers(0, 4)):
            search = replace(
                search,
                status="active",
                location=draw(_near_mitte),
                contact_budget=max(search.contact_budget, 1 + search.contacts_used),
                open_bundle_count=min(search.open_bundle_count, 1),
            )
        found.append(search)
    return all_therapists, found
