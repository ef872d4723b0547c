"""The geocoding cache in PostgreSQL (as the geocoding service's own role), and the geocoding
API end to end: real database, real Nominatim client against the local Nominatim stub."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from nominatim_stub import NominatimStub, Reply
from support import api_event, call, load_function
from therapy_platform.geocoding import bootstrap
from therapy_platform.geocoding.adapters.cache import SqlGeocodingCache
from therapy_platform.geocoding.settings import GeocodingSettings
from therapy_platform.platform.database import make_engine
from therapy_platform.platform.errors import DependencyUnavailableError
from therapy_platform.platform.geography.addresses import AddressMatch, AddressQuery, Point, ReverseAddress

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
MATCH = AddressMatch(
    point=Point(lat=50.77475, lon=6.08393), display_name="Domhof 1, 52062 Aachen", postcode="52062"
)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def geocoding_engine(service_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = make_engine(service_url("geocoding_service"))
    yield engine
    engine.dispose()


@pytest.fixture
def cache(geocoding_engine: Engine) -> SqlGeocodingCache:
    return SqlGeocodingCache(geocoding_engine)


def unique_key() -> str:
    return f"52062|domhof {uuid.uuid4().hex[:8]}|aachen"


def test_put_then_get(cache: SqlGeocodingCache) -> None:
    key = unique_key()
    assert cache.get_address(key, now=NOW) is None
    cache.put_address(key, MATCH, now=NOW, ttl=30 * DAY)
    hit = cache.get_address(key, now=NOW + DAY)
    assert hit is not None and hit.value == MATCH and hit.fetched_at == NOW


def test_long_keys_fit(cache: SqlGeocodingCache) -> None:
    # 200 characters of "Str." expand to 350 when normalised, plus city and postcode.
    key = AddressQuery(street="Str." * 50, postcode="52062", city="Stadt" * 20).cache_key()
    assert len(key) > 400
    cache.put_address(key, None, now=NOW, ttl=DAY)
    assert cache.get_address(key, now=NOW) is not None


def test_entries_expire(cache: SqlGeocodingCache) -> None:
    key = unique_key()
    cache.put_address(key, MATCH, now=NOW, ttl=30 * DAY)
    assert cache.get_address(key, now=NOW + 30 * DAY - timedelta(seconds=1)) is not None
    assert cache.get_address(key, now=NOW + 30 * DAY) is None


def test_not_found_is_cached_as_such(cache: SqlGeocodingCache) -> None:
    key = unique_key()
    cache.put_address(key, None, now=NOW, ttl=7 * DAY)
    hit = cache.get_address(key, now=NOW)
    assert hit is not None and hit.value is None


def test_a_newer_answer_replaces_the_old(cache: SqlGeocodingCache) -> None:
    key = unique_key()
    cache.put_address(key, None, now=NOW, ttl=7 * DAY)
    cache.put_address(key, MATCH, now=NOW + 8 * DAY, ttl=30 * DAY)
    hit = cache.get_address(key, now=NOW + 9 * DAY)
    assert hit is not None and hit.value == MATCH


def test_address_and_reverse_entries_do_not_mix(cache: SqlGeocodingCache) -> None:
    key = "50.77475,6.08393"
    reverse = ReverseAddress(display_name="Domhof 1", street="Domhof", house_number="1", postcode="52062")
    cache.put_reverse(key, reverse, now=NOW, ttl=30 * DAY)
    assert cache.get_address(key, now=NOW) is None
    hit = cache.get_reverse(key, now=NOW)
    assert hit is not None and hit.value == reverse


def test_purge_expired(cache: SqlGeocodingCache, admin_engine: Engine) -> None:
    fresh, stale = unique_key(), unique_key()
    cache.put_address(fresh, MATCH, now=NOW, ttl=30 * DAY)
    cache.put_address(stale, MATCH, now=NOW - 40 * DAY, ttl=30 * DAY)
    assert cache.purge_expired(now=NOW) >= 1
    with admin_engine.connect() as connection:
        keys = set(connection.execute(text("SELECT key FROM geocoding_service.geocode_cache")).scalars())
    assert fresh in keys and stale not in keys


def test_table_rules(admin_engine: Engine) -> None:
    # pg8000 reports check violations as ProgrammingError.
    with (
        admin_engine.connect() as connection,
        pytest.raises((IntegrityError, ProgrammingError), match="geocode_cache_found_has_payload"),
    ):
        connection.execute(
            text(
                "INSERT INTO geocoding_service.geocode_cache"
                " (kind, key, found, payload, fetched_at, expires_at)"
                " VALUES ('address', 'x', true, NULL, now(), now() + interval '1 day')"
            )
        )


def test_other_services_cannot_reach_the_cache(service_url: Callable[[str], str]) -> None:
    for schema in ("patient_service", "therapist_service"):
        engine = create_engine(service_url(schema))
        with engine.connect() as connection, pytest.raises(ProgrammingError, match="permission denied"):
            connection.execute(text("SELECT count(*) FROM geocoding_service.geocode_cache"))
        engine.dispose()


def test_unreachable_database_is_dependency_unavailable() -> None:
    engine = make_engine("postgresql+pg8000://nobody:secret@127.0.0.1:9/nothing")
    with pytest.raises(DependencyUnavailableError):
        SqlGeocodingCache(engine).get_address("k", now=NOW)
    engine.dispose()


# ------------------------------------------------------------------ the API end to end


@pytest.fixture
def api(
    monkeypatch: pytest.MonkeyPatch, geocoding_engine: Engine
) -> Iterator[tuple[Callable[[dict[str, Any]], tuple[int, Any]], NominatimStub]]:
    with NominatimStub() as stub:
        for name, value in {
            "NOMINATIM_ENABLED": "true",
            "NOMINATIM_DOMAIN": stub.domain,
            "NOMINATIM_SCHEME": "http",
            "NOMINATIM_USER_AGENT": "therapy-matching-platform-tests/1.0",
            "NOMINATIM_MIN_INTERVAL_SECONDS": "0.05",
            "NOMINATIM_BACKOFF_SECONDS": "0.05",
            "GEOCODING_CACHE_TTL_DAYS": "30",
        }.items():
            monkeypatch.setenv(name, value)
        module = load_function("geocoding_api")
        # The settings as this environment gives them (bootstrap.SETTINGS was read at import).
        service = bootstrap.build(GeocodingSettings.from_env(), engine=geocoding_engine)
        monkeypatch.setattr(module, "service", service)
        yield (lambda event: call(module.lambda_handler, event)), stub


def test_geocode_asks_nominatim_once_then_answers_from_the_cache(
    api: tuple[Callable[[dict[str, Any]], tuple[int, Any]], NominatimStub], admin_engine: Engine
) -> None:
    send, stub = api
    street = f"Domhof 1 {uuid.uuid4().hex[:6]}"  # a key no other test has cached
    body = {"street": street, "postcode": "52062", "city": "Aachen"}
    status, first = send(api_event("POST", "/api/v2/geocoding/geocode", body))
    assert status == 200 and first["source"] == "nominatim"
    assert first["location"]["precision"] == "address"
    status, second = send(api_event("POST", "/api/v2/geocoding/geocode", body))
    assert status == 200 and second["source"] == "cache" and second["location"] == first["location"]
    assert len(stub.requests_to("/search")) == 1
    with admin_engine.connect() as connection:
        expires_at = connection.execute(
            text("SELECT expires_at - fetched_at FROM geocoding_service.geocode_cache WHERE key LIKE :key"),
            {"key": f"52062|{street.casefold()}%"},
        ).scalar_one()
    assert expires_at == timedelta(days=30)


def test_distance_and_reverse_through_the_stack(
    api: tuple[Callable[[dict[str, Any]], tuple[int, Any]], NominatimStub],
) -> None:
    send, _ = api
    request = {
        "from": {"address": {"street": "Invalidenstraße 43", "postcode": "10115", "city": "Berlin"}},
        "to": {"postcode": "52062"},
        "mode": "transit",
    }
    status, body = send(api_event("POST", "/api/v2/geocoding/distance", request))
    assert status == 200 and 500 <= body["km"] <= 650
    assert body["from"]["location"]["precision"] == "address"
    status, body = send(
        api_event("GET", "/api/v2/geocoding/reverse", query={"lat": "52.53054", "lon": "13.38364"})
    )
    assert status == 200 and body["address"]["street"] == "Invalidenstraße"
    assert body["postcode"]["postcode"] == "10115"


def test_nominatim_down_still_answers_with_the_centroid(
    api: tuple[Callable[[dict[str, Any]], tuple[int, Any]], NominatimStub],
) -> None:
    send, stub = api
    stub.queue("/search", *[Reply(status=503) for _ in range(5)])
    body = {"street": f"Domhof 2 {uuid.uuid4().hex[:6]}", "postcode": "52062"}
    status, result = send(api_event("POST", "/api/v2/geocoding/geocode", body))
    assert status == 200 and result["source"] == "postcode" and result["location"]["precision"] == "postcode"
