"""Verifying the OIDC bearer tokens of the organisation's identity provider (Cognito, Entra ID,
Keycloak, or the local one of `localcloud`): the authorizer function's whole job.

PyJWT does the cryptography (from the authorizer's own layer, layers/auth); this module only
decides what to accept:
- the signature against the issuer's published keys (JWKS), fetched once per warm environment
  and fetched again when a token names a key id not seen yet (the issuer rotated its keys), at
  most once per `refresh_interval_s` so random key ids cannot make us hammer the issuer;
- only asymmetric algorithms (RS*, PS*, ES*): never `none`, never an HMAC algorithm (a public key
  used as an HMAC secret would let anyone sign), and the token's `alg` must be the key's own;
- `iss` equal to the configured issuer, `aud` containing the configured audience, `exp` in the
  future and `nbf` (when given) in the past, with a small clock skew; `sub` present;
- the roles from a configurable claim (`roles`, `cognito:groups`, a dotted path such as
  `realm_access.roles` for Keycloak), as a list or a space/comma separated string.

Where the keys come from: `jwks_url` when given, else the issuer's OpenID discovery document
(`<issuer>/.well-known/openid-configuration`, whose `issuer` must be ours), else
`<issuer>/.well-known/jwks.json`. Issuers and key URLs must be https, except on the loopback
interface (the local identity provider).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
from jwt import PyJWK, PyJWKSet
from pydantic import Field, field_validator

from therapy_platform.platform.rest.access import Identity
from therapy_platform.platform.settings import EnvModel

ALLOWED_ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
CLOCK_SKEW_S: Final = 30
MAX_DOCUMENT_BYTES: Final = 512 * 1024
MAX_TOKEN_CHARS: Final = 16 * 1024
_MAX_NAME_CHARS: Final = 100

Fetch = Callable[[str], Mapping[str, Any]]


class InvalidTokenError(Exception):
    """The token cannot be trusted. `reason` names why, never the token's content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeySourceError(RuntimeError):
    """The issuer's keys could not be fetched (its endpoint is down or answers nonsense)."""


def require_secure_url(url: str, what: str) -> str:
    """https, or http only to the loopback interface (the local identity provider)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if loopback:
            return url
    raise ValueError(f"{what} must be an https URL (http only on 127.0.0.1), not {url!r}")


def fetch_json(url: str, *, timeout_s: float = 5.0) -> Mapping[str, Any]:
    """GET a small JSON document (discovery, JWKS) with a timeout and a size cap."""
    require_secure_url(url, "a key or discovery URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            body = response.read(MAX_DOCUMENT_BYTES + 1)
    except (OSError, urllib.error.URLError) as error:
        raise KeySourceError(f"cannot fetch {url}: {error}") from error
    if len(body) > MAX_DOCUMENT_BYTES:
        raise KeySourceError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise KeySourceError(f"{url} did not answer JSON") from error
    if not isinstance(document, dict):
        raise KeySourceError(f"{url} did not answer a JSON object")
    return document


class JwksCache:
    """The issuer's signing keys by key id, refreshed on an unknown kid (rate limited)."""

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None = None,
        fetch: Fetch = fetch_json,
        refresh_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._jwks_url = jwks_url
        self._fetch = fetch
        self._refresh_interval_s = refresh_interval_s
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def jwks_url(self) -> str:
        if self._jwks_url is None:
            self._jwks_url = self._discover()
        return self._jwks_url

    def _discover(self) -> str:
        base = self.issuer.rstrip("/")
        try:
            document = self._fetch(f"{base}/.well-known/openid-configuration")
        except KeySourceError:
            return f"{base}/.well-known/jwks.json"  # issuers without discovery (some Cognito set-ups)
        if str(document.get("issuer", "")).rstrip("/") != base:
            raise KeySourceError("the discovery document names another issuer")
        uri = document.get("jwks_uri")
        if not isinstance(uri, str):
            raise KeySourceError("the discovery document has no jwks_uri")
        return require_secure_url(uri, "jwks_uri")

    def _load(self) -> None:
        document = self._fetch(self.jwks_url())
        self.fetches += 1
        self._fetched_at = self._clock()
        try:
            key_set = PyJWKSet.from_dict(dict(document))
        except jwt.PyJWKSetError as error:
            raise KeySourceError(f"the JWKS has no usable keys: {error}") from error
        self._keys = {
            str(key.key_id): key
            for key in key_set.keys
            if key.key_id and key.public_key_use in (None, "sig") and key.algorithm_name in ALLOWED_ALGORITHMS
        }

    def key(self, key_id: str) -> PyJWK:
        with self._lock:
            if key_id not in self._keys:
                stale = self._fetched_at is None or (
                    self._clock() - self._fetched_at >= self._refresh_interval_s
                )
                if stale:
                    self._load()
            found = self._keys.get(key_id)
        if found is None:
            raise InvalidTokenError("unknown signing key")
        return found


