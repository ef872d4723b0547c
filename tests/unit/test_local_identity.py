"""The local identity provider (localcloud/identity.py, identity_server.py) and `localcloud token`:
the authorizer's own verifier, fetching over HTTP from an in-process server on the loopback
interface, trusts exactly the tokens it issues."""

from __future__ import annotations

import io
import json
import stat
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import jwt
import pytest

from localcloud import cli, identity
from localcloud.identity_server import IdentityServer
from therapy_platform.platform.bearer_tokens import (
    AuthorizerSettings,
    InvalidTokenError,
    build_verifier,
)


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "signing-key.pem"
    monkeypatch.setattr(identity, "key_file", lambda: path)
    return path


@pytest.fixture
def server(key: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityServer]:
    running = IdentityServer(("127.0.0.1", 0), identity.ensure_key(key))
    monkeypatch.setenv("IDENTITY_PORT", str(running.server_address[1]))
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join()


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        document: dict[str, Any] = json.loads(response.read())
    return document


def test_the_key_is_made_once_and_readable_by_its_owner_only(key: Path) -> None:
    identity.ensure_key()
    first = key.read_bytes()
    identity.ensure_key()
    assert key.read_bytes() == first
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_the_server_publishes_discovery_and_the_key(server: IdentityServer) -> None:
    assert server.issuer == identity.url()
    discovery = _get(f"{server.issuer}/.well-known/openid-configuration")
    assert discovery["issuer"] == server.issuer
    assert discovery["jwks_uri"] == f"{server.issuer}/.well-known/jwks.json"
    [jwk] = _get(f"{server.issuer}/.well-known/jwks.json")["keys"]
    assert jwk["kid"] == identity.key_id() and jwk["alg"] == "RS256" and jwk["kty"] == "RSA"
    assert "d" not in jwk  # the public half only


def test_the_authorizers_verifier_trusts_its_tokens(server: IdentityServer) -> None:
    settings = AuthorizerSettings(AUTH_ISSUER=server.issuer, AUTH_AUDIENCE=identity.audience())
    verifier = build_verifier(settings)  # discovery and JWKS over HTTP, as deployed
    caller = verifier.verify(identity.issue_token(("admin",), user="anna@team.example"))
    assert (caller.user_id, caller.roles) == ("anna@team.example", frozenset({"admin"}))
    with pytest.raises(InvalidTokenError, match="expired"):
        verifier.verify(identity.issue_token(("staff",), now=0, ttl_s=60))
    with pytest.raises(InvalidTokenError, match="wrong audience"):
        verifier.verify(identity.issue_token(("staff",), aud="another-app"))


def test_localcloud_token_prints_a_token_for_the_role(server: IdentityServer) -> None:
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert cli.main(["token", "--role", "auditor", "--user", "pruefer@team.example", "--ttl", "120"]) == 0
    token = printed.getvalue().strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["roles"] == ["auditor"] and claims["sub"] == "pruefer@team.example"
    assert claims["iss"] == server.issuer and claims["aud"] == identity.audience()
    assert claims["exp"] - claims["iat"] == 120
    assert jwt.get_unverified_header(token)["kid"] == identity.key_id()


def test_localcloud_token_refuses_unknown_roles_and_silly_lifetimes(key: Path) -> None:
    for argv in (["token", "--role", "root"], ["token", "--role", "staff", "--ttl", "0"]):
        with pytest.raises(SystemExit) as raised:
            cli.main(argv)
        assert raised.value.code == 2
