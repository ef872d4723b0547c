"""Politeness of the directory client without a network: robots rules, fixed rate per host,
retries with exponential backoff that honour Retry-After, the hard cap, the user agent; the
directory search and the practice-website enrichment on top (beautifulsoup4)."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from therapy_platform.contracts.directory_files import SearchPoint
from therapy_platform.directory.adapters.client import DirectoryClient
from therapy_platform.directory.adapters.enrichment import WebsiteContactEnricher
from therapy_platform.directory.adapters.polite_http import PoliteSession, RequestBudget, retry_after_seconds
from therapy_platform.directory.adapters.public_web import PublicWebTransport
from therapy_platform.directory.domain.contact_text import email_candidates, phone_hours, pick_email
from therapy_platform.directory.domain.runs import (
    BudgetExhaustedError,
    DirectoryUnavailableError,
    MalformedAnswerError,
    RobotsDisallowedError,
)
from therapy_platform.directory.domain.web_addresses import (
    IPAddress,
    Target,
    UnsafeAddressError,
    WebsitePolicy,
    is_public_address,
    parse_allowed_origin,
)
from therapy_platform.directory.settings import DirectorySettings
from therapy_platform.platform.settings import SettingsError
from therapy_platform.therapists.domain.therapist import TherapistDraft

AGENT = "therapy-matching-platform-test/1.0 (ops@example.org)"
Answer = tuple[int, str | bytes, dict[str, str]] | Exception


def response(
    url: str, status: int, body: str | bytes, headers: dict[str, str] | None = None
) -> requests.Response:
    result = requests.Response()
    result.status_code = status
    result._content = body.encode("utf-8") if isinstance(body, str) else body
    result.headers.update({"Content-Type": "application/json; charset=utf-8", **(headers or {})})
    result.encoding = "utf-8"
    result.url = url
    return result


@dataclass
class FakeClock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class FakeHttp:
    """A requests.Session stand-in: answers per URL path (queue; the last one repeats)."""

    clock: FakeClock
    routes: dict[str, list[Answer]] = field(default_factory=dict)
    calls: list[tuple[float, str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def get(
        self, url: str, *, params: dict[str, str], timeout: float, headers: dict[str, str]
    ) -> requests.Response:
        self.calls.append((self.clock.now, url, params, {**self.headers, **headers}))
        path = url.split("://", 1)[1].split("/", 1)[1] if "/" in url.split("://", 1)[1] else ""
        queue = self.routes.get("/" + path) or self.routes.get(url) or [(404, "", {})]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        status, body, extra = answer
        return response(url, status, body, extra)

    def paths(self) -> list[str]:
        return ["/" + call[1].split("://", 1)[1].split("/", 1)[1] for call in self.calls]


def polite(
    http: FakeHttp,
    clock: FakeClock,
    *,
    max_requests: int = 50,
    deadline: float | None = None,
    **overrides: Any,
) -> PoliteSession:
    settings: dict[str, Any] = {
        "user_agent": AGENT,
        "min_interval": 2.0,
        "timeout": 5.0,
        "max_retries": 3,
        "backoff_base": 1.0,
        "backoff_max": 30.0,
        **overrides,
    }
    settings.setdefault("session", http)
    return PoliteSession(
        budget=RequestBudget(max_requests, deadline=deadline, clock=clock),
        sleep=clock.sleep,
        **settings,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def page(*entries: Any, more: bool = False) -> Answer:
    return (200, json.dumps({"arztPraxisDatas": list(entries), "moreResults": more}), {})


BASE = "http://directory.test"
POINT = SearchPoint(latitude=50.77, longitude=6.08)


def test_every_request_identifies_us_and_robots_comes_first(clock: FakeClock) -> None:
    http = FakeHttp(clock, {"/robots.txt": [(404, "", {})], "/api/data": [page()]})
    client = DirectoryClient(polite(http, clock), f"{BASE}/api/data")
    assert client.search(POINT, 10, 0) == {"arztPraxisDatas": [], "moreResults": False}
    assert http.paths() == ["/robots.txt", "/api/data"]
    assert http.headers["User-Agent"] == AGENT
    assert http.calls[1][2] == {"lat": "50.770000", "lon": "6.080000", "r": "10", "page": "0"}
    assert client.requests_made == 2


def test_robots_rules_are_obeyed_and_crawl_delay_slows_us_down(clock: FakeClock) -> None:
    robots = "User-agent: *\nDisallow: /api/\nCrawl-delay: 7\n"
    http = FakeHttp(
        clock, {"/robots.txt": [(200, robots, {})], "/api/data": [page()], "/praxis/": [(200, "<p>", {})]}
    )
    session = polite(http, clock)
    with pytest.raises(RobotsDisallowedError):
        session.get(f"{BASE}/api/data")
    session.get(f"{BASE}/praxis/")
    session.get(f"{BASE}/praxis/")
    assert "/api/data" not in http.paths()
    gaps = [b[0] - a[0] for a, b in pairwise(http.calls)]
    assert all(gap >= 7 for gap in gaps)


def test_an_unreachable_robots_txt_allows_nothing(clock: FakeClock) -> None:
    http = FakeHttp(clock, {"/robots.txt": [(503, "", {})], "/api/data": [page()]})
    with pytest.raises(RobotsDisallowedError):
        polite(http, clock, max_retries=1).get(f"{BASE}/api/data")
    assert "/api/data" not in http.paths()


def test_a_fixed_interval_separates_requests_to_one_host(clock: FakeClock) -> None:
    http = FakeHttp(clock, {"/robots.txt": [(404, "", {})], "/api/data": [page()]})
    session = polite(http, clock, min_interval=3.0)
    for _ in range(4):
        session.get(f"{BASE}/api/data")
    times = [call[0] for call in http.calls]
    assert all(later - earlier >= 3.0 for earlier, later in pairwise(times))


def test_429_and_5xx_are_retried_with_backoff_honouring_retry_after(clock: FakeClock) -> None:
    http = FakeHttp(
        clock,
        {
            "/robots.txt": [(404, "", {})],
            "/api/data": [(429, "", {"Retry-After": "9"}), (503, "", {}), (502, "", {}), page()],
        },
    )
    client = DirectoryClient(polite(http, clock, min_interval=0.0), f"{BASE}/api/data")
    assert client.search(POINT, 10, 0)["moreResults"] is False
    api = [call[0] for call in http.calls if call[1].endswith("/api/data")]
    gaps = [later - earlier for earlier, later in pairwise(api)]
    assert gaps[0] >= 9  # the host asked for 9 s; the backoff alone would be 1 s
    assert gaps[1] >= 2 and gaps[2] >= 4  # then exponential: base * 2**attempt


def test_retries_end_and_say_why(clock: FakeClock) -> None:
    http = FakeHttp(clock, {"/robots.txt": [(404, "", {})], "/api/data": [(500, "", {})]})
    with pytest.raises(DirectoryUnavailableError, match="HTTP 500 after 4 attempts"):
        polite(http, clock).get(f"{BASE}/api/data")


def test_timeouts_and_connection_errors_are_retried(clock: FakeClock) -> None:
    http = FakeHttp(
        clock,
        {
            "/robots.txt": [(404, "", {})],
            "/api/data": [requests.Timeout("slow"), requests.ConnectionError("x"), page()],
        },
    )
    assert polite(http, clock).get(f"{BASE}/api/data").status_code == 200


def test_a_host_asking_for_a_very_long_pause_is_left_alone(clock: FakeClock) -> None:
    http = FakeHttp(
        clock, {"/robots.txt": [(404, "", {})], "/api/data": [(429, "", {"Retry-After": "3600"})]}
    )
    with pytest.raises(DirectoryUnavailableError, match="asks to wait 3600"):
        polite(http, clock).get(f"{BASE}/api/data")
    assert http.paths().count("/api/data") == 1


def test_the_hard_cap_and_the_deadline_end_a_run(clock: FakeClock) -> None:
    http = FakeHttp(clock, {"/robots.txt": [(404, "", {})], "/api/data": [page()]})
    session = polite(http, clock, max_requests=3, min_interval=0.0)
    session.get(f"{BASE}/api/data")
    session.get(f"{BASE}/api/data")
    with pytest.raises(BudgetExhaustedError, match="cap of 3"):
        session.get(f"{BASE}/api/data")
    slow_http = FakeHttp(clock, {"/robots.txt": [(404, "", {})], "/api/data": [page()]})
    late = polite(slow_http, clock, deadline=clock.now + 1, min_interval=5)
    with pytest.raises(BudgetExhaustedError, match="time limit"):
        late.get(f"{BASE}/api/data")  # robots.txt fits; the next slot (5 s later) does not
    assert slow_http.paths() == ["/robots.txt"]


def test_an_answer_that_is_not_json_is_kept_for_the_report(clock: FakeClock) -> None:
    http = FakeHttp(clock, {"/robots.txt": [(404, "", {})], "/api/data": [(200, "<html>Wartung</html>", {})]})
    with pytest.raises(MalformedAnswerError) as raised:
        DirectoryClient(polite(http, clock), f"{BASE}/api/data").search(POINT, 10, 3)
    assert raised.value.text == "<html>Wartung</html>" and "page 3" in raised.value.message


def test_retry_after_as_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Sun, 22 Nov 2026 08:00:30 GMT", now=now) == 30
    assert retry_after_seconds("12") == 12
    assert retry_after_seconds("soon") is None


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"DIRECTORY_USER_AGENT": "python-requests/2.32"}, "DIRECTORY_USER_AGENT"),
        ({"DIRECTORY_MIN_INTERVAL_SECONDS": "0.5"}, "DIRECTORY_MIN_INTERVAL_SECONDS"),
    ],
)
def test_settings_refuse_anonymous_agents_and_a_fast_rate_on_the_public_site(
    env: dict[str, str], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=problem):
        DirectorySettings.from_env()


def test_a_local_directory_may_be_asked_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIRECTORY_BASE_URL", "http://127.0.0.1:8117")
    monkeypatch.setenv("DIRECTORY_MIN_INTERVAL_SECONDS", "0")
    assert DirectorySettings.from_env().search_url == "http://127.0.0.1:8117/api/data"


# ---------------------------------------------------------------------------------------------
# Practice websites
# ---------------------------------------------------------------------------------------------

PUBLIC_IP = "93.184.215.14"


@dataclass
class FakeNet:
    """DNS and connections for PublicWebTransport: `dns` answers per host (a list of answers is
    given out one per lookup, the last one repeating: a rebinding name), and every connection
    is served by `http`'s routes and recorded as (address connected to, URL)."""

    http: FakeHttp
    dns: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)
    connected: list[tuple[str, str]] = field(default_factory=list)

    def resolve(self, host: str, port: int, timeout: float) -> list[IPAddress]:
        self.lookups.append(host)
        if host in self.dns:
            answers = self.dns[host]
            return [ipaddress.ip_address(a) for a in (answers.pop(0) if len(answers) > 1 else answers[0])]
        try:  # what getaddrinfo does with a literal address (also 2130706433, 0x7f.1 ...)
            return [ipaddress.ip_address(host)]
        except ValueError:
            try:
                return [ipaddress.ip_address(socket.inet_ntoa(socket.inet_aton(host)))]
            except OSError:
                return []  # unknown name

    def connect(
        self, address: IPAddress, target: Target, url: str, headers: Mapping[str, str], *, deadline: float
    ) -> requests.Response:
        self.connected.append((str(address), url))
        return self.http.get(url, params={}, timeout=deadline, headers=dict(headers))

    def transport(self, *allowed: str) -> PublicWebTransport:
        policy = WebsitePolicy(frozenset(parse_allowed_origin(origin) for origin in allowed))
        return PublicWebTransport(policy, resolver=self.resolve, connect=self.connect, clock=self.http.clock)


