"""OpenStreetMap Nominatim through geopy, used within its usage policy.

- At most one request per second per process and Nominatim host (`Throttle`, shared by every
  client in the process; the interval is configurable but never below 1 s for the public host).
- An identifying User-Agent (`NOMINATIM_USER_AGENT`; geopy's sample agents are refused).
- Transient failures (429, 5xx, timeouts, connection errors) are retried with exponential
  backoff, honouring Retry-After, within a total deadline; then GeocoderUnavailableError.
  Permanent refusals (400, 401, 403) are not retried.
- Domain and scheme are configurable so tests can point the client at a local server.

Only street-level matches (place_rank >= 26) count as addresses: a structured search that
only found the town is "not found" here, and the caller falls back to the postcode centroid.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final, Literal

from geopy.adapters import URLLibAdapter  # type: ignore[import-untyped]
from geopy.exc import (  # type: ignore[import-untyped]
    GeocoderRateLimited,
    GeocoderServiceError,
    GeocoderTimedOut,
    GeocoderUnavailable,
)
from geopy.geocoders import Nominatim  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from therapy_platform.platform.geography.addresses import (
    AddressMatch,
    AddressQuery,
    GeocoderUnavailableError,
    Point,
    ReverseAddress,
)
from therapy_platform.platform.settings import EnvModel

logger = logging.getLogger(__name__)

PUBLIC_NOMINATIM_DOMAIN: Final = "nominatim.openstreetmap.org"
DEFAULT_USER_AGENT: Final = "therapy-matching-platform/0.1 (psychotherapy place matching; geocoding service)"
# Nominatim's place_rank: 26-27 streets, 28-30 house numbers and buildings.
STREET_LEVEL_RANK: Final = 26
_SAMPLE_AGENTS: Final = {"my-application", "my_app/1", "my_user_agent/1.0", "specify_your_app_name_here"}


class NominatimSettings(EnvModel):
    """Environment of the Nominatim client (all optional; disabled unless NOMINATIM_ENABLED=true)."""

    enabled: bool = Field(default=False, alias="NOMINATIM_ENABLED")
    domain: str = Field(default=PUBLIC_NOMINATIM_DOMAIN, alias="NOMINATIM_DOMAIN", min_length=1)
    scheme: Literal["https", "http"] = Field(default="https", alias="NOMINATIM_SCHEME")
    user_agent: str = Field(default=DEFAULT_USER_AGENT, alias="NOMINATIM_USER_AGENT", min_length=8)
    min_interval_seconds: float = Field(default=1.0, ge=0, le=60, alias="NOMINATIM_MIN_INTERVAL_SECONDS")
    timeout_seconds: float = Field(default=5.0, gt=0, le=60, alias="NOMINATIM_TIMEOUT_SECONDS")
    max_retries: int = Field(default=3, ge=0, le=10, alias="NOMINATIM_MAX_RETRIES")
    backoff_base_seconds: float = Field(default=1.0, ge=0, le=60, alias="NOMINATIM_BACKOFF_SECONDS")
    backoff_max_seconds: float = Field(default=8.0, ge=0, le=300, alias="NOMINATIM_BACKOFF_MAX_SECONDS")
    deadline_seconds: float = Field(default=15.0, gt=0, le=300, alias="NOMINATIM_DEADLINE_SECONDS")
    country_codes: str = Field(
        default="de", alias="NOMINATIM_COUNTRY_CODES", pattern=r"^[a-z]{2}(,[a-z]{2})*$"
    )

    @field_validator("user_agent")
    @classmethod
    def _identifying_agent(cls, value: str) -> str:
        if value.strip().lower() in _SAMPLE_AGENTS or value.startswith("geopy/"):
            raise ValueError("NOMINATIM_USER_AGENT must identify this application, not a sample agent")
        return value.strip()

    @field_validator("min_interval_seconds")
    @classmethod
    def _public_host_rate(cls, value: float, info: ValidationInfo) -> float:
        # A field rule (not a model rule) so the error names NOMINATIM_MIN_INTERVAL_SECONDS.
        if str(info.data.get("domain", "")).strip("/") == PUBLIC_NOMINATIM_DOMAIN and value < 1.0:
            raise ValueError("the public Nominatim allows at most 1 request/s: use 1 or more")
        return value

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.domain.strip('/')}"


class Throttle:
    """Hands out request slots at least `min_interval` apart (thread-safe). Each caller reserves
    the next free slot and sleeps until it, so concurrent callers queue instead of bursting."""

    def __init__(
        self,
        min_interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.min_interval = min_interval
        self.clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free: float | None = None

    def acquire(self, *, deadline: float | None = None) -> bool:
        """Wait for a slot; False (without waiting or reserving) if it would start after `deadline`."""
        with self._lock:
            now = self.clock()
            slot = now if self._next_free is None else max(now, self._next_free)
            if deadline is not None and slot > deadline:
                return False
            self._next_free = slot + self.min_interval
        if slot > now:
            self._sleep(slot - now)
        return True

    def hold(self, seconds: float) -> None:
        """Give no slot for `seconds` from now (the host asked us to back off): every caller in
        the process waits, not only the one that saw the error."""
        with self._lock:
            until = self.clock() + seconds
            self._next_free = until if self._next_free is None else max(self._next_free, until)


_throttles: dict[str, Throttle] = {}
_throttles_lock = threading.Lock()


def shared_throttle(base_url: str, min_interval: float) -> Throttle:
    """One throttle per Nominatim host per process, whichever client asks."""
    with _throttles_lock:
        throttle = _throttles.get(base_url)
        if throttle is None:
            throttle = _throttles[base_url] = Throttle(min_interval)
        throttle.min_interval = max(throttle.min_interval, min_interval)
        return throttle


class _NominatimPlace(BaseModel):
    """The part of Nominatim's jsonv2/json place we rely on."""

    model_config = ConfigDict(extra="ignore")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    display_name: str
    place_rank: int | None = None
    address: dict[str, str] = Field(default_factory=dict)


