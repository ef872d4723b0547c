"""Geocoding use cases with the real postcode table, a fake Nominatim and an in-memory cache."""

from __future__ import annotations

from datetime import timedelta

import pytest

from geo_fakes import (
    AACHEN_CATHEDRAL,
    BERLIN_INVALIDENSTRASSE,
    FakeClock,
    FakeNominatim,
    InMemoryGeocodingCache,
)
from therapy_platform.geocoding.domain.models import (
    AddressLookup,
    DistanceRequest,
    PlaceRef,
    UnknownLocationSideError,
)
from therapy_platform.geocoding.use_cases import GeocodingService
from therapy_platform.platform.errors import NotFoundError
from therapy_platform.platform.geography.addresses import (
    AddressMatch,
    AddressQuery,
    LocationSource,
    Point,
    ReverseAddress,
)
from therapy_platform.platform.geography.locations import LocationPrecision, TravelMode
from therapy_platform.platform.geography.locator import AddressLocator, default_locator
from therapy_platform.platform.geography.nominatim import NominatimClient
from therapy_platform.platform.geography.ports import Geocoder
from therapy_platform.platform.geography.postcodes import PostcodeDirectory, postcode_directory

DOM = AddressQuery(street="Domhof 1", postcode="52062", city="Aachen")


@pytest.fixture(scope="module")
def postcodes() -> PostcodeDirectory:
    return postcode_directory()


@pytest.fixture(scope="module")
def unlocatable(postcodes: PostcodeDirectory) -> str:
    locatable = set(postcodes.postcodes(locatable_only=True))
    return next(code for code in postcodes.postcodes() if code not in locatable)


@pytest.fixture
def nominatim() -> FakeNominatim:
    fake = FakeNominatim()
    fake.know(DOM, AACHEN_CATHEDRAL)
    return fake


@pytest.fixture
def cache() -> InMemoryGeocodingCache:
    return InMemoryGeocodingCache()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(
    postcodes: PostcodeDirectory, nominatim: FakeNominatim, cache: InMemoryGeocodingCache, clock: FakeClock
) -> GeocodingService:
    return GeocodingService(postcodes=postcodes, address_geocoder=nominatim, cache=cache, clock=clock)


# ------------------------------------------------------------------ locate an address


def test_address_found_by_nominatim_then_served_from_cache(
    service: GeocodingService, nominatim: FakeNominatim
) -> None:
    first = service.geocode(DOM).value
    assert first.source is LocationSource.NOMINATIM
    assert first.location.precision is LocationPrecision.ADDRESS
    assert (first.location.latitude, first.location.longitude) == (50.77475, 6.08393)
    assert first.display_name == AACHEN_CATHEDRAL.display_name and not first.needs_review
    again = service.geocode(AddressQuery(street="domhof  1", postcode="52062", city="AACHEN")).value
    assert again.source is LocationSource.CACHE and again.location == first.location
    assert len(nominatim.calls) == 1


def test_cache_expires_after_its_ttl(
    service: GeocodingService, nominatim: FakeNominatim, clock: FakeClock
) -> None:
    service.geocode(DOM)
    clock.advance(timedelta(days=29, hours=23))
    assert service.geocode(DOM).value.source is LocationSource.CACHE
    clock.advance(timedelta(hours=2))
    assert service.geocode(DOM).value.source is LocationSource.NOMINATIM
    assert len(nominatim.calls) == 2


def test_not_found_falls_back_to_the_centroid_and_is_remembered(
    service: GeocodingService, nominatim: FakeNominatim, postcodes: PostcodeDirectory, clock: FakeClock
) -> None:
    query = AddressQuery(street="Gibtsnichtweg 99", postcode="52062")
    result = service.geocode(query).value
    assert result.source is LocationSource.POSTCODE and result.location == postcodes.centroid("52062")
    assert not result.needs_review
    service.geocode(query)
    assert len(nominatim.calls) == 1  # the negative answer is cached
    clock.advance(timedelta(days=8))  # ... for a shorter time than a match
    service.geocode(query)
    assert len(nominatim.calls) == 2


def test_nominatim_down_falls_back_without_caching(
    service: GeocodingService,
    nominatim: FakeNominatim,
    cache: InMemoryGeocodingCache,
    postcodes: PostcodeDirectory,
) -> None:
    nominatim.down = True
    result = service.geocode(DOM).value
    assert result.source is LocationSource.POSTCODE and result.location == postcodes.centroid("52062")
    assert cache.entries == {}
    nominatim.down = False
    assert service.geocode(DOM).value.source is LocationSource.NOMINATIM