def websites(net: FakeNet, clock: FakeClock, *allowed: str, **overrides: Any) -> PoliteSession:
    """The website session as deployed (bootstrap.website_session), over fake DNS and sockets."""
    return polite(net.http, clock, **{"session": net.transport(*allowed), **overrides})


HOME = """<!doctype html><html><head><title>Praxis Weiß</title><script>var x='spam@tracker.example'</script>
</head><body><h1>Praxis Dr. Jürgen Weiß</h1><a href="/kontakt.html">Kontakt</a></body></html>"""
CONTACT = """<html><body><p>E-Mail: <a href="mailto:Info@Praxis-Weiss.example?subject=Termin">schreiben</a>,
technik@hoster.example</p><h2>Telefonische Sprechzeiten</h2><p>Mo, Mi und Do 12.30 - 13.00 Uhr;
Di 8-9 Uhr</p><h2>Sprechzeiten</h2><p>Mo-Fr 9-18 Uhr</p></body></html>"""


def test_the_practice_website_gives_email_and_phone_hours_with_their_source(clock: FakeClock) -> None:
    site = "https://www.praxis-weiss.example"
    http = FakeHttp(
        clock,
        {
            f"{site}/robots.txt": [(404, "", {})],
            f"{site}/": [(200, HOME, {"Content-Type": "text/html; charset=utf-8"})],
            f"{site}/kontakt.html": [(200, CONTACT, {"Content-Type": "text/html"})],
        },
    )
    net = FakeNet(http, {"www.praxis-weiss.example": [[PUBLIC_IP]]})
    enricher = WebsiteContactEnricher(websites(net, clock), max_fetches=10)
    found = enricher.enrich("www.praxis-weiss.example/")
    assert found is not None and found.email is not None and found.phone_windows is not None
    assert (found.email.value, found.email.source) == ("info@praxis-weiss.example", f"{site}/kontakt.html")
    assert found.phone_windows.value == {
        "mon": ["12:30-13:00"],
        "tue": ["08:00-09:00"],
        "wed": ["12:30-13:00"],
        "thu": ["12:30-13:00"],
    }
    assert enricher.fetches == 2
    # Every request went to the address that was checked, never to the name again.
    assert {address for address, _ in net.connected} == {PUBLIC_IP}


