"""The API's authorizer (functions/authorizer + platform/bearer_tokens.py) with keys made here:
what it accepts, everything it must refuse (401), its key cache, and what it hands the functions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from support import FakeLambdaContext, load_function
from therapy_platform.platform.bearer_tokens import (
    AuthorizerSettings,
    InvalidTokenError,
    JwksCache,
    KeySourceError,
    TokenRules,
    TokenVerifier,
    build_verifier,
    require_secure_url,
)
from therapy_platform.platform.rest.access import Identity
from therapy_platform.platform.settings import SettingsError

ISSUER = "https://login.example.org/realms/vermittlung"
AUDIENCE = "therapy-platform-api"
JWKS_URL = f"{ISSUER}/protocol/openid-connect/certs"
METHOD_ARN = "arn:aws:execute-api:eu-central-1:123456789012:abc123/dev/GET/api/v2/patients"


class Key:
    """A signing key of the identity provider (or of an attacker), with its public JWK."""

    def __init__(self, kid: str, kind: str = "rsa") -> None:
        self.kid = kid
        if kind == "rsa":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.algorithm = "RS256"
            jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.algorithm = "ES256"
            jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        self.jwk = {**jwk, "kid": kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(self, claims: Mapping[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(
            dict(claims), self.private, algorithm=self.algorithm, headers={"kid": kid or self.kid}
        )


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "anna@team.example",
        "name": "Anna Beispiel",
        "roles": ["staff"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


class Issuer:
    """The identity provider's key endpoint as the verifier fetches it (counting fetches)."""

    def __init__(self, *keys: Key) -> None:
        self.keys = list(keys)
        self.requests: list[str] = []

    def fetch(self, url: str) -> Mapping[str, Any]:
        self.requests.append(url)
        if url == JWKS_URL:
            return {"keys": [key.jwk for key in self.keys]}
        raise KeySourceError(f"no document at {url}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: Mapping[str, Any], payload: Mapping[str, Any], signature: bytes = b"") -> str:
    """A token put together by hand, as an attacker would."""
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}.{_b64(signature)}"


@pytest.fixture
def key() -> Key:
    return Key("key-2026-11")


@pytest.fixture
def issuer(key: Key) -> Issuer:
    return Issuer(key)


@pytest.fixture
def verifier(issuer: Issuer) -> TokenVerifier:
    return TokenVerifier(
        TokenRules(ISSUER, AUDIENCE, "roles"), JwksCache(ISSUER, jwks_url=JWKS_URL, fetch=issuer.fetch)
    )


def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidTokenError) as raised:
        verifier.verify(token)
    return raised.value.reason


# ---------------------------------------------------------------- what it accepts


def test_a_good_token_gives_the_caller(verifier: TokenVerifier, key: Key) -> None:
    identity = verifier.verify(key.sign(claims(roles=["staff", "admin"])))
    assert identity == Identity("anna@team.example", "Anna Beispiel", frozenset({"staff", "admin"}))


def test_an_ec_key_works_too() -> None:
    key = Key("ec-1", "ec")
    verifier = TokenVerifier(
        TokenRules(ISSUER, AUDIENCE), JwksCache(ISSUER, jwks_url=JWKS_URL, fetch=Issuer(key).fetch)
    )
    assert verifier.verify(key.sign(claims())).roles == {"staff"}


@pytest.mark.parametrize(
    ("roles_claim", "extra", "expected"),
    [
        ("cognito:groups", {"cognito:groups": ["admin", "Other Group"]}, {"admin", "Other Group"}),
        (
            "realm_access.roles",
            {"realm_access": {"roles": ["auditor", "offline_access"]}},
            {"auditor", "offline_access"},
        ),
        ("roles", {"roles": "staff admin"}, {"staff", "admin"}),
        ("roles", {"roles": None}, set()),
        ("groups", {}, set()),
    ],
)
def test_roles_come_from_the_configured_claim(
    issuer: Issuer, key: Key, roles_claim: str, extra: dict[str, Any], expected: set[str]
) -> None:
    verifier = TokenVerifier(
        TokenRules(ISSUER, AUDIENCE, roles_claim), JwksCache(ISSUER, jwks_url=JWKS_URL, fetch=issuer.fetch)
    )
    assert verifier.verify(key.sign(claims(**extra))).roles == expected


