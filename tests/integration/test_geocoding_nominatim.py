"""The real Nominatim client (geopy) against a local server speaking Nominatim's JSON:
structured queries, identifying User-Agent, at most one request per second, retries with
backoff on 429 / 5xx / timeouts, no retries on refusals, and a total deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from nominatim_stub import DOMHOF, NominatimStub, Reply, place
from therapy_platform.platform.geography.addresses import (
    AddressQuery,
    GeocoderUnavailableError,
    LocationSource,
    Point,
)
from therapy_platform.platform.geography.locator import AddressLocator
from therapy_platform.platform.geography.nominatim import NominatimClient, NominatimSettings, Throttle
from therapy_platform.platform.geography.postcodes import postcode_directory

pytestmark = pytest.mark.integration

AGENT = "therapy-matching-platform-tests/1.0 (geocoding integration tests)"
DOM = AddressQuery(street="Domhof 1", postcode="52062", city="Aachen")


@pytest.fixture
def stub() -> Iterator[NominatimStub]:
    with NominatimStub() as server:
        yield server


def client_for(stub: NominatimStub, **overrides: Any) -> NominatimClient:
    values: dict[str, Any] = {
        "NOMINATIM_ENABLED": True,
        "NOMINATIM_DOMAIN": stub.domain,
        "NOMINATIM_SCHEME": "http",
        "NOMINATIM_USER_AGENT": AGENT,
        "NOMINATIM_MIN_INTERVAL_SECONDS": 0.05,
        "NOMINATIM_TIMEOUT_SECONDS": 2,
        "NOMINATIM_MAX_RETRIES": 3,
        "NOMINATIM_BACKOFF_SECONDS": 0.1,
        "NOMINATIM_BACKOFF_MAX_SECONDS": 1,
        "NOMINATIM_DEADLINE_SECONDS": 10,
        **overrides,
    }
    settings = NominatimSettings.model_validate(values)
    # A throttle of its own, so tests do not pace each other.
    return NominatimClient(settings, throttle=Throttle(settings.min_interval_seconds))


def gaps(stub: NominatimStub, path: str = "/search") -> list[float]:
    return [later.at - earlier.at for earlier, later in pairwise(stub.requests_to(path))]


# ------------------------------------------------------------------ what is sent and understood


def test_search_is_structured_and_identifies_the_application(stub: NominatimStub) -> None:
    match = client_for(stub).geocode(DOM)
    assert match is not None
    assert (match.point.lat, match.point.lon) == (50.7747504, 6.0839254)
    assert match.postcode == "52062" and "Domhof 1" in match.display_name
    [request] = stub.requests_to("/search")
    assert request.headers["User-Agent"] == AGENT
    assert request.params == {
        "street": "Domhof 1",
        "postalcode": "52062",
        "city": "Aachen",
        "country": "Deutschland",
        "countrycodes": "de",
        "format": "json",
        "limit": "1",
        "addressdetails": "1",
        "accept-language": "de",
    }


def test_not_found_is_none(stub: NominatimStub) -> None:
    assert client_for(stub).geocode(AddressQuery(street="Gibtsnichtweg 3", postcode="52062")) is None


def test_a_match_above_street_level_is_not_an_address(stub: NominatimStub) -> None:
    town = place(
        lat=50.77, lon=6.08, road="Aachen", house_number=None, postcode="52062", city="Aachen", place_rank=16
    )
    stub.queue("/search", Reply(body=[town]))
    assert client_for(stub).geocode(DOM) is None


def test_reverse(stub: NominatimStub) -> None:
    client = client_for(stub)
    address = client.reverse(Point(lat=50.77475, lon=6.08393))
    assert address is not None
    assert (address.street, address.house_number, address.postcode, address.city) == (
        "Domhof",
        "1",
        "52062",
        "Aachen",
    )
    assert address.country_code == "de"
    assert client.reverse(Point(lat=54.5, lon=7.0)) is None  # {"error": "Unable to geocode"}
    request = stub.requests_to("/reverse")[0]
    assert request.params["lat"].startswith("50.77475") and request.params["format"] == "json"


# ------------------------------------------------------------------ pacing


def test_at_most_one_request_per_second(stub: NominatimStub) -> None:
    client = client_for(stub, NOMINATIM_MIN_INTERVAL_SECONDS=1.0)
    for _ in range(3):
        assert client.geocode(DOM) is not None
    assert len(stub.requests_to("/search")) == 3
    assert all(gap >= 0.95 for gap in gaps(stub)), gaps(stub)


def test_concurrent_callers_queue_for_slots(stub: NominatimStub) -> None:
    client = client_for(stub, NOMINATIM_MIN_INTERVAL_SECONDS=0.5)
    threads = [threading.Thread(target=client.geocode, args=(DOM,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(stub.requests_to("/search")) == 3
    assert all(gap >= 0.45 for gap in gaps(stub)), gaps(stub)


# ------------------------------------------------------------------ retries and backoff


def test_429_once_then_ok_honours_retry_after(stub: NominatimStub) -> None:
    stub.queue(
        "/search", Reply(status=429, body={"error": "Too Many Requests"}, headers={"Retry-After": "1"})
    )
    assert client_for(stub).geocode(DOM) is not None
    assert len(stub.requests_to("/search")) == 2
    assert gaps(stub)[0] >= 0.95  # waited as asked, not just the 0.1 s backoff


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_once_then_ok(stub: NominatimStub, status: int) -> None:
    stub.queue("/search", Reply(status=status, body={"error": "busy"}))
    assert client_for(stub).geocode(DOM) is not None
    assert len(stub.requests_to("/search")) == 2
    assert gaps(stub)[0] >= 0.1


def test_reverse_is_retried_too(stub: NominatimStub) -> None:
    stub.queue("/reverse", Reply(status=503))
    assert client_for(stub).reverse(Point(lat=50.77475, lon=6.08393)) is not None
    assert len(stub.requests_to("/reverse")) == 2


def test_slow_answer_times_out_and_is_retried(stub: NominatimStub) -> None:
    stub.queue("/search", Reply(body=[DOMHOF], delay=2.0))
    started = time.monotonic()
    match = client_for(stub, NOMINATIM_TIMEOUT_SECONDS=0.5).geocode(DOM)
    assert match is not None
    assert len(stub.requests_to("/search")) == 2
    assert time.monotonic() - started < 1.9  # did not wait for the slow answer


def test_backoff_doubles_then_gives_up(stub: NominatimStub) -> None:
    stub.queue("/search", *[Reply(status=500) for _ in range(4)])
    with pytest.raises(GeocoderUnavailableError, match="after 4 attempts"):
        client_for(stub, NOMINATIM_MAX_RETRIES=3).geocode(DOM)
    assert len(stub.requests_to("/search")) == 4
    first, second, third = gaps(stub)
    assert first >= 0.1 and second >= 0.2 and third >= 0.4
    assert second > first * 1.5 and third > second * 1.5


def test_deadline_bounds_a_slow_service(stub: NominatimStub) -> None:
    stub.queue("/search", *[Reply(body=[DOMHOF], delay=1.5) for _ in range(5)])
    started = time.monotonic()
    with pytest.raises(GeocoderUnavailableError):
        client_for(stub, NOMINATIM_TIMEOUT_SECONDS=0.5, NOMINATIM_DEADLINE_SECONDS=1.5).geocode(DOM)
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("status", [400, 403])
def test_refusals_are_not_retried(stub: NominatimStub, status: int) -> None:
    stub.queue("/search", Reply(status=status, body={"error": "no"}))
    with pytest.raises(GeocoderUnavailableError, match="refused"):
        client_for(stub).geocode(DOM)
    assert len(stub.requests_to("/search")) == 1


def test_unreadable_answers_are_not_retried(stub: NominatimStub) -> None:
    stub.queue("/search", Reply(body=b"<html>maintenance</html>"))
    with pytest.raises(GeocoderUnavailableError):
        client_for(stub).geocode(DOM)
    stub.queue("/search", Reply(body=[{"lat": "north", "lon": "6", "display_name": "x"}]))
    with pytest.raises(GeocoderUnavailableError, match="cannot read"):
        client_for(stub).geocode(DOM)
    assert len(stub.requests_to("/search")) == 2


# ------------------------------------------------------------------ in the locate chain


def test_locate_falls_back_to_the_centroid_when_nominatim_fails(stub: NominatimStub) -> None:
    stub.queue("/search", *[Reply(status=502) for _ in range(3)])
    locator = AddressLocator(
        postcodes=postcode_directory(), address_geocoder=client_for(stub, NOMINATIM_MAX_RETRIES=2)
    )
    result = locator.find(DOM)
    assert result.source is LocationSource.POSTCODE and result.location == postcode_directory().centroid(
        "52062"
    )
    # ... and the next call, with Nominatim healthy again, gets the address.
    assert locator.find(DOM).source is LocationSource.NOMINATIM


def test_unreachable_host_falls_back_quickly() -> None:
    with NominatimStub() as closed:
        domain = closed.domain  # a port that nothing listens on once the stub is closed
    settings = NominatimSettings.model_validate(
        {
            "NOMINATIM_ENABLED": True,
            "NOMINATIM_DOMAIN": domain,
            "NOMINATIM_SCHEME": "http",
            "NOMINATIM_MIN_INTERVAL_SECONDS": 0.01,
            "NOMINATIM_MAX_RETRIES": 1,
            "NOMINATIM_BACKOFF_SECONDS": 0.05,
        }
    )
    locator = AddressLocator(
        postcodes=postcode_directory(), address_geocoder=NominatimClient(settings, throttle=Throttle(0.01))
    )
    started = time.monotonic()
    assert locator.locate(postcode="52062", street="Domhof 1").precision == "postcode"
    assert time.monotonic() - started < 2