def test_a_website_that_cannot_be_read_gives_nothing(clock: FakeClock) -> None:
    site = "https://down.example"
    http = FakeHttp(clock, {f"{site}/robots.txt": [(404, "", {})], f"{site}/": [(500, "", {})]})
    net = FakeNet(http, {"down.example": [[PUBLIC_IP]]})
    enricher = WebsiteContactEnricher(websites(net, clock, max_retries=1), max_fetches=10)
    assert enricher.enrich(site) is None
    capped = WebsiteContactEnricher(websites(net, clock), max_fetches=0)
    assert capped.enrich(site) is None


# ---------------------------------------------------------------------------------------------
# Practice websites are untrusted: public addresses only (server-side request forgery)
# ---------------------------------------------------------------------------------------------

SECRET = '<html><body><a href="mailto:root@metadata.internal">x</a> Telefonzeiten: Mo 8-9 Uhr</body></html>'
HTML = {"Content-Type": "text/html; charset=utf-8"}
NORD = "https://www.praxis-nord.example"


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:8080/admin",
        "http://localhost/admin",  # a name for loopback
        "http://169.254.169.254/latest/meta-data/",  # the cloud's metadata service
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
        "http://[::ffff:a9fe:a9fe]/",  # 169.254.169.254, mapped and spelled in hex
        "http://0.0.0.0/",
        "http://[::]/",
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0x7f.1/",
        "http://10.1.2.3/",
        "http://192.168.178.1/",
        "http://100.64.0.1/",  # shared address space (carrier NAT)
        "http://[fd00::1]/",  # unique local IPv6
        "http://[fe80::1]/",
        "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
        "http://intern.praxis-nord.example/",  # a DNS name pointing into the private network
        "http://half.praxis-nord.example/",  # one public and one private answer
        "file:///etc/passwd",
        "ftp://www.praxis-nord.example/",
        "https://www.praxis-nord.example:8443/",  # a port other than the scheme's
        "https://user:secret@www.praxis-nord.example/",
    ],
)
def test_a_redirect_away_from_the_public_internet_is_not_followed(clock: FakeClock, location: str) -> None:
    http = FakeHttp(
        clock,
        {
            f"{NORD}/robots.txt": [(404, "", {})],
            f"{NORD}/": [(302, "", {"Location": location})],
            location: [(200, SECRET, HTML)],  # what the internal target would answer if asked
        },
    )
    net = FakeNet(
        http,
        {
            "www.praxis-nord.example": [[PUBLIC_IP]],
            "localhost": [["127.0.0.1", "::1"]],
            "intern.praxis-nord.example": [["10.0.0.7"]],
            "half.praxis-nord.example": [[PUBLIC_IP, "10.0.0.7"]],
        },
    )
    enricher = WebsiteContactEnricher(websites(net, clock), max_fetches=10)
    assert enricher.enrich(f"{NORD}/") is None  # nothing stored as the therapist's email
    # Only the practice's own (public) address was ever connected to: not even the redirect
    # target's robots.txt was asked for.
    assert net.connected == [(PUBLIC_IP, f"{NORD}/robots.txt"), (PUBLIC_IP, f"{NORD}/")]