def _city(address: dict[str, str]) -> str | None:
    for key in ("city", "town", "village", "municipality", "hamlet", "suburb"):
        if address.get(key):
            return address[key]
    return None


def _transient(error: Exception) -> bool:
    # geopy maps 429 -> RateLimited, 503/504/408 -> TimedOut, unreachable -> Unavailable; other
    # 5xx, refused connections and unreadable bodies arrive as the plain base class.
    return isinstance(error, GeocoderRateLimited | GeocoderTimedOut | GeocoderUnavailable) or (
        type(error) is GeocoderServiceError
    )


class NominatimClient:
    """AddressGeocoder port on Nominatim."""

    def __init__(
        self,
        settings: NominatimSettings,
        *,
        throttle: Throttle | None = None,
    ) -> None:
        self.settings = settings
        self._geopy = Nominatim(
            domain=settings.domain.strip("/"),
            scheme=settings.scheme,
            user_agent=settings.user_agent,
            timeout=settings.timeout_seconds,
            adapter_factory=URLLibAdapter,  # stdlib: the Lambda layer needs no extra HTTP library
        )
        self._throttle = throttle or shared_throttle(settings.base_url, settings.min_interval_seconds)
        self._clock = self._throttle.clock

    @classmethod
    def from_env(cls) -> NominatimClient | None:
        settings = NominatimSettings.from_env()
        return cls(settings) if settings.enabled else None

    def geocode(self, query: AddressQuery) -> AddressMatch | None:
        structured = {"postalcode": query.postcode, "country": "Deutschland"}
        if query.street:
            structured["street"] = query.street
        if query.city:
            structured["city"] = query.city
        found = self._call(
            "search",
            lambda timeout: self._geopy.geocode(
                structured,
                exactly_one=True,
                addressdetails=True,
                country_codes=self.settings.country_codes.split(","),
                language="de",
                timeout=timeout,
            ),
        )
        place = self._parse(found)
        if place is None:
            return None
        if place.place_rank is not None and place.place_rank < STREET_LEVEL_RANK:
            logger.info("nominatim matched only above street level", extra={"rank": place.place_rank})
            return None
        return AddressMatch(
            point=Point(lat=place.lat, lon=place.lon),
            display_name=place.display_name,
            postcode=place.address.get("postcode"),
        )

    def reverse(self, point: Point) -> ReverseAddress | None:
        found = self._call(
            "reverse",
            lambda timeout: self._geopy.reverse(
                (point.lat, point.lon), exactly_one=True, addressdetails=True, language="de", timeout=timeout
            ),
        )
        place = self._parse(found)
        if place is None:
            return None
        return ReverseAddress(
            display_name=place.display_name,
            street=place.address.get("road"),
            house_number=place.address.get("house_number"),
            postcode=place.address.get("postcode"),
            city=_city(place.address),
            country_code=place.address.get("country_code"),
        )

    @staticmethod
    def _parse(found: Any) -> _NominatimPlace | None:
        if found is None:
            return None
        try:
            return _NominatimPlace.model_validate(found.raw)
        except ValidationError as error:
            raise GeocoderUnavailableError(
                "Nominatim answered with a place this client cannot read"
            ) from error

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential (base, 2x base, 4x base ... capped), or longer if the host said so."""
        exponential = min(
            self.settings.backoff_base_seconds * 2.0 ** (attempt - 1), self.settings.backoff_max_seconds
        )
        return max(exponential, retry_after or 0.0)

    def _call(self, operation: str, request: Callable[[float], Any]) -> Any:
        settings = self.settings
        deadline = self._clock() + settings.deadline_seconds
        attempt = 0
        while True:
            if not self._throttle.acquire(deadline=deadline):
                raise GeocoderUnavailableError(f"Nominatim {operation}: no request slot before the deadline")
            remaining = deadline - self._clock()
            try:
                return request(max(0.1, min(settings.timeout_seconds, remaining)))
            except GeocoderServiceError as error:
                if not _transient(error):
                    logger.error(
                        "nominatim refused the request", extra={"operation": operation, "error": str(error)}
                    )
                    raise GeocoderUnavailableError(
                        f"Nominatim {operation} refused the request: {error}"
                    ) from error
                attempt += 1
                retry_after = getattr(error, "retry_after", None)
                wait = self._backoff(attempt, float(retry_after) if retry_after is not None else None)
                if attempt > settings.max_retries or self._clock() + wait > deadline:
                    logger.warning(
                        "nominatim unavailable",
                        extra={"operation": operation, "attempts": attempt, "error": str(error)},
                    )
                    raise GeocoderUnavailableError(
                        f"Nominatim {operation} did not answer after {attempt} attempts: {error}"
                    ) from error
                logger.info(
                    "nominatim retry", extra={"operation": operation, "attempt": attempt, "wait": wait}
                )
                # The next attempt starts `wait` after the failure at the earliest (and at least
                # one throttle interval after the failed request, as for any request).
                self._throttle.hold(wait)
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                # geopy parses the body itself and lets these through for odd JSON.
                logger.error(
                    "nominatim answer unreadable", extra={"operation": operation, "error": str(error)}
                )
                raise GeocoderUnavailableError(
                    f"Nominatim {operation}: answer this client cannot read"
                ) from error