def test_cache_down_still_geocodes(
    service: GeocodingService, nominatim: FakeNominatim, cache: InMemoryGeocodingCache
) -> None:
    cache.down = True
    assert service.geocode(DOM).value.source is LocationSource.NOMINATIM
    assert service.geocode(DOM).value.source is LocationSource.NOMINATIM
    assert len(nominatim.calls) == 2


def test_a_match_far_from_its_postcode_is_discarded(
    service: GeocodingService, nominatim: FakeNominatim, postcodes: PostcodeDirectory
) -> None:
    # "Invalidenstraße 43" exists in Berlin; asked for with an Aachen postcode it is a wrong match.
    query = AddressQuery(street="Invalidenstraße 43", postcode="52062")
    nominatim.know(query, BERLIN_INVALIDENSTRASSE)
    result = service.geocode(query).value
    assert result.source is LocationSource.POSTCODE and result.location == postcodes.centroid("52062")


def test_without_street_only_the_centroid_is_used(
    service: GeocodingService, nominatim: FakeNominatim
) -> None:
    result = service.geocode(AddressQuery(postcode="10115", city="Berlin")).value
    assert result.source is LocationSource.POSTCODE
    assert result.location.precision is LocationPrecision.POSTCODE
    assert nominatim.calls == []


def test_unlocatable_postcode_without_geocodable_address_is_unknown_and_flagged(
    service: GeocodingService, unlocatable: str
) -> None:
    result = service.geocode(AddressQuery(street="Irgendwo 1", postcode=unlocatable)).value
    assert result.source is LocationSource.NONE
    assert not result.location.is_known and result.needs_review


def test_unlocatable_postcode_with_geocodable_address_gets_the_address(
    service: GeocodingService, nominatim: FakeNominatim, unlocatable: str
) -> None:
    query = AddressQuery(street="Marktplatz 1", postcode=unlocatable)
    match = AddressMatch(point=Point(lat=50.5, lon=9.5), display_name="Marktplatz 1", postcode=unlocatable)
    nominatim.know(query, match)
    result = service.geocode(query).value
    assert result.location.precision is LocationPrecision.ADDRESS and not result.needs_review


def test_nominatim_disabled_uses_the_centroid(postcodes: PostcodeDirectory) -> None:
    service = GeocodingService(postcodes=postcodes)
    result = service.geocode(DOM).value
    assert result.source is LocationSource.POSTCODE


def test_locate_port_never_raises(service: GeocodingService, nominatim: FakeNominatim) -> None:
    geocoder: Geocoder = service.locator
    assert (
        geocoder.locate(postcode="52062", street="Domhof 1", city="Aachen").precision
        is LocationPrecision.ADDRESS
    )
    assert geocoder.locate(postcode="10115").precision is LocationPrecision.POSTCODE
    assert not geocoder.locate(postcode="1234").is_known  # malformed: unknown, not an exception
    assert not geocoder.locate(postcode="00000", street="x" * 500).is_known
    nominatim.down = True
    assert geocoder.locate(postcode="52062", street="Domhof 1").precision is LocationPrecision.POSTCODE


# ------------------------------------------------------------------ default_locator (in-process)


def test_default_locator_is_offline_unless_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOMINATIM_ENABLED", raising=False)
    default_locator.cache_clear()
    try:
        geocoder = default_locator()
        assert isinstance(geocoder, AddressLocator)
        assert geocoder.address_geocoder is None and geocoder.cache is None
        assert geocoder.locate(postcode="52062", street="Domhof 1").precision is LocationPrecision.POSTCODE

        monkeypatch.setenv("NOMINATIM_ENABLED", "true")
        monkeypatch.setenv("NOMINATIM_DOMAIN", "127.0.0.1:9")
        monkeypatch.setenv("NOMINATIM_SCHEME", "http")
        default_locator.cache_clear()
        enabled = default_locator()
        assert isinstance(enabled, AddressLocator)
        assert isinstance(enabled.address_geocoder, NominatimClient)
        assert enabled.cache is None  # patient/therapist roles cannot reach geocoding_service
    finally:
        default_locator.cache_clear()


# ------------------------------------------------------------------ reverse


