"""Which practice-website addresses the scraper may fetch (server-side request forgery).

A practice website comes from directory data, so it is untrusted: a listing (or a redirect
from the site it names) could point the scraper at the cloud's metadata service, the database,
LocalStack, or anything else only the function's network reaches, and whatever answered would
be stored as the therapist's email. The rules:

- only `http` and `https`, on their default ports (80, 443), without user info in the URL;
- every address the host resolves to must be public: no loopback, private, shared (CGNAT),
  link-local, multicast, reserved, unspecified (`0.0.0.0`, `::`) or documentation range, in
  IPv4 or IPv6, and no IPv6 form that carries such an IPv4 address (IPv4-mapped `::ffff:`,
  IPv4-compatible, 6to4, Teredo, NAT64);
- the operator may name exact origins (`scheme://host:port`) that are fetched whatever they
  resolve to and on their own port: the local directory server, which also serves the demo's
  practice websites. There is no "allow private" switch.

The address check is done on what the host resolves to, not on how the URL spells it, so
`http://2130706433/`, `http://0x7f.1/` or a DNS name pointing at 10.0.0.1 are refused alike.
The adapter (`adapters/public_web.py`) connects to the very address checked here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from therapy_platform.platform.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.ip_network("64:ff9b:1::/48")


class UnsafeAddressError(DomainError):
    """A URL the scraper must not fetch: its scheme, port or address is not a public website's."""

    code = "unsafe_address"


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # lower case, IDNA (ASCII), without a trailing dot; IPv6 without brackets
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class Target:
    """A URL that passed the URL rules: where to connect, and whether its address is checked."""

    origin: Origin
    allow_listed: bool

    @property
    def host(self) -> str:
        return self.origin.host

    @property
    def port(self) -> int:
        return self.origin.port

    @property
    def scheme(self) -> str:
        return self.origin.scheme


def _host(raw: str | None) -> str:
    if not raw:
        raise UnsafeAddressError("the URL names no host")
    host = raw.rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as error:
            raise UnsafeAddressError("the host name is not a valid domain name") from error
    if not host:
        raise UnsafeAddressError("the URL names no host")
    return host


def origin_of(url: str) -> Origin:
    """The URL's origin (scheme, host, port); UnsafeAddressError when it is not http(s)."""
    try:
        parts = urlsplit(url.strip())
        hostname = parts.hostname
    except ValueError as error:  # e.g. an unclosed IPv6 bracket
        raise UnsafeAddressError("the URL cannot be read") from error
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeAddressError(f"only http and https are fetched, not {scheme or 'no scheme'!r}")
    if parts.username is not None or parts.password is not None:
        raise UnsafeAddressError("URLs with user information are not fetched")
    try:
        port = parts.port
    except ValueError as error:
        raise UnsafeAddressError("the URL's port is not a number from 0 to 65535") from error
    return Origin(scheme, _host(hostname), port if port is not None else DEFAULT_PORTS[scheme])


def parse_allowed_origin(text: str) -> Origin:
    """One allow-list entry: exactly `scheme://host[:port]` (a trailing `/` is fine), never an
    unspecified address (`0.0.0.0`, `::`: every local interface at once)."""
    try:
        parts = urlsplit(text.strip())
    except ValueError as error:
        raise ValueError(f"{text!r} is not an origin (scheme://host:port)") from error
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{text!r} is not an origin (scheme://host:port, nothing after it)")
    try:
        origin = origin_of(text)
    except UnsafeAddressError as error:
        raise ValueError(f"{text!r}: {error.message}") from error
    try:
        literal: IPAddress | None = ipaddress.ip_address(origin.host)
    except ValueError:
        literal = None  # a host name
    if literal is not None and literal.is_unspecified:
        raise ValueError(f"{text!r}: an unspecified address stands for every local address")
    return origin


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    """Whether a website may live at this address: globally routable unicast only."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False  # a zone index only means something on this machine's links
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public_address(embedded):
            return False
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or not address.is_global
    )


@dataclass(frozen=True)
class WebsitePolicy:
    """The rules above, with the operator's allow-list (`DIRECTORY_WEBSITE_ALLOWED_ORIGINS`)."""

    allowed_origins: frozenset[Origin] = field(default_factory=frozenset)

    def check_url(self, url: str) -> Target:
        """The target of a URL the scraper may try, or UnsafeAddressError."""
        origin = origin_of(url)
        if origin in self.allowed_origins:
            return Target(origin, allow_listed=True)
        default = DEFAULT_PORTS[origin.scheme]
        if origin.port != default:
            raise UnsafeAddressError(f"{origin.scheme} is fetched on port {default} only")
        return Target(origin, allow_listed=False)

    def check_addresses(self, target: Target, addresses: list[IPAddress]) -> None:
        """Every address the host resolved to must be public (an allow-listed origin excepted):
        one private answer among public ones is refused too, since the connection could land
        on any of them."""
        if not addresses:
            raise UnsafeAddressError(f"{target.host} resolves to no address")
        if target.allow_listed:
            return
        for address in addresses:
            if not is_public_address(address):
                raise UnsafeAddressError(f"{target.host} resolves to a non-public address ({address})")
