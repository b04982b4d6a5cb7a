"""The OIDC key source against a real local HTTP server: discovery checks, JWKS refresh and its limits.

Keycloak itself is exercised in tests/integration/test_oidc_keycloak.py; this server lets a test make
the provider misbehave (wrong issuer, outage, oversized answers) and count every request.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, generate_private_key
from pydantic import ValidationError

from fundtrail_gateway.adapters.keys import server_verifier
from fundtrail_gateway.adapters.oidc import OidcKeySource, ProviderError, oidc_verifier
from fundtrail_gateway.core.auth import Role
from fundtrail_gateway.core.tokens import TokenVerifier, UnknownKeyError, VerifierChain
from fundtrail_gateway.settings import AuthSettings

KEY_A = generate_private_key(65537, 2048)
KEY_B = generate_private_key(65537, 2048)


class Provider:
    """A minimal OpenID provider: discovery document and JWK Set, both replaceable, requests counted."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}/realms/test"
        self.discovery: dict[str, Any] = {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/certs",
            "id_token_signing_alg_values_supported": ["RS256", "HS256"],
        }
        self.keys: dict[str, RSAPrivateKey] = {"a": KEY_A}
        self.status = 200
        self.padding = 0
        self.requests: list[str] = []

    def jwks(self) -> dict[str, Any]:
        keys = [{**jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key(), as_dict=True), "kid": kid, "alg": "RS256",
                 "use": "sig"} for kid, k in self.keys.items()]
        return {"keys": keys, "padding": "x" * self.padding}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.requests.append(self.path)
                doc = provider.discovery if self.path.endswith("openid-configuration") else provider.jwks()
                body = json.dumps(doc).encode()
                self.send_response(provider.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def jwks_fetches(self) -> int:
        return sum(1 for p in self.requests if p.endswith("/certs"))

    def token(self, kid: str = "a", key: RSAPrivateKey = KEY_A, **over: Any) -> str:
        now = int(time.time())
        claims = {"sub": "k", "iss": self.issuer, "aud": "fundtrail-gateway", "iat": now, "exp": now + 300,
                  "scope": "auditor", **over}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    thread = threading.Thread(target=p.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield p
    finally:
        p.server.shutdown()
        p.server.server_close()


def settings(provider: Provider, **over: Any) -> AuthSettings:
    values: dict[str, Any] = {"oidc_issuer": provider.issuer, "environment": "test", "oidc_startup_timeout_seconds": 0,
                              "jwt_algorithm": "EdDSA"}
    values.update(over)
    return AuthSettings(**values)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the background refresh to make `condition` true (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def started(provider: Provider, clock: Clock | None = None, **over: Any) -> tuple[OidcKeySource, TokenVerifier]:
    s = settings(provider, **over)
    verifier = oidc_verifier(s)
    source = OidcKeySource(s, verifier, clock=clock or time.monotonic)
    await source.start()
    return source, verifier


async def test_discovery_and_keys(provider: Provider) -> None:
    source, verifier = await started(provider)
    try:
        assert verifier.kids == {"a"}
        # HS256 is advertised but never allowed: only the asymmetric allow-list intersects.
        assert source.metadata is not None and source.metadata.algorithms == {"RS256"}
        assert verifier.decode(provider.token()).roles == {Role.AUDITOR}
    finally:
        await source.stop()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issuer": "http://127.0.0.1:1/elsewhere"}, "names issuer"),
        ({"jwks_uri": None}, "no jwks_uri"),
        ({"id_token_signing_alg_values_supported": ["HS256", "none"]}, "none of the allowed algorithms"),
    ],
)
async def test_bad_discovery_refused_at_start(provider: Provider, change: dict[str, Any], message: str) -> None:
    provider.discovery.update(change)
    with pytest.raises(ProviderError, match=message):
        await started(provider)


async def test_unreachable_or_oversized_provider_refused_at_start(provider: Provider) -> None:
    provider.status = 503
    with pytest.raises(ProviderError, match="answered 503"):
        await started(provider)
    provider.status = 200
    provider.padding = 600 * 1024
    with pytest.raises(ProviderError, match="more than"):
        await started(provider)


async def test_unknown_kid_refetch_is_rate_limited(provider: Provider) -> None:
    clock = Clock()
    source, verifier = await started(provider, clock, oidc_jwks_min_refresh_interval_seconds=30)
    try:
        assert provider.jwks_fetches() == 1
        provider.keys = {"b": KEY_B}  # the provider rotated
        # Within the interval: no request at all, however many unknown kids arrive at once.
        results = await asyncio.gather(*(source.refresh_for_unknown_kid(f"random-{i}") for i in range(50)))
        assert not any(results) and provider.jwks_fetches() == 1
        clock.now += 31
        # After it: one request, shared by concurrent callers; the rotated key is then known.
        results = await asyncio.gather(*(source.refresh_for_unknown_kid("b") for _ in range(20)))
        assert all(results) and provider.jwks_fetches() == 2
        assert verifier.kids == {"b"}
        with pytest.raises(UnknownKeyError):
            verifier.decode(provider.token("a", KEY_A))
        assert verifier.decode(provider.token("b", KEY_B)).subject == "k"
    finally:
        await source.stop()


async def test_background_refresh_keeps_keys_through_an_outage(provider: Provider) -> None:
    source, verifier = await started(provider, oidc_jwks_refresh_seconds=0.05)
    try:
        provider.status = 500
        before = provider.jwks_fetches()
        await until(lambda: provider.jwks_fetches() >= before + 2)  # two failed background refreshes
        assert verifier.kids == {"a"}  # an outage does not lock everyone out
        provider.status = 200
        provider.keys = {"b": KEY_B}
        await until(lambda: verifier.kids == {"b"})
    finally:
        await source.stop()


def test_settings_rules(provider: Provider) -> None:
    # OIDC only: the server needs no local key.
    s = settings(provider)
    assert s.oidc_enabled and not s.local_key_accepted
    with pytest.raises(ValidationError, match="only in the development environment"):
        settings(provider, oidc_accept_dev_tokens=True)
    with pytest.raises(ValidationError, match="https"):
        settings(provider, environment="production")
    with pytest.raises(ValidationError, match="OIDC_ALGORITHMS"):
        settings(provider, oidc_algorithms=["RS256", "HS256"])
    # Development may accept both, deliberately: the token's kid picks the key set.
    dev = settings(provider, environment="development", oidc_accept_dev_tokens=True, jwt_algorithm="HS256",
                   jwt_secret="d" * 40)
    verifier, source = server_verifier(dev)
    assert isinstance(verifier, VerifierChain) and source is not None
    only_oidc, _ = server_verifier(s)
    assert isinstance(only_oidc, TokenVerifier) and not isinstance(only_oidc, VerifierChain)
