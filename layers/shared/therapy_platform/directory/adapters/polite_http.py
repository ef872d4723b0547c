"""HTTP for the directory scraper, within the rules every site deserves (requests):

- an identifying User-Agent with a contact (`DIRECTORY_USER_AGENT`);
- robots.txt of every host is read first (once per run) and obeyed, including Crawl-delay;
  per RFC 9309 a missing robots.txt (4xx) allows everything, an unreachable one (5xx, network)
  allows nothing;
- a low fixed rate per host: at least `min_interval` seconds between two requests to it;
- transient failures (429, 5xx, timeouts, connection errors) are retried with exponential
  backoff (`backoff_base * 2**attempt`, capped) and Retry-After is honoured: the wait is at
  least what the host asked for, and a host asking for more than `backoff_max` is given up
  on for this run rather than hammered;
- a hard cap per run: every request (robots.txt and retries included) spends one unit of a
  shared budget, which also ends at the run's deadline (the Lambda timeout);
- redirects, where the transport does not follow them itself (`PublicWebTransport`, for
  practice websites), are followed here hop by hop up to `max_redirects`: each hop is a request
  of its own, so the transport checks its address, and a hop to another host reads and obeys
  that host's robots.txt first. robots.txt itself follows up to 5 redirects (RFC 9309).
"""

from __future__ import annotations

import email.utils
import logging
import time
import urllib.robotparser
from collections.abc import Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from urllib.parse import urljoin, urlsplit

import requests

from therapy_platform.directory.domain.runs import (
    BudgetExhaustedError,
    DirectoryUnavailableError,
    RobotsDisallowedError,
)

logger = logging.getLogger(__name__)

RETRYABLE_STATUS: Final = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUS: Final = frozenset({301, 302, 303, 307, 308})
ROBOTS_REDIRECTS: Final = 5


class HttpTransport(Protocol):
    """What PoliteSession sends with: a requests.Session (the operator's directory) or
    `public_web.PublicWebTransport` (untrusted practice websites)."""

    @property
    def headers(self) -> MutableMapping[str, Any]: ...

    def get(
        self, url: str, *, params: Mapping[str, str], timeout: float, headers: Mapping[str, str]
    ) -> requests.Response: ...


class RequestBudget:
    """The run's hard cap: `max_requests` requests, and nothing after `deadline` (monotonic)."""

    def __init__(
        self, max_requests: int, *, deadline: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_requests = max_requests
        self.deadline = deadline
        self.clock = clock
        self.used = 0

    def check_time(self, needed_seconds: float = 0.0) -> None:
        if self.deadline is not None and self.clock() + needed_seconds > self.deadline:
            raise BudgetExhaustedError("the run's time limit is reached")

    def take(self) -> None:
        if self.used >= self.max_requests:
            raise BudgetExhaustedError(f"the run's cap of {self.max_requests} requests is reached")
        self.check_time()
        self.used += 1


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class PoliteSession:
    def __init__(
        self,
        *,
        user_agent: str,
        budget: RequestBudget,
        min_interval: float,
        timeout: float,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        session: HttpTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.user_agent = user_agent
        self.budget = budget
        self.min_interval = min_interval
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._session: HttpTransport = session or requests.Session()
        self._session.headers["User-Agent"] = user_agent
        self._sleep = sleep
        self._next_slot: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | bool] = {}

    # -- pacing ---------------------------------------------------------------------------------

    def _wait_for_slot(self, host: str) -> None:
        now = self.budget.clock()
        slot = max(now, self._next_slot.get(host, now))
        self.budget.check_time(slot - now)
        if slot > now:
            self._sleep(slot - now)
        self._next_slot[host] = max(slot, self.budget.clock()) + self._interval.get(host, self.min_interval)

    def _hold(self, host: str, seconds: float) -> None:
        """The host asked us to wait: no request to it before then."""
        self._next_slot[host] = max(self._next_slot.get(host, 0.0), self.budget.clock() + seconds)

    # -- robots.txt -----------------------------------------------------------------------------

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        rules = self._robots.get(origin)
        if rules is None:
            rules = self._read_robots(origin, parts.netloc)
            self._robots[origin] = rules
        if isinstance(rules, bool):
            return rules
        return rules.can_fetch(self.user_agent, url)

    def _read_robots(self, origin: str, host: str) -> urllib.robotparser.RobotFileParser | bool:
        url = f"{origin}/robots.txt"
        try:
            response = self._send(url, params=None, host=host, accept="text/plain")
            for _ in range(ROBOTS_REDIRECTS):
                location = response.headers.get("Location")
                if response.status_code not in REDIRECT_STATUS or not location:
                    break
                url = urljoin(url, location)
                response = self._send(url, params=None, host=urlsplit(url).netloc, accept="text/plain")
        except DirectoryUnavailableError as error:
            logger.warning("robots.txt unreachable: nothing is fetched from %s (%s)", origin, error)
            return False
        if 400 <= response.status_code < 500:
            return True  # no robots.txt: no restrictions
        if response.status_code >= 300:
            return False
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(response.text.splitlines())
        delay = parser.crawl_delay(self.user_agent)
        if delay is not None:
            self._interval[host] = max(self.min_interval, float(delay))
            self._hold(host, self._interval[host])  # from the robots.txt request on
        return parser

    # -- requests -------------------------------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        accept: str = "application/json",
        max_redirects: int = 0,
    ) -> requests.Response:
        """A polite GET: robots rules, rate, retries; up to `max_redirects` redirects, each hop
        checked like the first (a 3xx beyond them is returned). Raises RobotsDisallowedError,
        BudgetExhaustedError, DirectoryUnavailableError (retries spent, or a permanent 4xx
        other than 404) or the transport's refusal (UnsafeAddressError). 404 is returned."""
        for hop in range(max_redirects + 1):
            if not self.allowed(url):
                raise RobotsDisallowedError(f"robots.txt does not allow {url} for {self.user_agent!r}")
            response = self._send(url, params=params, host=urlsplit(url).netloc, accept=accept)
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUS or not location or hop == max_redirects:
                break
            url, params = urljoin(url, location), None
        if response.status_code >= 400 and response.status_code != 404:
            raise DirectoryUnavailableError(f"{url} answered HTTP {response.status_code}")
        return response

    def _send(
        self, url: str, *, params: Mapping[str, str] | None, host: str, accept: str
    ) -> requests.Response:
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            self.budget.take()
            self._wait_for_slot(host)
            try:
                response = self._session.get(
                    url, params=dict(params or {}), timeout=self.timeout, headers={"Accept": accept}
                )
            except (requests.Timeout, requests.ConnectionError) as error:
                last_problem = f"{type(error).__name__}: {error}"
                wait = self._backoff(attempt)
            else:
                if response.status_code not in RETRYABLE_STATUS:
                    return response
                last_problem = f"HTTP {response.status_code}"
                asked = retry_after_seconds(response.headers.get("Retry-After"))
                if asked is not None and asked > self.backoff_max:
                    self._hold(host, asked)
                    raise DirectoryUnavailableError(
                        f"{url}: the host asks to wait {asked:.0f} s (more than {self.backoff_max:.0f} s)"
                    )
                wait = max(self._backoff(attempt), asked or 0.0)
            if attempt == self.max_retries:
                break
            logger.info("retrying %s in %.1f s (%s)", url, wait, last_problem)
            self._hold(host, wait)
        raise DirectoryUnavailableError(f"{url}: {last_problem} after {self.max_retries + 1} attempts")

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff_max, self.backoff_base * 2**attempt))
