"""Reach by travel time (issue 16 section 3; docs/matching.md "Reach by travel time"): the
estimate by area density, the minutes limit behind the feature flag `travel_time_reach`, the dry
run's words, the distance API's agreement, a diverse therapist wish, and soft preferences'
own reasons for searches left out of a round."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from matching_fakes import MatchingWorld

from therapy_platform.contracts.codes import VOCABULARIES
from therapy_platform.contracts.patients import PatientSnapshot
from therapy_platform.contracts.therapy import Gender, TherapyProcedure
from therapy_platform.geocoding.domain.models import DistanceRequest
from therapy_platform.geocoding.use_cases import GeocodingService
from therapy_platform.matching.domain import Reason, SearchCandidate, SoftFilter, TherapistCandidate
from therapy_platform.matching.domain.bundles import RoundRequest
from therapy_platform.matching.domain.models import TherapistGenderWish
from therapy_platform.matching.domain.round import plan_round
from therapy_platform.matching.domain.rules import (
    SOFT_FILTER_REASONS,
    hard_constraint_failure,
    in_reach,
    not_chosen_reason,
)
from therapy_platform.matching.domain.travel import (
    apply_travel_time_reach,
    describe_reach,
    reach_detail,
    trip_minutes,
    with_travel_time_reach,
)
from therapy_platform.matching.use_cases import bundles as bundle_cases
from therapy_platform.patients.domain.patient import PatientDraft, TherapistGenderPreference
from therapy_platform.platform.feature_flags import CATALOG, FixedFlags, Flag
from therapy_platform.platform.geography.locations import (
    AreaDensity,
    Location,
    LocationPrecision,
    TravelMode,
    distance_km,
    estimate_minutes,
    reach_bound_km,
)
from therapy_platform.platform.geography.postcodes import area_density_of, postcode_directory
from therapy_platform.platform.validation import FieldValidationError

T0 = datetime(2025, 1, 1, tzinfo=UTC)
TODAY = date(2026, 3, 2)
MITTE = Location.at(52.52, 13.40, LocationPrecision.ADDRESS)

modes = st.sampled_from(list(TravelMode))
areas = st.sampled_from(list(AreaDensity))
# Points in and around Germany.
points = st.builds(
    lambda lat, lon: Location.at(lat, lon, LocationPrecision.POSTCODE),
    st.floats(min_value=47.2, max_value=55.1),
    st.floats(min_value=5.8, max_value=15.1),
)
minutes_limits = st.integers(min_value=5, max_value=240)


def therapist(n: int = 1, location: Location = MITTE, **fields: Any) -> TherapistCandidate:
    base = TherapistCandidate(
        id=uuid.UUID(int=n),
        created_at=T0,
        status="active",
        location=location,
        procedures=frozenset(TherapyProcedure),
    )
    return replace(base, **fields)


def search(n: int = 1, location: Location = MITTE, **fields: Any) -> SearchCandidate:
    base = SearchCandidate(
        id=uuid.UUID(int=1000 + n),
        patient_id=uuid.UUID(int=2000 + n),
        created_at=T0 + timedelta(days=n),
        location=location,
        birth_date=date(1990, 1, 1),
        contact_budget=5,
    )
    return replace(base, **fields)


# ------------------------------------------------------------------ the estimate


def test_area_classes_follow_postcode_density() -> None:
    postcodes = postcode_directory()
    assert area_density_of(postcodes.centroid("10117")) is AreaDensity.URBAN  # Berlin Mitte
    assert area_density_of(postcodes.centroid("80331")) is AreaDensity.URBAN  # Munich centre
    assert area_density_of(postcodes.centroid("14467")) is AreaDensity.SUBURBAN  # Potsdam
    assert area_density_of(postcodes.centroid("17309")) is AreaDensity.RURAL  # Uckermark
    assert area_density_of(Location.unknown()) is AreaDensity.SUBURBAN  # never used for reach


def test_typical_trips_by_area() -> None:
    # 10 km as the crow flies by public transport: quicker in a city than in the countryside;
    # by car the other way round.
    urban, rural = AreaDensity.URBAN, AreaDensity.RURAL
    assert estimate_minutes(10, TravelMode.TRANSIT, urban) < estimate_minutes(10, TravelMode.TRANSIT, rural)
    assert estimate_minutes(10, TravelMode.CAR, urban) > estimate_minutes(10, TravelMode.CAR, rural)
    # Urban transit, 3 km: 8 min to the stop and waiting, 3.9 route km at 18 km/h = 13 min.
    assert estimate_minutes(3, TravelMode.TRANSIT, urban) == 21


@given(st.floats(min_value=0, max_value=800), modes, areas)
def test_the_minutes_search_radius_never_cuts_off_a_reachable_trip(
    km: float, mode: TravelMode, area: AreaDensity
) -> None:
    assert km <= reach_bound_km(estimate_minutes(km, mode, area)) + 1e-9


@given(st.floats(min_value=0.001, max_value=800), areas)
def test_transit_never_beats_the_car_in_any_area(km: float, area: AreaDensity) -> None:
    assert estimate_minutes(km, TravelMode.TRANSIT, area) >= estimate_minutes(km, TravelMode.CAR, area)


@given(st.floats(min_value=0, max_value=800), st.floats(min_value=0, max_value=800), modes, areas)
def test_minutes_never_decrease_with_distance_in_any_area(
    a: float, b: float, mode: TravelMode, area: AreaDensity
) -> None:
    near, far = sorted((a, b))
    assert estimate_minutes(near, mode, area) <= estimate_minutes(far, mode, area)


# ------------------------------------------------------------------ the minutes limit and its flag


@given(points, points, minutes_limits, modes, areas, st.floats(min_value=1, max_value=200))
def test_with_the_flag_on_reach_is_exactly_the_estimate_within_the_limit(
    patient: Location, practice: Location, limit: int, mode: TravelMode, area: AreaDensity, km: float
) -> None:
    limited = search(
        location=patient, max_travel_km=km, max_travel_minutes=limit, travel_mode=mode, travel_area=area
    )
    applied = with_travel_time_reach(limited, True)
    minutes = trip_minutes(patient, practice, mode, area)
    assert minutes is not None
    assert in_reach(therapist(location=practice), applied) is (minutes <= limit)


@given(points, points, minutes_limits, modes, areas, st.floats(min_value=1, max_value=200))
def test_with_the_flag_off_the_km_limit_applies(
    patient: Location, practice: Location, limit: int, mode: TravelMode, area: AreaDensity, km: float
) -> None:
    limited = search(
        location=patient, max_travel_km=km, max_travel_minutes=limit, travel_mode=mode, travel_area=area
    )
    applied = with_travel_time_reach(limited, False)
    assert applied.max_travel_minutes is None
    assert in_reach(therapist(location=practice), applied) is (distance_km(patient, practice) <= km)


@given(points, minutes_limits, modes, areas)
def test_an_unknown_location_never_passes_a_minutes_limit(
    place: Location, limit: int, mode: TravelMode, area: AreaDensity
) -> None:
    unknown = Location.unknown()
    for patient, practice in ((unknown, place), (place, unknown)):
        applied = with_travel_time_reach(
            search(location=patient, max_travel_minutes=limit, travel_mode=mode, travel_area=area), True
        )
        assert not in_reach(therapist(location=practice), applied)
        assert trip_minutes(patient, practice, mode, area) is None
        assert reach_detail(therapist(location=practice), applied) is None


def test_the_flag_is_asked_only_for_searches_with_a_minutes_limit() -> None:
    asked: list[uuid.UUID] = []
    plain, limited = search(1), search(2, max_travel_minutes=30)

    def enabled(candidate: SearchCandidate) -> bool:
        asked.append(candidate.id)
        return True

    assert apply_travel_time_reach([plain, limited], enabled)[0] is plain
    assert asked == [limited.id]


def test_the_flag_is_wired() -> None:
    assert CATALOG[Flag.TRAVEL_TIME_REACH].wired
    assert CATALOG[Flag.TRAVEL_TIME_REACH].fallback is False


@given(
    st.lists(
        st.tuples(st.floats(min_value=-0.4, max_value=0.4), st.floats(min_value=-0.6, max_value=0.6)),
        min_size=1,
        max_size=12,
    ),
    st.integers(min_value=10, max_value=60),
    modes,
    areas,
)
def test_a_round_matches_only_therapists_within_the_minutes(
    offsets: list[tuple[float, float]], limit: int, mode: TravelMode, area: AreaDensity
) -> None:
    # Three patients at one place, each limited to `limit` minutes; practices scattered around.
    home = Location.at(52.0, 10.0, LocationPrecision.POSTCODE)
    practices = [
        therapist(n, location=Location.at(52.0 + dlat, 10.0 + dlon, LocationPrecision.POSTCODE))
        for n, (dlat, dlon) in enumerate(offsets, start=1)
    ]
    searches = [
        with_travel_time_reach(
            search(
                n,
                location=home,
                max_travel_minutes=limit,
                travel_mode=mode,
                travel_area=area,
                max_travel_km=1,
            ),
            True,
        )
        for n in range(1, 4)
    ]
    plan = plan_round(practices, searches, TODAY, explain=True)
    by_id = {t.id: t for t in practices}
    for bundle in plan.bundles:
        minutes = trip_minutes(home, by_id[bundle.therapist_id].location, mode, area)
        assert minutes is not None and minutes <= limit
    for pair in plan.pairs:
        if pair.reason is Reason.OUT_OF_REACH:
            minutes = trip_minutes(home, by_id[pair.therapist_id].location, mode, area)
            assert minutes is not None and minutes > limit
    minutes_to = {t.id: trip_minutes(home, t.location, mode, area) for t in practices}
    reachable = {tid for tid, minutes in minutes_to.items() if minutes is not None and minutes <= limit}
    # Every reachable practice got the three (each search may enter 3 bundles) or lost them to others.
    assert {b.therapist_id for b in plan.bundles} <= reachable
    assert len(plan.bundles) == min(3, len(reachable))


# ------------------------------------------------------------------ the dry run says so (use case)

PATIENT_POSTCODE = "10117"  # Berlin Mitte: urban
NEAR, FAR = "10999", "12529"  # Kreuzberg (3.6 km, 24 min), Schönefeld (18 km, 59 min)


def _world_with_three_patients(**patient: Any) -> tuple[MatchingWorld, dict[str, uuid.UUID]]:
    world = MatchingWorld()
    therapists = {code: world.therapist(code) for code in (NEAR, FAR)}
    for _ in range(3):
        world.search(postcode=PATIENT_POSTCODE, **patient)
    return world, therapists


def _dry_run(world: MatchingWorld, therapist_id: uuid.UUID, flags: FixedFlags | None) -> Any:
    return bundle_cases.run_round(
        world.uow(),
        RoundRequest(dry_run=True, therapist_ids=[therapist_id]),
        actor="test",
        trigger="api",
        now=world.now,
        flags=flags,
    ).value


def _expected_minutes(postcode: str) -> int:
    postcodes = postcode_directory()
    home, practice = postcodes.centroid(PATIENT_POSTCODE), postcodes.centroid(postcode)
    return estimate_minutes(distance_km(home, practice), TravelMode.TRANSIT, AreaDensity.URBAN)


def test_a_patient_limited_to_30_minutes_by_public_transport_and_the_dry_run_says_so() -> None:
    # km limit 1 would leave Kreuzberg out; 30 minutes by public transport keep it and leave
    # Schönefeld out, which the km limit 25 of a patient without minutes would have taken.
    world, therapists = _world_with_three_patients(
        max_travel_km=1, max_travel_minutes=30, travel_mode="transit"
    )
    near_minutes, far_minutes = _expected_minutes(NEAR), _expected_minutes(FAR)
    assert near_minutes <= 30 < far_minutes

    near = _dry_run(world, therapists[NEAR], FixedFlags())
    (bundle,) = near.bundles
    assert len(bundle.members) == 3
    assert {m.reach for m in bundle.members} == {f"≈ {near_minutes} min by public transport (limit 30)"}

    far = _dry_run(world, therapists[FAR], FixedFlags())
    assert far.bundles == []
    assert {p.reason for p in far.pairs} == {Reason.OUT_OF_REACH}
    assert {p.reach for p in far.pairs} == {describe_reach(far_minutes, 30, TravelMode.TRANSIT)}
    assert {p.reach for p in far.pairs} == {f"≈ {far_minutes} min by public transport (limit 30)"}


def test_with_the_flag_off_the_km_limit_decides_and_no_minutes_are_shown() -> None:
    world, therapists = _world_with_three_patients(
        max_travel_km=25, max_travel_minutes=30, travel_mode="transit"
    )
    off = FixedFlags(off={(Flag.TRAVEL_TIME_REACH, None)})
    far = _dry_run(world, therapists[FAR], off)
    (bundle,) = far.bundles  # 18 km: within 25 km
    assert {m.reach for m in bundle.members} == {None}
    # Without an evaluator (no flag store) the fallback is off too.
    assert len(_dry_run(world, therapists[FAR], None).bundles) == 1
    # On, the same patients are out of reach there.
    assert _dry_run(world, therapists[FAR], FixedFlags()).bundles == []
    flags = FixedFlags()
    _dry_run(world, therapists[NEAR], flags)
    assert {(flag, subject.region) for flag, subject in flags.asked} == {(Flag.TRAVEL_TIME_REACH, "10")}


def test_the_distance_api_agrees_with_the_dry_run() -> None:
    service = GeocodingService(postcodes=postcode_directory())
    for postcode in (NEAR, FAR):
        request = DistanceRequest.model_validate(
            {"from": {"postcode": PATIENT_POSTCODE}, "to": {"postcode": postcode}, "mode": "transit"}
        )
        result = service.distance(request).value
        assert result.area is AreaDensity.URBAN
        assert result.minutes == _expected_minutes(postcode)


# ------------------------------------------------------------------ patient record and event


def test_the_patient_record_takes_a_minutes_limit_and_the_event_carries_it() -> None:
    draft = PatientDraft.model_validate(
        {
            "first_name": "Petra",
            "last_name": "Muster",
            "postcode": "10117",
            "symptoms": ["depression"],
            "max_travel_minutes": 30,
            "travel_mode": "transit",
            "preferred_therapist_gender": "diverse",
        }
    )
    assert draft.max_travel_minutes == 30
    assert draft.preferred_therapist_gender is TherapistGenderPreference.DIVERSE
    for bad in (0, 4, 241):
        with pytest.raises((FieldValidationError, ValueError)):
            PatientDraft.model_validate({**draft.model_dump(mode="json"), "max_travel_minutes": bad})
    assert "max_travel_minutes" in PatientSnapshot.model_fields
    assert "diverse" in VOCABULARIES["TherapistGenderPreference"].labels


# ------------------------------------------------------------------ a diverse therapist


def test_a_patient_may_wish_for_a_diverse_therapist() -> None:
    wish = search(preferred_therapist_gender=TherapistGenderWish.DIVERSE)
    plan = plan_round(
        [
            therapist(1, gender=Gender.DIVERSE),
            therapist(2, gender=Gender.FEMALE),
            therapist(3, gender=Gender.MALE),
        ],
        [
            wish,
            search(2, preferred_therapist_gender=TherapistGenderWish.DIVERSE),
            search(3, preferred_therapist_gender=TherapistGenderWish.DIVERSE),
        ],
        TODAY,
        explain=True,
    )
    assert [b.therapist_id.int for b in plan.bundles] == [1]
    assert {p.reason for p in plan.pairs if p.therapist_id.int != 1} == {Reason.THERAPIST_GENDER_NOT_WANTED}
    from therapy_platform.matching.domain.rules import Practice

    diverse = therapist(1, gender=Gender.DIVERSE)
    practice = Practice(diverse.practice, diverse, frozenset({diverse.id}))
    assert hard_constraint_failure(practice, wish, TODAY) is None


# ------------------------------------------------------------------ soft preferences' own reasons


def test_a_search_left_out_by_a_soft_preference_gets_its_reason() -> None:
    owner = therapist(symptom_preferences=frozenset({"grief"}))
    grief = [search(n, symptoms=frozenset({"grief"})) for n in range(1, 5)]
    anxiety = [search(n, symptoms=frozenset({"anxiety"})) for n in range(5, 7)]
    plan = plan_round([owner], grief + anxiety, TODAY)
    reasons = {d.search_id.int - 1000: d.reason for d in plan.searches_left_out}
    assert reasons == {5: Reason.NOT_CHOSEN_SYMPTOM_PREFERENCES, 6: Reason.NOT_CHOSEN_SYMPTOM_PREFERENCES}


def test_a_search_crowded_out_by_longer_waiters_stays_not_chosen() -> None:
    plan = plan_round([therapist()], [search(n) for n in range(1, 9)], TODAY)
    reasons = {d.search_id.int - 1000: d.reason for d in plan.searches_left_out}
    assert reasons == {7: Reason.NOT_CHOSEN, 8: Reason.NOT_CHOSEN}


def test_an_age_band_left_out_search_names_the_age_band() -> None:
    owner = therapist(preferred_age_band=(30, 40))
    young = [search(n, birth_date=date(1990, 1, 1)) for n in range(1, 4)]  # 36
    old = search(4, birth_date=date(1950, 1, 1))
    plan = plan_round([owner], [*young, old], TODAY)
    assert {d.search_id: d.reason for d in plan.searches_left_out} == {old.id: Reason.NOT_CHOSEN_AGE_BAND}


@given(st.lists(st.sampled_from(list(SoftFilter)), max_size=6), st.integers(min_value=0, max_value=3))
def test_not_chosen_reason(rejections: list[SoftFilter], other: int) -> None:
    reason = not_chosen_reason(rejections, other)
    if other or not rejections:
        assert reason is Reason.NOT_CHOSEN
    else:
        assert reason in {SOFT_FILTER_REASONS[name] for name in rejections}
        most = max(rejections.count(name) for name in rejections)
        assert rejections.count(next(n for n, r in SOFT_FILTER_REASONS.items() if r is reason)) == most


def test_every_reason_has_both_labels() -> None:
    labels = VOCABULARIES["Reason"].labels if "Reason" in VOCABULARIES else {}
    for reason in SOFT_FILTER_REASONS.values():
        assert reason.value in labels or any(reason.value in v.labels for v in VOCABULARIES.values())


def test_the_inquiry_card_claims_nothing_about_reach_for_a_minutes_limit() -> None:
    from therapy_platform.matching.domain.profiles import PatientProfile, TherapistProfile
    from therapy_platform.matching.use_cases.bundles import patient_summary

    postcodes = postcode_directory()
    practice = TherapistProfile.from_payload(
        {
            "id": str(uuid.uuid4()),
            "status": "active",
            "postcode": NEAR,
            "location": postcodes.centroid(NEAR).model_dump(),
        }
    )
    base = {
        "id": str(uuid.uuid4()),
        "postcode": PATIENT_POSTCODE,
        "location": postcodes.centroid(PATIENT_POSTCODE).model_dump(),
    }
    by_km = PatientProfile.from_payload({**base, "max_travel_km": 1})
    by_minutes = PatientProfile.from_payload({**base, "max_travel_km": 1, "max_travel_minutes": 30})
    assert by_minutes.max_travel_minutes == 30
    assert patient_summary(by_km, practice, "P1", TODAY).within_reach is False  # 3.6 km > 1 km
    assert patient_summary(by_minutes, practice, "P1", TODAY).within_reach is None