def test_reverse_names_nearest_postcode_and_address(
    service: GeocodingService, nominatim: FakeNominatim, cache: InMemoryGeocodingCache
) -> None:
    point = Point(lat=50.77475, lon=6.08393)
    nominatim.points[point.cache_key()] = ReverseAddress(
        display_name="Domhof 1, 52062 Aachen",
        street="Domhof",
        house_number="1",
        postcode="52062",
        city="Aachen",
    )
    result = service.reverse(point).value
    assert result.postcode is not None and result.postcode.postcode == "52062"
    assert result.postcode.km < 2
    assert result.address is not None and result.address.street == "Domhof"
    assert (result.address_lookup, result.address_source) == (AddressLookup.FOUND, LocationSource.NOMINATIM)
    assert service.reverse(point).value.address_source is LocationSource.CACHE
    assert len(nominatim.calls) == 1


def test_reverse_outside_germany_and_with_nominatim_down(
    service: GeocodingService, nominatim: FakeNominatim
) -> None:
    nominatim.down = True
    result = service.reverse(Point(lat=48.8566, lon=2.3522)).value
    assert result.postcode is None
    assert result.address is None and result.address_lookup is AddressLookup.UNAVAILABLE


def test_reverse_when_disabled_answers_from_the_table(postcodes: PostcodeDirectory) -> None:
    result = GeocodingService(postcodes=postcodes).reverse(Point(lat=52.53, lon=13.38)).value
    assert result.postcode is not None and result.postcode.postcode == "10115"
    assert result.address_lookup is AddressLookup.DISABLED


def test_reverse_not_found(service: GeocodingService) -> None:
    result = service.reverse(Point(lat=54.5, lon=7.0)).value  # North Sea
    assert result.address_lookup is AddressLookup.NOT_FOUND and result.postcode is None


# ------------------------------------------------------------------ postcodes


def test_postcode_lookup(service: GeocodingService, unlocatable: str) -> None:
    info = service.postcode_info("52062").value
    assert info.locatable and info.location.precision is LocationPrecision.POSTCODE and info.note is None
    odd = service.postcode_info(unlocatable).value
    assert not odd.locatable and not odd.location.is_known
    assert odd.note is not None and "without coordinates" in odd.note
    with pytest.raises(NotFoundError, match="00000"):
        service.postcode_info("00000")


# ------------------------------------------------------------------ distances


def test_distance_between_postcodes(service: GeocodingService) -> None:
    result = service.distance(
        DistanceRequest(
            origin=PlaceRef(postcode="52062"), destination=PlaceRef(postcode="10115"), mode=TravelMode.CAR
        )
    ).value
    assert 500 <= result.km <= 650
    assert result.minutes > 300
    assert result.origin.kind == "postcode" and result.destination.source is LocationSource.POSTCODE


def test_distance_between_address_and_point(service: GeocodingService) -> None:
    result = service.distance(
        DistanceRequest(
            origin=PlaceRef(address=DOM),
            destination=PlaceRef(point=Point(lat=50.77475, lon=6.08393)),
            mode=TravelMode.TRANSIT,
        )
    ).value
    assert (result.km, result.minutes) == (0, 0)
    assert result.origin.source is LocationSource.NOMINATIM and result.origin.display_name
    assert result.destination.kind == "point"


def test_distance_to_self_is_zero(service: GeocodingService) -> None:
    same = PlaceRef(postcode="80331")
    result = service.distance(DistanceRequest(origin=same, destination=same, mode=TravelMode.CAR)).value
    assert (result.km, result.minutes) == (0, 0)


@pytest.mark.parametrize(
    ("origin", "destination", "sides"),
    [
        ("UNLOCATABLE", "52062", ["from"]),
        ("52062", "00000", ["to"]),
        ("00000", "UNLOCATABLE", ["from", "to"]),
    ],
)
def test_unknown_side_is_refused_naming_it(
    service: GeocodingService, unlocatable: str, origin: str, destination: str, sides: list[str]
) -> None:
    def ref(code: str) -> PlaceRef:
        return PlaceRef(postcode=unlocatable if code == "UNLOCATABLE" else code)

    with pytest.raises(UnknownLocationSideError) as caught:
        service.distance(
            DistanceRequest(origin=ref(origin), destination=ref(destination), mode=TravelMode.CAR)
        )
    assert caught.value.details["sides"] == sides
    for side in sides:
        assert repr(side) in caught.value.message


def test_unknown_address_side_is_refused(service: GeocodingService, unlocatable: str) -> None:
    with pytest.raises(UnknownLocationSideError) as caught:
        service.distance(
            DistanceRequest(
                origin=PlaceRef(postcode="52062"),
                destination=PlaceRef(address=AddressQuery(street="Nirgendwo 1", postcode=unlocatable)),
                mode=TravelMode.TRANSIT,
            )
        )
    assert caught.value.details["sides"] == ["to"]
    assert "could not be geocoded" in caught.value.message