def test_an_audience_list_containing_ours_is_accepted(verifier: TokenVerifier, key: Key) -> None:
    assert verifier.verify(key.sign(claims(aud=["account", AUDIENCE]))).user_id == "anna@team.example"


def test_the_display_name_falls_back_to_the_username_then_the_subject(
    verifier: TokenVerifier, key: Key
) -> None:
    assert verifier.verify(key.sign(claims(name=None, preferred_username="anna"))).display_name == "anna"
    assert verifier.verify(key.sign(claims(name=None))).display_name == "anna@team.example"


# ---------------------------------------------------------------- what it refuses


def test_expired_tokens_are_refused(verifier: TokenVerifier, key: Key) -> None:
    now = int(time.time())
    assert refused(verifier, key.sign(claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600))) == "expired"


def test_tokens_not_valid_yet_are_refused(verifier: TokenVerifier, key: Key) -> None:
    now = int(time.time())
    reason = refused(verifier, key.sign(claims(nbf=now + 3600, exp=now + 7200)))
    assert reason.startswith("not valid yet")


def test_a_token_without_exp_is_refused(verifier: TokenVerifier, key: Key) -> None:
    assert refused(verifier, key.sign(claims(exp=None))) == "missing claim exp"


def test_a_token_without_a_subject_is_refused(verifier: TokenVerifier, key: Key) -> None:
    assert refused(verifier, key.sign(claims(sub=None))) == "missing claim sub"


def test_another_issuers_tokens_are_refused(verifier: TokenVerifier, key: Key) -> None:
    assert (
        refused(verifier, key.sign(claims(iss="https://evil.example/realms/vermittlung"))) == "wrong issuer"
    )


def test_tokens_for_another_audience_are_refused(verifier: TokenVerifier, key: Key) -> None:
    assert refused(verifier, key.sign(claims(aud="another-app"))) == "wrong audience"


def test_a_forged_signature_is_refused(verifier: TokenVerifier, key: Key) -> None:
    attacker = Key(key.kid)  # the issuer's key id, the attacker's own key
    assert refused(verifier, attacker.sign(claims(roles=["admin"]))) == "bad signature"


def test_a_tampered_payload_is_refused(verifier: TokenVerifier, key: Key) -> None:
    header, _, signature = key.sign(claims()).split(".")
    payload = _b64(json.dumps(claims(roles=["admin"])).encode())
    assert refused(verifier, f"{header}.{payload}.{signature}") == "bad signature"


def test_alg_none_is_refused(verifier: TokenVerifier, key: Key) -> None:
    token = unsigned({"alg": "none", "typ": "JWT", "kid": key.kid}, claims(roles=["admin"]))
    assert refused(verifier, token) == "algorithm 'none' is not allowed"
    assert refused(verifier, unsigned({"alg": "None", "kid": key.kid}, claims())).startswith("algorithm")


def test_hs256_signed_with_the_public_key_is_refused(verifier: TokenVerifier, key: Key) -> None:
    """The classic confusion attack: the issuer's public key (which anyone can fetch) used as an
    HMAC secret."""
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = (
        f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims(roles=['admin'])).encode())}"
    )
    signature = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    assert refused(verifier, f"{signing_input}.{_b64(signature)}") == "algorithm 'HS256' is not allowed"


def test_an_algorithm_other_than_the_keys_is_refused(verifier: TokenVerifier, key: Key) -> None:
    token = jwt.encode(claims(), key.private, algorithm="PS256", headers={"kid": key.kid})
    assert refused(verifier, token).startswith("invalid token")


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "x" * 20000])
def test_malformed_tokens_are_refused(verifier: TokenVerifier, token: str) -> None:
    refused(verifier, token)