@pytest.mark.parametrize(
    "website",
    ["http://127.0.0.1:8117/praxis/1/", "127.0.0.1", "http://[::1]/", "http://metadata.google.internal/"],
)
def test_a_website_listed_at_an_internal_address_is_never_connected_to(
    clock: FakeClock, website: str
) -> None:
    http = FakeHttp(clock, {"/robots.txt": [(404, "", {})], "/": [(200, SECRET, HTML)]})
    net = FakeNet(http, {"metadata.google.internal": [["169.254.169.254"]]})
    assert WebsiteContactEnricher(websites(net, clock), max_fetches=10).enrich(website) is None
    assert net.connected == [] and http.calls == []


def test_each_request_connects_to_the_address_it_checked_and_a_rebound_name_is_refused(
    clock: FakeClock,
) -> None:
    """DNS rebinding: the name answers a public address first and loopback afterwards. Every
    request resolves once, checks, and connects to exactly that address; the next request
    resolves again, so the loopback answer is refused instead of connected to."""
    site = "https://rebind.example"
    http = FakeHttp(clock, {f"{site}/robots.txt": [(404, "", {})], f"{site}/": [(200, SECRET, HTML)]})
    net = FakeNet(http, {"rebind.example": [[PUBLIC_IP], ["127.0.0.1"]]})
    assert WebsiteContactEnricher(websites(net, clock), max_fetches=10).enrich(f"{site}/") is None
    assert net.lookups == ["rebind.example", "rebind.example"]
    assert net.connected == [(PUBLIC_IP, f"{site}/robots.txt")]