@dataclass(frozen=True)
class TokenRules:
    issuer: str
    audience: str
    roles_claim: str = "roles"


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """`roles`, `cognito:groups` (a plain name), or `realm_access.roles` (a dotted path)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _roles(value: Any) -> frozenset[str]:
    items: Iterable[Any]
    if isinstance(value, str):
        items = value.replace(",", " ").split()
    elif isinstance(value, list | tuple):
        items = value
    else:
        return frozenset()
    return frozenset(str(item).strip() for item in items if isinstance(item, str) and item.strip())


def _clean_name(value: Any) -> str:
    text = "".join(char for char in str(value) if char.isprintable()).strip()
    return text[:_MAX_NAME_CHARS]


class TokenVerifier:
    def __init__(self, rules: TokenRules, keys: JwksCache) -> None:
        self.rules = rules
        self.keys = keys

    def verify(self, token: str) -> Identity:
        """The verified caller, or InvalidTokenError naming why not."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidTokenError("missing or oversized token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise InvalidTokenError("malformed token") from error
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise InvalidTokenError(f"algorithm {str(algorithm)[:20]!r} is not allowed")
        key_id = header.get("kid")
        if not isinstance(key_id, str) or not key_id:
            raise InvalidTokenError("the token names no signing key (kid)")
        key = self.keys.key(key_id)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.rules.audience,
                issuer=self.rules.issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_signature": True},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidTokenError("expired") from error
        except jwt.ImmatureSignatureError as error:
            raise InvalidTokenError("not valid yet (nbf or iat in the future)") from error
        except jwt.InvalidIssuerError as error:
            raise InvalidTokenError("wrong issuer") from error
        except jwt.InvalidAudienceError as error:
            raise InvalidTokenError("wrong audience") from error
        except jwt.InvalidSignatureError as error:
            raise InvalidTokenError("bad signature") from error
        except jwt.MissingRequiredClaimError as error:
            raise InvalidTokenError(f"missing claim {error.claim}") from error
        except jwt.InvalidTokenError as error:
            raise InvalidTokenError(f"invalid token ({type(error).__name__})") from error
        user_id = _clean_name(claims.get("sub", ""))
        if not user_id:
            raise InvalidTokenError("empty subject")
        display = next(
            (
                _clean_name(claims[name])
                for name in ("name", "preferred_username", "email")
                if isinstance(claims.get(name), str) and _clean_name(claims[name])
            ),
            user_id,
        )
        roles = _roles(_claim(claims, self.rules.roles_claim))
        return Identity(user_id=user_id, display_name=display, roles=roles)


class AuthorizerSettings(EnvModel):
    """The identity provider the API trusts (template parameters AuthIssuerUrl, AuthAudience,
    AuthRolesClaim, AuthJwksUrl)."""

    issuer: str = Field(alias="AUTH_ISSUER", min_length=1)
    audience: str = Field(alias="AUTH_AUDIENCE", min_length=1)
    roles_claim: str = Field(default="roles", alias="AUTH_ROLES_CLAIM", min_length=1)
    jwks_url: str | None = Field(default=None, alias="AUTH_JWKS_URL")

    @field_validator("issuer", "jwks_url")
    @classmethod
    def _secure(cls, value: str | None) -> str | None:
        return None if value is None else require_secure_url(value, "the issuer and JWKS URL")


def build_verifier(settings: AuthorizerSettings, *, fetch: Fetch = fetch_json) -> TokenVerifier:
    rules = TokenRules(issuer=settings.issuer, audience=settings.audience, roles_claim=settings.roles_claim)
    return TokenVerifier(rules, JwksCache(settings.issuer, jwks_url=settings.jwks_url, fetch=fetch))
