"""The local identity provider on 127.0.0.1:${IDENTITY_PORT:-8118} (localcloud/identity_server.py),
started and stopped by PID like the other local servers, and the tokens it vouches for.

The local deployment trusts it (`AuthIssuerUrl=url()`, added by `stack.server_parameters`;
`AuthAudience` from samconfig.toml's `local` overrides). Its RSA signing key is made once and
kept in `.state/identity/signing-key.pem`; `issue_token` (behind `localcloud token`) signs with
that key, so a token works for as long as the key is kept:

    TOKEN=$(.venv/bin/localcloud token --role staff --user anna@team.example)
    curl -H "Authorization: Bearer $TOKEN" "$API/api/v2/patients"
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Final

import requests

import localcloud
from localcloud.paths import PROJECT_ROOT, service_dir
from localcloud.process import start_daemon, stop_daemon

SERVICE = "identity"
DEFAULT_PORT = 8118
HOST = "127.0.0.1"
ALGORITHM: Final = "RS256"
DEFAULT_TTL_S: Final = 3600


def port() -> int:
    return int(os.environ.get("IDENTITY_PORT", str(DEFAULT_PORT)))


def url() -> str:
    """The issuer (the tokens' `iss`, the template's AuthIssuerUrl)."""
    return f"http://{HOST}:{port()}"


def audience() -> str:
    """The audience the local deployment expects (samconfig.toml, `local`: AuthAudience)."""
    with open(PROJECT_ROOT / "samconfig.toml", "rb") as handle:
        overrides = tomllib.load(handle)["local"]["deploy"]["parameters"]["parameter_overrides"]
    return str(next(item.split("=", 1)[1] for item in overrides if item.startswith("AuthAudience=")))


def key_file() -> Path:
    return service_dir(SERVICE) / "signing-key.pem"


def ensure_key(path: Path | None = None) -> Path:
    """The signing key, made on first use (RSA 2048, readable by the owner only)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = path or key_file()
    if path.exists():
        return path
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path  # made by a concurrent caller: use theirs
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return path


def _private_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _public_jwk(path: Path) -> dict[str, Any]:
    from jwt.algorithms import RSAAlgorithm

    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(_private_key(path).public_key()))
    # RFC 7638 thumbprint as the key id: the same key always has the same id.
    canonical = json.dumps({name: jwk[name] for name in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    jwk.update(kid=base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), alg=ALGORITHM, use="sig")
    return jwk


def key_id(path: Path | None = None) -> str:
    return str(_public_jwk(ensure_key(path))["kid"])


def public_jwks(path: Path | None = None) -> dict[str, Any]:
    return {"keys": [_public_jwk(ensure_key(path))]}


def issue_token(
    roles: tuple[str, ...] | list[str],
    *,
    user: str | None = None,
    ttl_s: int = DEFAULT_TTL_S,
    now: float | None = None,
    **claims: Any,
) -> str:
    """A signed bearer token of the local issuer. `claims` override or add any claim (tests make
    expired or wrongly addressed tokens this way)."""
    import jwt

    issued = int(now if now is not None else time.time())
    subject = user or f"local-{roles[0] if roles else 'nobody'}@localhost"
    payload: dict[str, Any] = {
        "iss": url(),
        "aud": audience(),
        "sub": subject,
        "name": subject,
        "roles": list(roles),
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": str(uuid.uuid4()),
    }
    payload.update(claims)
    path = ensure_key()
    return jwt.encode(payload, _private_key(path), algorithm=ALGORITHM, headers={"kid": key_id(path)})


class BearerSession(requests.Session):
    """`requests` as a caller of the locally deployed API (the demo, the e2e tests): every request
    carries a bearer token of this identity provider for `roles` and `user`, made on first use
    and renewed before it expires (a long run outlives any one token)."""

    TTL_S = 3600

    def __init__(self, *roles: str, user: str | None = None) -> None:
        super().__init__()
        self.roles = roles
        self.user = user or f"local-{roles[0] if roles else 'nobody'}@localhost"
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        if time.monotonic() >= self._renew_at:
            self._token = issue_token(self.roles, user=self.user, ttl_s=self.TTL_S)
            self._renew_at = time.monotonic() + self.TTL_S - 300
        return self._token

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["headers"] = {"Authorization": f"Bearer {self.token()}", **(kwargs.get("headers") or {})}
        return super().request(method, url, *args, **kwargs)


def is_healthy(timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url()}/_control/health", timeout=timeout_s) as response:  # noqa: S310
            return bool(json.loads(response.read() or b"{}").get("status") == "ok")
    except (OSError, urllib.error.URLError, ValueError):
        return False


def start(timeout_s: float = 30.0) -> None:
    """Start the issuer as a separate Python process. A no-op when ours is already healthy."""
    infra_dir = Path(localcloud.__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(infra_dir), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    key = ensure_key()
    argv = [
        sys.executable,
        "-m",
        "localcloud.identity_server",
        "--host",
        HOST,
        "--port",
        str(port()),
        "--key",
        str(key),
    ]
    start_daemon(SERVICE, argv, env=env, cwd=service_dir(SERVICE), healthy=is_healthy, timeout_s=timeout_s)


def stop() -> bool:
    """Stop the issuer (the key is kept). False if it was not running."""
    return stop_daemon(SERVICE)