def test_redirects_are_followed_hop_by_hop_reading_each_new_hosts_robots_txt(clock: FakeClock) -> None:
    old, new = "http://praxis-sued.example", "https://www.praxis-sued.example"
    http = FakeHttp(
        clock,
        {
            f"{old}/robots.txt": [(404, "", {})],
            f"{old}/": [(301, "", {"Location": f"{new}/"})],
            f"{new}/robots.txt": [(301, "", {"Location": "/robots-neu.txt"})],  # robots.txt moves too
            f"{new}/robots-neu.txt": [(200, "User-agent: *\nDisallow: /intern/\n", {})],
            f"{new}/": [(200, HOME.replace("/kontakt.html", "/intern/kontakt.html"), HTML)],
            f"{new}/intern/kontakt.html": [(200, CONTACT, HTML)],
        },
    )
    net = FakeNet(http, {"praxis-sued.example": [[PUBLIC_IP]], "www.praxis-sued.example": [["2a00:1450::1"]]})
    enricher = WebsiteContactEnricher(websites(net, clock), max_fetches=10)
    assert enricher.enrich(f"{old}/") is None  # the contact page is behind Disallow
    assert [url for _, url in net.connected] == [
        f"{old}/robots.txt",
        f"{old}/",
        f"{new}/robots.txt",
        f"{new}/robots-neu.txt",
        f"{new}/",
    ]