def test_a_token_without_a_key_id_is_refused(verifier: TokenVerifier, key: Key) -> None:
    token = jwt.encode(claims(), key.private, algorithm="RS256")
    assert refused(verifier, token) == "the token names no signing key (kid)"


# ---------------------------------------------------------------- the key cache


def test_keys_are_fetched_once_and_again_when_an_unknown_kid_appears(key: Key) -> None:
    issuer = Issuer(key)
    clock = [1000.0]
    cache = JwksCache(
        ISSUER, jwks_url=JWKS_URL, fetch=issuer.fetch, refresh_interval_s=60, clock=lambda: clock[0]
    )
    verifier = TokenVerifier(TokenRules(ISSUER, AUDIENCE), cache)
    for _ in range(3):
        verifier.verify(key.sign(claims()))
    assert len(issuer.requests) == 1

    rotated = Key("key-2026-12")
    clock[0] += 61
    issuer.keys.append(rotated)  # the issuer rotates: the new key's tokens work at once
    assert verifier.verify(rotated.sign(claims())).user_id == "anna@team.example"
    assert len(issuer.requests) == 2


def test_unknown_key_ids_cannot_make_it_hammer_the_issuer(key: Key) -> None:
    issuer = Issuer(key)
    clock = [1000.0]
    cache = JwksCache(
        ISSUER, jwks_url=JWKS_URL, fetch=issuer.fetch, refresh_interval_s=60, clock=lambda: clock[0]
    )
    verifier = TokenVerifier(TokenRules(ISSUER, AUDIENCE), cache)
    verifier.verify(key.sign(claims()))
    for number in range(5):
        assert refused(verifier, key.sign(claims(), kid=f"random-{number}")) == "unknown signing key"
    assert len(issuer.requests) == 1
    clock[0] += 60
    assert refused(verifier, key.sign(claims(), kid="random-again")) == "unknown signing key"
    assert len(issuer.requests) == 2


def test_keys_are_found_through_oidc_discovery(key: Key) -> None:
    documents: dict[str, Mapping[str, Any]] = {
        f"{ISSUER}/.well-known/openid-configuration": {"issuer": ISSUER, "jwks_uri": JWKS_URL},
        JWKS_URL: {"keys": [key.jwk]},
    }
    cache = JwksCache(ISSUER, fetch=lambda url: documents[url])
    assert TokenVerifier(TokenRules(ISSUER, AUDIENCE), cache).verify(key.sign(claims())).roles == {"staff"}
    assert cache.jwks_url() == JWKS_URL


def test_discovery_naming_another_issuer_is_not_trusted(key: Key) -> None:
    documents = {
        f"{ISSUER}/.well-known/openid-configuration": {"issuer": "https://evil.example", "jwks_uri": JWKS_URL}
    }
    cache = JwksCache(ISSUER, fetch=lambda url: documents[url])
    with pytest.raises(KeySourceError):
        TokenVerifier(TokenRules(ISSUER, AUDIENCE), cache).verify(key.sign(claims()))


def test_without_discovery_the_well_known_jwks_is_used(key: Key) -> None:
    issuer = Issuer(key)
    cache = JwksCache(ISSUER, fetch=issuer.fetch)
    with pytest.raises(KeySourceError):
        cache.key(key.kid)  # Issuer answers neither discovery nor /.well-known/jwks.json
    assert issuer.requests == [
        f"{ISSUER}/.well-known/openid-configuration",
        f"{ISSUER}/.well-known/jwks.json",
    ]


