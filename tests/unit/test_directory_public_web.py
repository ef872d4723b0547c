"""The practice-website transport over real sockets, against small HTTP servers on the loopback
interface (allowed for this module only, tests/conftest.py): a redirect to another local port
is not followed, the connection goes to the address that was checked, the body stops at the
byte cap (compressed or not) and a server that drips its answer is cut off at the deadline."""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from therapy_platform.directory.adapters.enrichment import WebsiteContactEnricher
from therapy_platform.directory.adapters.polite_http import PoliteSession, RequestBudget
from therapy_platform.directory.adapters.public_web import PublicWebTransport
from therapy_platform.directory.bootstrap import website_session
from therapy_platform.directory.domain.web_addresses import IPAddress, WebsitePolicy, parse_allowed_origin
from therapy_platform.directory.settings import DirectorySettings

AGENT = "therapy-matching-platform-test/1.0 (ops@example.org)"
SECRET = '<html><body><a href="mailto:root@metadata.internal">x</a></body></html>'
Answer = tuple[int, dict[str, str], bytes | Callable[[Any], None]]


@dataclass
class Site:
    """A local HTTP server answering per path; it records every request (path, Host header)."""

    routes: dict[str, Answer]
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                site.requests.append((self.path, self.headers.get("Host", "")))
                status, headers, body = site.routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.end_headers()
                    with contextlib.suppress(OSError):  # the client hung up (a cap, a deadline)
                        body(self.wfile)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sites() -> Iterator[Callable[[dict[str, Answer]], Site]]:
    made: list[Site] = []

    def make(routes: dict[str, Answer]) -> Site:
        made.append(Site(routes))
        return made[-1]

    yield make
    for site in made:
        site.close()


HTML = {"Content-Type": "text/html; charset=utf-8"}


def test_a_redirect_to_another_loopback_port_is_not_followed(
    sites: Callable[[dict[str, Answer]], Site],
) -> None:
    """The local demo's practice websites live on the directory server, which the operator
    allow-lists; one of them redirecting to another local service (LocalStack, PostgreSQL, the
    metadata service ...) must not be followed, and nothing it says is stored."""
    internal = sites({"/secret": (200, HTML, SECRET.encode()), "/robots.txt": (404, {}, b"")})
    practice = sites(
        {"/robots.txt": (404, {}, b""), "/": (302, {"Location": f"{internal.origin}/secret"}, b"")}
    )
    settings = DirectorySettings.model_validate(
        {
            "DIRECTORY_BASE_URL": "http://directory.test",
            "DIRECTORY_USER_AGENT": AGENT,
            "DIRECTORY_MIN_INTERVAL_SECONDS": "0",
            "DIRECTORY_TIMEOUT_SECONDS": "5",
            "DIRECTORY_WEBSITE_ALLOWED_ORIGINS": practice.origin,
        }
    )
    session = website_session(settings)(RequestBudget(20))  # as the deployed scraper builds it
    assert WebsiteContactEnricher(session, max_fetches=5).enrich(f"{practice.origin}/") is None
    assert [path for path, _ in practice.requests] == ["/robots.txt", "/"]
    assert internal.requests == []  # never asked, not even for its robots.txt
    # The control: through a plain requests session (what read practice websites before, and
    # still reads the operator's directory) the redirect is followed and the internal page's
    # address would have been stored as the therapist's email.
    plain = PoliteSession(
        user_agent=AGENT,
        budget=RequestBudget(20),
        min_interval=0,
        timeout=5,
        max_retries=0,
        backoff_base=0,
        backoff_max=0,
        session=requests.Session(),
    )
    leaked = WebsiteContactEnricher(plain, max_fetches=5).enrich(f"{practice.origin}/")
    assert leaked is not None and leaked.email is not None and leaked.email.value == "root@metadata.internal"


def test_the_connection_goes_to_the_checked_address_and_the_name_only_names_the_host(
    sites: Callable[[dict[str, Answer]], Site],
) -> None:
    site = sites({"/": (200, HTML, b"<html>ok</html>")})
    port = site.server.server_address[1]
    lookups: list[str] = []

    def resolver(host: str, port: int, timeout: float) -> list[IPAddress]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    policy = WebsitePolicy(frozenset({parse_allowed_origin(f"http://praxis.test:{port}")}))
    transport = PublicWebTransport(policy, resolver=resolver)
    response = transport.get(f"http://praxis.test:{port}/", params={}, timeout=5, headers={})
    assert response.status_code == 200 and response.text == "<html>ok</html>"
    assert lookups == ["praxis.test"]  # resolved once, by us; the socket went to 127.0.0.1
    assert site.requests == [("/", f"praxis.test:{port}")]


def _transport(site: Site) -> PublicWebTransport:
    return PublicWebTransport(WebsitePolicy(frozenset({parse_allowed_origin(site.origin)})))


def test_the_body_stops_at_the_byte_cap_even_when_compressed(
    sites: Callable[[dict[str, Answer]], Site],
) -> None:
    big = b"<html>" + b"x" * 5_000_000
    bomb = gzip.compress(b"\0" * 50_000_000)  # 50 MB in about 50 kB
    site = sites(
        {
            "/big": (200, HTML, big),
            "/bomb": (200, {**HTML, "Content-Encoding": "gzip"}, bomb),
            "/small": (200, {**HTML, "Content-Encoding": "gzip"}, gzip.compress(b"<html>klein</html>")),
        }
    )
    transport = _transport(site)
    assert len(transport.get(f"{site.origin}/big", params={}, timeout=10, headers={}).content) == 1_000_000
    assert len(transport.get(f"{site.origin}/bomb", params={}, timeout=10, headers={}).content) == 1_000_000
    assert (
        transport.get(f"{site.origin}/small", params={}, timeout=10, headers={}).text == "<html>klein</html>"
    )


def test_a_server_dripping_its_answer_is_cut_off_at_the_deadline(
    sites: Callable[[dict[str, Answer]], Site],
) -> None:
    stop = threading.Event()

    def drip(out: Any) -> None:
        # A byte every 50 ms for up to a minute: each read succeeds long before a per-read
        # timeout would, only the fetch's total deadline ends it.
        for _ in range(1200):
            if stop.is_set():
                return
            out.write(b"x")
            out.flush()
            time.sleep(0.05)

    site = sites({"/": (200, {**HTML, "Content-Length": "100000"}, drip)})
    try:
        with pytest.raises(requests.Timeout):
            _transport(site).get(f"{site.origin}/", params={}, timeout=1.0, headers={})
    finally:
        stop.set()
