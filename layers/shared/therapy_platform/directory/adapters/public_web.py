"""GET for untrusted practice websites, against server-side request forgery (the rules are in
`directory/domain/web_addresses.py`). `PublicWebTransport` stands where a requests.Session
stands in `PoliteSession` (same `get` and `headers`), so rate, robots rules, retries and the
run's cap stay the polite session's, and:

- the URL is checked (http/https, default port or an allow-listed origin), then the host is
  resolved once and every address it resolves to is checked;
- the connection goes to the address that was checked, by IP: the socket is opened to it
  and only TLS (SNI and certificate check) and the Host header use the name. Nothing resolves
  the name a second time, so a DNS answer that changes between check and connect (rebinding)
  cannot move the request to another address;
- redirects are never followed here: a 3xx comes back as it is, and the caller checks the next
  hop like the first (`PoliteSession.get(..., max_redirects=)`);
- the body is streamed up to a byte cap (the rest is never read), decoded within that cap if
  the server compresses it anyway, and the whole exchange (resolving included) has one
  deadline: a watchdog shuts the socket when it passes, so a server dripping a byte at a time
  cannot hold the run.

Failures look like requests' own (Timeout, ConnectionError), so the polite session retries them
as before; a refused URL or address raises UnsafeAddressError, which is never retried.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import urlencode, urlsplit

import requests
import requests.utils
from requests.structures import CaseInsensitiveDict

from therapy_platform.directory.domain.web_addresses import (
    IPAddress,
    Target,
    UnsafeAddressError,
    WebsitePolicy,
)

DEFAULT_MAX_BYTES: Final = 1_000_000
_CHUNK: Final = 64 * 1024

Resolver = Callable[[str, int, float], list[IPAddress]]


class Connector(Protocol):
    """One GET over a connection to `address` (the checked one), no redirects followed."""

    def __call__(
        self, address: IPAddress, target: Target, url: str, headers: Mapping[str, str], *, deadline: float
    ) -> requests.Response: ...


def system_resolver(host: str, port: int, timeout: float) -> list[IPAddress]:
    """Every address the system resolver gives for `host` (a literal IP is itself), in its
    order. getaddrinfo cannot be interrupted, so it runs in a helper thread and the caller
    stops waiting after `timeout` seconds."""
    result: list[IPAddress] = []
    failure: list[BaseException] = []

    def resolve() -> None:
        try:
            for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
                address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
                if len(sockaddr) == 4 and sockaddr[3]:  # an IPv6 zone: never public
                    address = ipaddress.IPv6Address(f"{address}%{sockaddr[3]}")
                if address not in result:
                    result.append(address)
        except (OSError, UnicodeError, ValueError) as error:
            failure.append(error)

    worker = threading.Thread(target=resolve, name="resolve-website", daemon=True)
    worker.start()
    worker.join(max(0.0, timeout))
    if worker.is_alive():
        raise requests.Timeout(f"resolving {host} took longer than {timeout:.1f} s")
    if failure:
        raise requests.ConnectionError(f"{host} does not resolve: {type(failure[0]).__name__}")
    return list(result)


def _tls_context() -> ssl.SSLContext:
    try:
        import certifi  # what requests verifies with, so both clients trust the same roots

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with requests
        return ssl.create_default_context()


@dataclass
class _Watchdog:
    """Shuts the socket down when the deadline passes; a blocked read then returns at once."""

    sock: socket.socket
    seconds: float
    fired: bool = False

    def __post_init__(self) -> None:
        self._timer = threading.Timer(max(0.0, self.seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        with contextlib.suppress(OSError):  # closed meanwhile
            self.sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _decoder(encoding: str) -> zlib._Decompress | None:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    return None


class PinnedConnector:
    """The real connector: http.client on a socket opened to the checked address."""

    def __init__(self, *, max_bytes: int = DEFAULT_MAX_BYTES, clock: Callable[[], float] = time.monotonic):
        self.max_bytes = max_bytes
        self.clock = clock
        self._tls = _tls_context()

    def __call__(
        self, address: IPAddress, target: Target, url: str, headers: Mapping[str, str], *, deadline: float
    ) -> requests.Response:
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise requests.Timeout("the fetch's deadline passed before connecting")
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            raw = socket.create_connection((str(address), target.port), timeout=remaining)
        except TimeoutError as error:
            raise requests.ConnectTimeout(f"connecting to {target.host} timed out") from error
        except OSError as error:
            problem = type(error).__name__
            raise requests.ConnectionError(f"cannot connect to {target.host}: {problem}") from error
        sock: socket.socket = raw
        connection: http.client.HTTPConnection | None = None
        watchdog = _Watchdog(raw, deadline - self.clock())
        try:
            if target.scheme == "https":
                sock = self._tls.wrap_socket(raw, server_hostname=target.host)
                connection = http.client.HTTPSConnection(target.host, target.port, context=self._tls)
            else:
                connection = http.client.HTTPConnection(target.host, target.port)
            connection.sock = sock  # already connected to the checked address: never resolved again
            connection.timeout = remaining
            connection.request("GET", path, headers=dict(headers))
            answer = connection.getresponse()
            body = self._read_body(answer)
            status, reason, answer_headers = answer.status, answer.reason, answer.getheaders()
        except TimeoutError as error:
            raise requests.ReadTimeout(f"{target.host} did not answer in time") from error
        except ssl.SSLError as error:
            raise requests.exceptions.SSLError(f"TLS with {target.host} failed: {error.reason}") from error
        except (OSError, http.client.HTTPException, zlib.error) as error:
            if watchdog.fired:
                raise requests.ReadTimeout(f"{target.host} did not finish within the deadline") from error
            raise requests.ConnectionError(f"{target.host}: {type(error).__name__}") from error
        finally:
            watchdog.cancel()
            if connection is not None:
                connection.close()  # the response's file too: the socket really closes
            sock.close()
        if watchdog.fired:
            raise requests.ReadTimeout(f"{target.host} did not finish within the deadline")
        response = requests.Response()
        response.status_code = status
        response.reason = reason
        response.headers = CaseInsensitiveDict(answer_headers)
        response._content = body
        response.url = url
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        return response

    def _read_body(self, answer: http.client.HTTPResponse) -> bytes:
        """At most `max_bytes` of the (decoded) body; what lies beyond is never read."""
        decoder = _decoder((answer.getheader("Content-Encoding") or "").strip().lower())
        kept = bytearray()
        while len(kept) < self.max_bytes:
            chunk = answer.read1(_CHUNK)
            if not chunk:
                break
            if decoder is None:
                kept += chunk
                continue
            kept += decoder.decompress(chunk, self.max_bytes - len(kept))
        return bytes(kept[: self.max_bytes])


class PublicWebTransport:
    """`get` like requests.Session.get (PoliteSession's transport), for untrusted websites."""

    def __init__(
        self,
        policy: WebsitePolicy,
        *,
        resolver: Resolver = system_resolver,
        connect: Connector | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.connect = connect or PinnedConnector(clock=clock)
        self.clock = clock
        self.headers: dict[str, str] = {"Accept-Encoding": "identity", "Connection": "close"}

    def get(
        self, url: str, *, params: Mapping[str, str], timeout: float, headers: Mapping[str, str]
    ) -> requests.Response:
        """One GET within `timeout` seconds in all; raises UnsafeAddressError (refused, before
        any connection), requests.Timeout or requests.ConnectionError."""
        if params:
            url = f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(dict(params))}"
        try:
            url = requests.utils.requote_uri(url)
        except ValueError as error:  # requests' InvalidURL
            raise UnsafeAddressError("the URL cannot be read") from error
        target = self.policy.check_url(url)
        deadline = self.clock() + timeout
        addresses = self.resolver(target.host, target.port, timeout)
        self.policy.check_addresses(target, addresses)
        merged = {**self.headers, **headers}
        last: requests.RequestException | None = None
        for address in addresses:  # each one checked above; the first that answers counts
            try:
                return self.connect(address, target, url, merged, deadline=deadline)
            except requests.ConnectionError as error:
                last = error
                if self.clock() >= deadline:
                    break
        raise last or requests.ConnectionError(f"no address of {target.host} answered")