def test_hmac_keys_in_the_jwks_are_never_used(key: Key) -> None:
    secret = {"kty": "oct", "kid": "shared", "k": _b64(b"s" * 32), "alg": "HS256"}
    cache = JwksCache(ISSUER, jwks_url=JWKS_URL, fetch=lambda url: {"keys": [secret, key.jwk]})
    verifier = TokenVerifier(TokenRules(ISSUER, AUDIENCE), cache)
    token = jwt.encode(claims(), b"s" * 32, algorithm="HS256", headers={"kid": "shared"})
    assert refused(verifier, token) == "algorithm 'HS256' is not allowed"
    with pytest.raises(InvalidTokenError):
        cache.key("shared")


@pytest.mark.parametrize(
    "url", ["http://login.example.org", "ftp://127.0.0.1/x", "https://", "file:///etc/passwd"]
)
def test_issuers_and_key_urls_must_be_https_except_on_loopback(url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        require_secure_url(url, "issuer")
    assert require_secure_url("http://127.0.0.1:8118", "issuer") == "http://127.0.0.1:8118"


def test_settings_refuse_an_insecure_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_ISSUER", "http://login.example.org")
    monkeypatch.setenv("AUTH_AUDIENCE", AUDIENCE)
    with pytest.raises(SettingsError, match="AUTH_ISSUER"):
        AuthorizerSettings.from_env()


# ---------------------------------------------------------------- the handler


@pytest.fixture
def authorizer(monkeypatch: pytest.MonkeyPatch, issuer: Issuer) -> Any:
    monkeypatch.setenv("AUTH_ISSUER", ISSUER)
    monkeypatch.setenv("AUTH_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("AUTH_JWKS_URL", JWKS_URL)
    module = load_function("authorizer")
    settings = AuthorizerSettings.from_env()
    monkeypatch.setattr(module, "verifier", build_verifier(settings, fetch=issuer.fetch))
    return module


def authorize(module: Any, header: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "TOKEN", "methodArn": METHOD_ARN}
    if header is not None:
        event["authorizationToken"] = header
    result: dict[str, Any] = module.lambda_handler(event, FakeLambdaContext())
    return result


def test_the_handler_allows_the_whole_api_and_passes_the_caller(authorizer: Any, key: Key) -> None:
    token = key.sign(claims(roles=["admin", "not-a-platform-role"]))
    result = authorize(authorizer, f"Bearer {token}")
    assert result["principalId"] == "anna@team.example"
    assert result["context"] == {
        "user_id": "anna@team.example",
        "display_name": "Anna Beispiel",
        "roles": "admin",
    }
    [statement] = result["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    # Cached per token by API Gateway for every route: the whole stage, not just this method.
    assert statement["Resource"] == ["arn:aws:execute-api:eu-central-1:123456789012:abc123/dev/*/*"]


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic YW5uYTpzZWNyZXQ=", "Bearer not.a.token"])
def test_the_handler_answers_unauthorized_without_a_valid_bearer_token(
    authorizer: Any, header: str | None
) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(authorizer, header)


def test_the_handler_answers_unauthorized_to_an_expired_token(authorizer: Any, key: Key) -> None:
    now = int(time.time())
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(authorizer, f"Bearer {key.sign(claims(iat=now - 900, nbf=now - 900, exp=now - 600))}")


def test_the_handler_answers_unauthorized_when_the_keys_are_unreachable(
    authorizer: Any, key: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(url: str) -> Mapping[str, Any]:
        raise KeySourceError("connection refused")

    monkeypatch.setattr(authorizer, "verifier", build_verifier(AuthorizerSettings.from_env(), fetch=down))
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(authorizer, f"Bearer {key.sign(claims())}")


def test_the_token_never_reaches_the_log(authorizer: Any, key: Key, caplog: pytest.LogCaptureFixture) -> None:
    token = key.sign(claims(aud="another-app"))
    with caplog.at_level("INFO"), pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(authorizer, f"Bearer {token}")
    logged = " ".join(str(vars(record)) for record in caplog.records)
    assert any(getattr(record, "reason", None) == "wrong audience" for record in caplog.records)
    assert token.split(".")[1] not in logged and "anna@team.example" not in logged
