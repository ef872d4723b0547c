"""Nominatim client rules without HTTP: the request throttle, backoff and configuration."""

from __future__ import annotations

import pytest

from therapy_platform.platform.geography.nominatim import (
    DEFAULT_USER_AGENT,
    PUBLIC_NOMINATIM_DOMAIN,
    NominatimClient,
    NominatimSettings,
    Throttle,
    shared_throttle,
)
from therapy_platform.platform.settings import SettingsError


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_throttle_spaces_requests_by_the_interval() -> None:
    fake = FakeTime()
    throttle = Throttle(1.0, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(4):
        assert throttle.acquire()
        starts.append(fake.now)
    assert starts == [100.0, 101.0, 102.0, 103.0]


def test_throttle_does_not_wait_after_a_quiet_spell() -> None:
    fake = FakeTime()
    throttle = Throttle(1.0, clock=fake.clock, sleep=fake.sleep)
    throttle.acquire()
    fake.now += 5
    throttle.acquire()
    assert fake.sleeps == []


def test_throttle_refuses_a_slot_past_the_deadline_without_reserving_it() -> None:
    fake = FakeTime()
    throttle = Throttle(1.0, clock=fake.clock, sleep=fake.sleep)
    throttle.acquire()
    assert not throttle.acquire(deadline=100.5)
    assert fake.sleeps == []
    assert throttle.acquire(deadline=101.0) and fake.now == 101.0


def test_hold_delays_every_caller() -> None:
    fake = FakeTime()
    throttle = Throttle(1.0, clock=fake.clock, sleep=fake.sleep)
    throttle.acquire()
    throttle.hold(30)
    throttle.acquire()
    assert fake.now == 130.0
    throttle.hold(0.1)  # never shortens the regular interval
    throttle.acquire()
    assert fake.now == 131.0


def test_one_shared_throttle_per_host() -> None:
    first = shared_throttle("https://geo.example.test", 1.0)
    assert shared_throttle("https://geo.example.test", 0.5) is first
    assert first.min_interval == 1.0  # the stricter interval wins
    assert shared_throttle("https://other.example.test", 1.0) is not first


def test_backoff_is_exponential_capped_and_honours_retry_after() -> None:
    settings = NominatimSettings.model_validate(
        {"NOMINATIM_BACKOFF_SECONDS": 1, "NOMINATIM_BACKOFF_MAX_SECONDS": 8}
    )
    client = NominatimClient(settings, throttle=Throttle(1.0))
    assert [client._backoff(attempt, None) for attempt in range(1, 6)] == [1, 2, 4, 8, 8]
    assert client._backoff(1, 30) == 30


def test_defaults_respect_the_usage_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "NOMINATIM_ENABLED",
        "NOMINATIM_DOMAIN",
        "NOMINATIM_USER_AGENT",
        "NOMINATIM_MIN_INTERVAL_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = NominatimSettings.from_env()
    assert not settings.enabled
    assert settings.domain == PUBLIC_NOMINATIM_DOMAIN and settings.scheme == "https"
    assert settings.min_interval_seconds >= 1.0
    assert settings.user_agent == DEFAULT_USER_AGENT
    assert NominatimClient.from_env() is None  # disabled: nothing leaves the process


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({"NOMINATIM_MIN_INTERVAL_SECONDS": "0.5"}, "NOMINATIM_MIN_INTERVAL_SECONDS"),
        ({"NOMINATIM_USER_AGENT": "my-application"}, "NOMINATIM_USER_AGENT"),
        ({"NOMINATIM_USER_AGENT": "geopy/2.5.0"}, "NOMINATIM_USER_AGENT"),
        ({"NOMINATIM_SCHEME": "ftp"}, "NOMINATIM_SCHEME"),
        ({"NOMINATIM_ENABLED": "sometimes"}, "NOMINATIM_ENABLED"),
        ({"NOMINATIM_COUNTRY_CODES": "Germany"}, "NOMINATIM_COUNTRY_CODES"),
    ],
)
def test_bad_configuration_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], variable: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        NominatimSettings.from_env()
    assert variable in str(caught.value)


def test_a_private_host_may_be_asked_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMINATIM_DOMAIN", "nominatim.internal.example:8080")
    monkeypatch.setenv("NOMINATIM_MIN_INTERVAL_SECONDS", "0.1")
    assert NominatimSettings.from_env().min_interval_seconds == 0.1
