"""Pure geo rules: geodesic distance, travel-time estimates, the distance check used by matching,
and the shipped postcode table (real data)."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from therapy_platform.geocoding.domain.models import PlaceRef
from therapy_platform.platform.geography.addresses import AddressQuery, Point
from therapy_platform.platform.geography.locations import (
    TRAVEL_PROFILES,
    Location,
    LocationPrecision,
    TravelMode,
    UnknownLocationError,
    distance_km,
    estimate_minutes,
    estimate_travel,
    geodesic_km,
    within_reach,
)
from therapy_platform.platform.geography.postcodes import PostcodeDirectory, _approx_km, postcode_directory

# Germany and a margin: where patients and therapists are.
latitudes = st.floats(min_value=47.0, max_value=55.5, allow_nan=False)
longitudes = st.floats(min_value=5.5, max_value=15.5, allow_nan=False)
known_locations = st.builds(
    Location.at,
    latitudes,
    longitudes,
    st.sampled_from([LocationPrecision.ADDRESS, LocationPrecision.POSTCODE]),
)
any_locations = st.one_of(known_locations, st.just(Location.unknown()))
modes = st.sampled_from(list(TravelMode))
distances = st.floats(min_value=0, max_value=1500, allow_nan=False)
radii = st.floats(min_value=0, max_value=1000, allow_nan=False) | st.just(math.inf)


@pytest.fixture(scope="module")
def postcodes() -> PostcodeDirectory:
    return postcode_directory()


# ------------------------------------------------------------------ postcode table (real data)


def test_table_has_every_row_and_94_unlocatable(postcodes: PostcodeDirectory) -> None:
    assert len(postcodes) == 8298
    unlocatable = set(postcodes.postcodes()) - set(postcodes.postcodes(locatable_only=True))
    assert len(unlocatable) == 94
    for postcode in unlocatable:
        assert postcode in postcodes
        assert postcodes.centroid(postcode) == Location.unknown()
        assert postcodes.centroid(postcode).needs_review


def test_leading_zeros_are_kept(postcodes: PostcodeDirectory) -> None:
    dresden = postcodes.centroid("01067")
    assert dresden.precision is LocationPrecision.POSTCODE
    assert dresden.latitude == pytest.approx(51.0575, abs=0.01)
    assert "1067" not in postcodes


def test_unlisted_postcode_is_unknown(postcodes: PostcodeDirectory) -> None:
    assert "00000" not in postcodes
    assert not postcodes.centroid("00000").is_known


def test_aachen_to_berlin_is_roughly_500_to_650_km(postcodes: PostcodeDirectory) -> None:
    km = distance_km(postcodes.centroid("52062"), postcodes.centroid("10115"))
    assert 500 <= km <= 650


def test_a_postcode_to_itself_is_zero(postcodes: PostcodeDirectory) -> None:
    here = postcodes.centroid("52062")
    estimate = estimate_travel(here, here, TravelMode.TRANSIT)
    assert (estimate.km, estimate.minutes) == (0, 0)


def test_neighbouring_postcodes_are_a_few_km_apart(postcodes: PostcodeDirectory) -> None:
    # Aachen centre and Aachen-Burtscheid.
    km = distance_km(postcodes.centroid("52062"), postcodes.centroid("52066"))
    assert 0.5 < km < 6


def test_nearest_postcode_to_a_centroid_is_itself(postcodes: PostcodeDirectory) -> None:
    for postcode in ("52062", "10115", "01067", "80331", "24937", "78462"):
        centroid = postcodes.centroid(postcode)
        assert centroid.latitude is not None and centroid.longitude is not None
        assert postcodes.nearest(centroid.latitude, centroid.longitude, within_km=25) == (postcode, 0.0)


def test_no_postcode_near_points_outside_germany(postcodes: PostcodeDirectory) -> None:
    assert postcodes.nearest(48.8566, 2.3522, within_km=25) is None  # Paris
    assert postcodes.nearest(-33.9, 151.2, within_km=25) is None  # Sydney
    assert postcodes.nearest(89.99, 0.0, within_km=25) is None


@settings(max_examples=60, deadline=None)
@given(latitudes, longitudes)
def test_nearest_agrees_with_a_full_scan(latitude: float, longitude: float) -> None:
    directory = postcode_directory()
    centroids = [(code, directory.centroid(code)) for code in directory.postcodes(locatable_only=True)]
    # Rank the whole table cheaply, then measure the winner exactly.
    _, _, best = min(
        (_approx_km(latitude, longitude, loc.latitude or 0, loc.longitude or 0), code, loc)
        for code, loc in centroids
    )
    assert best.latitude is not None and best.longitude is not None
    best_km = geodesic_km(latitude, longitude, best.latitude, best.longitude)
    found = directory.nearest(latitude, longitude, within_km=25)
    if best_km > 25.01:
        assert found is None
    elif best_km < 24.99:
        assert found is not None
        # Ties between equidistant centroids may go either way; the distance must be the minimum.
        assert found[1] == pytest.approx(best_km, abs=0.01)


# ------------------------------------------------------------------ distances


def test_distance_refuses_unknown_locations() -> None:
    here = Location.at(50.77, 6.08, LocationPrecision.POSTCODE)
    with pytest.raises(UnknownLocationError):
        distance_km(here, Location.unknown())
    with pytest.raises(UnknownLocationError):
        estimate_travel(Location.unknown(), here, TravelMode.CAR)


def test_location_rejects_mismatched_precision() -> None:
    with pytest.raises(ValueError, match="unknown location has no coordinates"):
        Location(latitude=50.0, longitude=6.0, precision=LocationPrecision.UNKNOWN)
    with pytest.raises(ValueError, match="needs latitude and longitude"):
        Location(precision=LocationPrecision.ADDRESS)
    with pytest.raises(ValueError):
        Location(latitude=math.nan, longitude=6.0, precision=LocationPrecision.ADDRESS)


@given(known_locations, known_locations)
def test_distance_is_symmetric_and_non_negative(a: Location, b: Location) -> None:
    assert distance_km(a, b) >= 0
    assert distance_km(a, b) == pytest.approx(distance_km(b, a), abs=1e-6)


@given(known_locations, known_locations, known_locations)
def test_distance_obeys_the_triangle_inequality(a: Location, b: Location, c: Location) -> None:
    assert distance_km(a, c) <= distance_km(a, b) + distance_km(b, c) + 1e-6


def test_one_degree_of_latitude_is_about_111_km() -> None:
    assert geodesic_km(50.0, 8.0, 51.0, 8.0) == pytest.approx(111.2, abs=0.3)


# ------------------------------------------------------------------ travel-time estimates


def test_estimates_for_typical_trips() -> None:
    # 10 km as the crow flies: about half an hour by car, three quarters by bus and train.
    assert 20 <= estimate_minutes(10, TravelMode.CAR) <= 35
    assert 40 <= estimate_minutes(10, TravelMode.TRANSIT) <= 60
    assert estimate_minutes(0, TravelMode.CAR) == 0


def test_estimate_rejects_nonsense() -> None:
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            estimate_minutes(bad, TravelMode.CAR)


@given(distances, distances, modes)
def test_minutes_never_decrease_with_distance(a: float, b: float, mode: TravelMode) -> None:
    near, far = sorted((a, b))
    assert estimate_minutes(near, mode) <= estimate_minutes(far, mode)


@given(st.floats(min_value=0.001, max_value=1500, allow_nan=False))
def test_transit_never_beats_the_car(km: float) -> None:
    assert estimate_minutes(km, TravelMode.TRANSIT) >= estimate_minutes(km, TravelMode.CAR)


@given(st.floats(min_value=0.001, max_value=1500, allow_nan=False), modes)
def test_a_trip_takes_at_least_the_fixed_minutes(km: float, mode: TravelMode) -> None:
    assert estimate_minutes(km, mode) >= TRAVEL_PROFILES[mode].fixed_minutes


# ------------------------------------------------------------------ within_reach (used by matching)


@given(any_locations, any_locations, radii, modes, st.none() | st.integers(min_value=0, max_value=600))
def test_unknown_never_within_reach(
    a: Location, b: Location, max_km: float, mode: TravelMode, max_minutes: int | None
) -> None:
    assume(not (a.is_known and b.is_known))
    assert within_reach(a, b, max_km, mode, max_minutes=max_minutes) is False


@given(known_locations, known_locations, radii, modes)
def test_within_reach_is_the_geodesic_radius(
    a: Location, b: Location, max_km: float, mode: TravelMode
) -> None:
    assert within_reach(a, b, max_km, mode) is (distance_km(a, b) <= max_km)
    assert within_reach(a, b, max_km, mode) is within_reach(b, a, max_km, mode)


@given(known_locations, known_locations, st.floats(min_value=-0.01, max_value=0.01), modes)
def test_borderline_radii_are_decided_by_the_geodesic(
    a: Location, b: Location, relative: float, mode: TravelMode
) -> None:
    # The quick spherical pre-check must never decide a pair near the radius differently.
    km = distance_km(a, b)
    max_km = km * (1 + relative)
    assert within_reach(a, b, max_km, mode) is (km <= max_km)


@given(known_locations, known_locations, radii, radii, modes)
def test_a_larger_radius_never_loses_a_therapist(
    a: Location, b: Location, r1: float, r2: float, mode: TravelMode
) -> None:
    small, large = sorted((r1, r2))
    if within_reach(a, b, small, mode):
        assert within_reach(a, b, large, mode)


@given(known_locations, radii, modes)
def test_same_place_is_always_within_reach(a: Location, max_km: float, mode: TravelMode) -> None:
    assert within_reach(a, a, max_km, mode, max_minutes=0)


@given(known_locations, known_locations, st.integers(min_value=0, max_value=600), modes)
def test_max_minutes_bounds_the_estimate(
    a: Location, b: Location, max_minutes: int, mode: TravelMode
) -> None:
    reachable = within_reach(a, b, math.inf, mode, max_minutes=max_minutes)
    assert reachable is (estimate_minutes(distance_km(a, b), mode) <= max_minutes)


def test_within_reach_rejects_a_nonsense_radius() -> None:
    here = Location.at(50.77, 6.08, LocationPrecision.POSTCODE)
    with pytest.raises(ValueError):
        within_reach(here, here, -1, TravelMode.CAR)
    with pytest.raises(ValueError):
        within_reach(here, here, math.nan, TravelMode.CAR)


def test_within_reach_with_real_postcodes(postcodes: PostcodeDirectory) -> None:
    aachen, burtscheid, berlin = (postcodes.centroid(code) for code in ("52062", "52066", "10115"))
    assert within_reach(aachen, burtscheid, 25, TravelMode.TRANSIT)
    assert not within_reach(aachen, berlin, 25, TravelMode.CAR)
    unlocatable = next(
        code for code in postcodes.postcodes() if code not in postcodes.postcodes(locatable_only=True)
    )
    assert not within_reach(aachen, postcodes.centroid(unlocatable), math.inf, TravelMode.CAR)


# ------------------------------------------------------------------ request models


def test_address_cache_key_ignores_spelling_variants() -> None:
    variants = [
        AddressQuery(street="Hauptstraße 5", postcode="52062", city="Aachen"),
        AddressQuery(street="  hauptstr.  5 ", postcode="52062", city="AACHEN"),
        AddressQuery(street="Hauptstrasse 5", postcode="52062", city="aachen"),
        AddressQuery(street="Hauptstr.5", postcode="52062", city="Aachen"),
    ]
    assert len({query.cache_key() for query in variants}) == 1
    assert AddressQuery(street="Hauptstraße 7", postcode="52062").cache_key() != variants[0].cache_key()


def test_place_ref_needs_exactly_one_kind() -> None:
    assert PlaceRef(postcode="52062").kind == "postcode"
    assert PlaceRef(point=Point(lat=50, lon=6)).kind == "point"
    assert PlaceRef(address=AddressQuery(postcode="52062")).kind == "address"
    with pytest.raises(ValueError, match="genau eine Angabe"):
        PlaceRef()
    with pytest.raises(ValueError, match="genau eine Angabe"):
        PlaceRef(postcode="52062", point=Point(lat=50, lon=6))