def test_a_redirect_loop_ends_after_five_hops(clock: FakeClock) -> None:
    site = "https://kreis.example"
    routes: dict[str, list[Answer]] = {f"{site}/robots.txt": [(404, "", {})]}
    for hop in range(10):
        routes[f"{site}/{hop}"] = [(302, "", {"Location": f"/{hop + 1}"})]
    net = FakeNet(FakeHttp(clock, routes), {"kreis.example": [[PUBLIC_IP]]})
    assert WebsiteContactEnricher(websites(net, clock), max_fetches=10).enrich(f"{site}/0") is None
    assert [url for _, url in net.connected][1:] == [f"{site}/{hop}" for hop in range(6)]


def test_the_operators_allow_list_admits_exactly_its_origins(clock: FakeClock) -> None:
    """Locally the directory server (127.0.0.1:8117) serves the demo's practice websites: the
    local template allows that origin, and nothing else on the machine."""
    local = "http://127.0.0.1:8117"
    http = FakeHttp(
        clock,
        {
            f"{local}/robots.txt": [(404, "", {})],
            f"{local}/praxis/1/": [(200, CONTACT, HTML)],
            f"{local}/praxis/2/": [(302, "", {"Location": "http://127.0.0.1:4566/"})],  # LocalStack
            "http://127.0.0.1:4566/robots.txt": [(404, "", {})],
            "http://127.0.0.1:4566/": [(200, SECRET, HTML)],
        },
    )
    net = FakeNet(http)
    enricher = WebsiteContactEnricher(websites(net, clock, local), max_fetches=10)
    found = enricher.enrich(f"{local}/praxis/1/")
    assert found is not None and found.email is not None
    assert found.email.value == "info@praxis-weiss.example"
    assert enricher.enrich(f"{local}/praxis/2/") is None
    assert {url.split("/")[2] for _, url in net.connected} == {"127.0.0.1:8117"}
    # Without the allow-list the local directory's websites are internal addresses like any other.
    assert (
        WebsiteContactEnricher(websites(FakeNet(http), clock), max_fetches=10).enrich(f"{local}/praxis/1/")
        is None
    )


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2a00:1450:4001:82b::2003", True),
        # 6to4 even around a public address: Python 3.13 follows the IANA registry (2002::/16 is not
        # globally reachable), and a practice website never needs it, so the scraper refuses it.
        ("2002:5db8:d70e::1", False),
        ("127.0.0.1", False),
        ("127.255.255.254", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("::", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::127.0.0.1", False),  # IPv4-compatible
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 around 169.254.169.254
        ("2002:a00:1::1", False),  # 6to4 around 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo
        ("fe80::1", False),
        ("fe80::1%2", False),
        ("fec0::1", False),
        ("fd12:3456::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
    ],
)
def test_which_addresses_count_as_public(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "ftp://praxis.example/",
        "file:///etc/passwd",
        "gopher://praxis.example/",
        "javascript:alert(1)",
        "http:///nohost",
        "http://praxis.example:8080/",
        "https://praxis.example:80/",
        "http://user@praxis.example/",
        "http://praxis.example:99999/",
        "http://[::1/",
    ],
)
def test_only_http_and_https_on_their_own_ports(url: str) -> None:
    with pytest.raises(UnsafeAddressError):
        WebsitePolicy().check_url(url)


