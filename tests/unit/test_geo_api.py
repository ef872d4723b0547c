"""The geocoding API handler with the real postcode table, a fake Nominatim and an in-memory
cache: routes, response models, validation errors naming fields, the sample events."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from geo_fakes import AACHEN_CATHEDRAL, FakeClock, FakeNominatim, InMemoryGeocodingCache
from support import ROOT, api_event, call, load_function
from therapy_platform.geocoding.domain.models import (
    DistanceResult,
    GeocodeResult,
    PostcodeInfo,
    ReverseResult,
)
from therapy_platform.geocoding.use_cases import GeocodingService
from therapy_platform.platform.geography.addresses import AddressQuery
from therapy_platform.platform.geography.postcodes import postcode_directory

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
EVENTS = ROOT / "events" / "geocoding_api"
UNLOCATABLE = "03139"  # listed in the table with the "centre of Germany" placeholder
DOM = {"street": "Domhof 1", "postcode": "52062", "city": "Aachen"}


@pytest.fixture
def nominatim() -> FakeNominatim:
    fake = FakeNominatim()
    fake.know(AddressQuery.model_validate(DOM), AACHEN_CATHEDRAL)
    return fake


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch, nominatim: FakeNominatim) -> Iterator[Handler]:
    module = load_function("geocoding_api")
    service = GeocodingService(
        postcodes=postcode_directory(),
        address_geocoder=nominatim,
        cache=InMemoryGeocodingCache(),
        clock=FakeClock(),
    )
    monkeypatch.setattr(module, "service", service)
    yield module.lambda_handler


def test_unlocatable_sample_is_really_unlocatable() -> None:
    directory = postcode_directory()
    assert UNLOCATABLE in directory and not directory.is_locatable(UNLOCATABLE)


# ------------------------------------------------------------------ geocode


def test_geocode_address(handler: Handler) -> None:
    status, body = call(handler, api_event("POST", "/api/v2/geocoding/geocode", DOM))
    assert status == 200
    result = GeocodeResult.model_validate(body)
    assert result.source == "nominatim" and result.location.precision == "address"
    assert body["location"] == {"latitude": 50.77475, "longitude": 6.08393, "precision": "address"}


def test_geocode_postcode_only_and_unlocatable(handler: Handler) -> None:
    status, body = call(handler, api_event("POST", "/api/v2/geocoding/geocode", {"postcode": "10115"}))
    assert status == 200 and body["source"] == "postcode" and body["location"]["precision"] == "postcode"
    status, body = call(handler, api_event("POST", "/api/v2/geocoding/geocode", {"postcode": UNLOCATABLE}))
    assert status == 200
    assert body["location"] == {"latitude": None, "longitude": None, "precision": "unknown"}
    assert body["needs_review"] is True and body["source"] == "none"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"street": "Domhof 1"}, {"postcode"}),
        ({"postcode": "5206"}, {"postcode"}),
        ({"postcode": 52062}, {"postcode"}),
        ({"postcode": "52062", "street": ""}, {"street"}),
        ({"postcode": "52062", "street": "x" * 201}, {"street"}),
        ({"postcode": "52062", "country": "DE"}, {"country"}),
        ({"postcode": "52062", "street": "Domhof\u0000 1"}, {"street"}),
        ({"postcode": "52062", "city": "Aa\tchen"}, {"city"}),
    ],
)
def test_geocode_invalid_fields_are_422_naming_them(
    handler: Handler, body: dict[str, object], fields: set[str]
) -> None:
    status, error = call(handler, api_event("POST", "/api/v2/geocoding/geocode", body))
    assert status == 422 and error["code"] == "validation_failed"
    assert {entry["field"] for entry in error["errors"]} == fields


@pytest.mark.parametrize("raw", ["{not json", "", "[]", "null"])
def test_geocode_malformed_body_is_4xx(handler: Handler, raw: str) -> None:
    status, error = call(handler, api_event("POST", "/api/v2/geocoding/geocode", raw_body=raw))
    assert status in (400, 422) and error["code"] in {"malformed_json", "validation_failed"}


# ------------------------------------------------------------------ reverse


def test_reverse(handler: Handler) -> None:
    status, body = call(
        handler, api_event("GET", "/api/v2/geocoding/reverse", query={"lat": "52.53054", "lon": "13.38364"})
    )
    assert status == 200
    result = ReverseResult.model_validate(body)
    assert result.postcode is not None and result.postcode.postcode == "10115"
    assert result.address_lookup == "not_found"  # the fake knows no address there


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"lat": "52.5"}, {"lon"}),
        ({}, {"lat", "lon"}),
        ({"lat": "91", "lon": "13"}, {"lat"}),
        ({"lat": "52", "lon": "-181"}, {"lon"}),
        ({"lat": "north", "lon": "13"}, {"lat"}),
        ({"lat": "nan", "lon": "13"}, {"lat"}),
        ({"lat": "52", "lon": "inf"}, {"lon"}),
    ],
)
def test_reverse_bad_coordinates_are_422_naming_them(
    handler: Handler, query: dict[str, str], fields: set[str]
) -> None:
    status, error = call(handler, api_event("GET", "/api/v2/geocoding/reverse", query=query))
    assert status == 422
    assert {entry["field"] for entry in error["errors"]} == fields


# ------------------------------------------------------------------ postcodes


def _postcode_event(postcode: str) -> dict[str, Any]:
    event = api_event("GET", f"/api/v2/geocoding/postcodes/{postcode}")
    event["pathParameters"] = {"postcode": postcode}
    return event


def test_postcode_lookup(handler: Handler) -> None:
    status, body = call(handler, _postcode_event("52062"))
    assert status == 200
    info = PostcodeInfo.model_validate(body)
    assert info.locatable and info.location.precision == "postcode"


def test_unlocatable_postcode_gets_a_clear_answer(handler: Handler) -> None:
    status, body = call(handler, _postcode_event(UNLOCATABLE))
    assert status == 200
    assert body["locatable"] is False and body["location"]["precision"] == "unknown"
    assert "without coordinates" in body["note"]


def test_unknown_postcode_is_404_and_malformed_is_422(handler: Handler) -> None:
    status, error = call(handler, _postcode_event("00000"))
    assert status == 404 and error["code"] == "not_found" and "00000" in error["detail"]
    status, error = call(handler, _postcode_event("5206"))
    assert status == 422 and error["errors"][0]["field"] == "postcode"


# ------------------------------------------------------------------ distance


def test_distance_aachen_berlin(handler: Handler) -> None:
    request = {"from": {"postcode": "52062"}, "to": {"postcode": "10115"}, "mode": "car"}
    status, body = call(handler, api_event("POST", "/api/v2/geocoding/distance", request))
    assert status == 200
    assert set(body) == {"from", "to", "mode", "area", "km", "minutes"}
    assert body["area"] == "suburban"  # Aachen-Mitte 52062: 12 postcode centroids within 10 km
    result = DistanceResult.model_validate(body)
    assert 500 <= result.km <= 650 and result.minutes > 0
    assert body["from"]["kind"] == "postcode" and body["to"]["location"]["precision"] == "postcode"


def test_distance_defaults_to_car_and_to_self_is_zero(handler: Handler) -> None:
    request = {"from": {"postcode": "52062"}, "to": {"postcode": "52062"}}
    status, body = call(handler, api_event("POST", "/api/v2/geocoding/distance", request))
    assert status == 200 and (body["km"], body["minutes"], body["mode"]) == (0, 0, "car")


def test_distance_address_to_point(handler: Handler) -> None:
    request = {"from": {"address": DOM}, "to": {"point": {"lat": 50.7766, "lon": 6.0834}}, "mode": "transit"}
    status, body = call(handler, api_event("POST", "/api/v2/geocoding/distance", request))
    assert status == 200
    assert body["from"]["source"] == "nominatim" and body["to"]["kind"] == "point"
    assert 0 < body["km"] < 1 and body["minutes"] >= 10


@pytest.mark.parametrize(
    ("request_body", "sides"),
    [
        ({"from": {"postcode": UNLOCATABLE}, "to": {"postcode": "10115"}}, ["from"]),
        ({"from": {"postcode": "10115"}, "to": {"postcode": "00000"}}, ["to"]),
        ({"from": {"address": {"postcode": UNLOCATABLE}}, "to": {"postcode": UNLOCATABLE}}, ["from", "to"]),
    ],
)
def test_distance_with_unknown_side_is_422_naming_it(
    handler: Handler, request_body: dict[str, object], sides: list[str]
) -> None:
    status, error = call(handler, api_event("POST", "/api/v2/geocoding/distance", request_body))
    assert status == 422
    assert error["code"] == "unknown_location" and error["sides"] == sides
    assert [entry["field"] for entry in error["errors"]] == sides
    assert "km" not in error


@pytest.mark.parametrize(
    ("request_body", "fields"),
    [
        ({"to": {"postcode": "10115"}}, {"from"}),
        ({"from": {}, "to": {"postcode": "10115"}}, {"from"}),
        (
            {"from": {"postcode": "52062", "point": {"lat": 1, "lon": 2}}, "to": {"postcode": "10115"}},
            {"from"},
        ),
        ({"from": {"postcode": "52062"}, "to": {"postcode": "1011"}}, {"to.postcode"}),
        ({"from": {"postcode": "52062"}, "to": {"point": {"lat": 95, "lon": 2}}}, {"to.point.lat"}),
        ({"from": {"postcode": "52062"}, "to": {"postcode": "10115"}, "mode": "bike"}, {"mode"}),
        ({"from": {"postcode": "52062"}, "to": {"postcode": "10115"}, "via": "x"}, {"via"}),
        (
            {"from": {"address": {"street": "Domhof 1"}}, "to": {"postcode": "10115"}},
            {"from.address.postcode"},
        ),
    ],
)
def test_distance_invalid_fields_are_422_naming_them(
    handler: Handler, request_body: dict[str, object], fields: set[str]
) -> None:
    status, error = call(handler, api_event("POST", "/api/v2/geocoding/distance", request_body))
    assert status == 422 and error["code"] == "validation_failed"
    assert {entry["field"] for entry in error["errors"]} == fields


# ------------------------------------------------------------------ sample events


EXPECTED_STATUS = {
    "geocode.json": 200,
    "geocode_invalid.json": 422,
    "reverse.json": 200,
    "postcode.json": 200,
    "postcode_unlocatable.json": 200,
    "postcode_unknown.json": 404,
    "distance.json": 200,
    "distance_mixed.json": 200,
    "distance_unknown_side.json": 422,
}


def test_every_sample_event_is_covered() -> None:
    assert {path.name for path in EVENTS.glob("*.json")} == set(EXPECTED_STATUS)


@pytest.mark.parametrize("name", sorted(EXPECTED_STATUS))
def test_sample_events(handler: Handler, name: str) -> None:
    event = json.loads(Path(EVENTS / name).read_text(encoding="utf-8"))
    status, body = call(handler, event)
    assert status == EXPECTED_STATUS[name], body