def test_urls_on_default_ports_pass_and_hosts_are_normalised() -> None:
    target = WebsitePolicy().check_url("HTTPS://WWW.Praxis-Müller.Example.:443/kontakt")
    assert (target.scheme, target.host, target.port, target.allow_listed) == (
        "https",
        "www.praxis-müller.example".encode("idna").decode("ascii"),
        443,
        False,
    )


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("http://127.0.0.1:8117", True),
        ("http://127.0.0.1:8117/, http://localhost:8118", True),
        ("*", False),
        ("http://127.0.0.1:8117/praxis/", False),  # an origin, not a path
        ("http://0.0.0.0:8117", False),
        ("http://[::]:8117", False),
        ("ftp://127.0.0.1:21", False),
        ("127.0.0.1", False),
    ],
)
def test_the_allow_list_takes_exact_origins_only(
    value: str, accepted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIRECTORY_WEBSITE_ALLOWED_ORIGINS", value)
    if accepted:
        DirectorySettings.from_env().website_policy  # noqa: B018
    else:
        with pytest.raises(SettingsError, match="DIRECTORY_WEBSITE_ALLOWED_ORIGINS"):
            DirectorySettings.from_env()


# ---------------------------------------------------------------------------------------------
# Contact text rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Telefonzeiten: Mo-Fr 8-9 Uhr", {d: ["08:00-09:00"] for d in ("mon", "tue", "wed", "thu", "fri")}),
        (
            "telefonisch erreichbar Dienstag bis Donnerstag 08:00\u201308:50 Uhr",
            {d: ["08:00-08:50"] for d in ("tue", "wed", "thu")},
        ),
        ("Telefonische Sprechzeiten: Sa 25:00-26:00, Fr 12-13", {"fri": ["12:00-13:00"]}),
        ("Sprechzeiten: Mo 9-18 Uhr. Tel. 0241 - 123456", {}),
        ("Telefonsprechstunde Montag 12:00-12:50 und 13:00-13:30", {"mon": ["12:00-12:50", "13:00-13:30"]}),
    ],
)
def test_phone_hours_in_german_text(text: str, expected: dict[str, list[str]]) -> None:
    assert phone_hours(text) == expected


def test_emails_prefer_mailto_and_the_practice_domain() -> None:
    found = email_candidates(
        "Schreiben Sie an kontakt [at] praxis-kuehn.example oder logo@2x.png", ["a@gmail.example"]
    )
    assert found == ["a@gmail.example", "kontakt@praxis-kuehn.example"]
    assert pick_email(found, "https://www.praxis-kuehn.example/") == "kontakt@praxis-kuehn.example"
    assert pick_email(found, None) == "a@gmail.example"
    assert pick_email([], "x") is None


day_words = st.sampled_from(
    ["Mo", "Di.", "Mittwoch", "Do", "Fr", "Sa", "So", "Montag bis Freitag", "Mo-Do", "Mo, Mi und Fr"]
)
clock_words = st.builds(
    lambda h1, m1, h2, m2, sep: f"{h1}{m1} {sep} {h2}{m2} Uhr",
    st.integers(0, 30),
    st.sampled_from(["", ":00", ".30", ":45", ":75"]),
    st.integers(0, 30),
    st.sampled_from(["", ":00", ".15", ":50"]),
    st.sampled_from(["-", "\u2013", "bis"]),
)
noise = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)


@settings(max_examples=300)
@given(parts=st.lists(st.one_of(day_words, clock_words, noise), max_size=12))
def test_phone_hours_of_any_text_are_a_valid_week(parts: list[str]) -> None:
    text = "Telefonische Sprechzeiten: " + " ".join(parts)
    week = phone_hours(text)
    # Whatever the page says, the result is storable as the therapist's phone windows.
    TherapistDraft.model_validate(
        {"first_name": "A", "last_name": "B", "postcode": "10115", "phone_windows": week}
    )
    assert all(week.values())
