"""OpenID Connect provider keys: issuer discovery, the JWKS cache and its refresh (the only I/O of auth).

The keys live in a core TokenVerifier; this adapter fills it at start-up, refreshes it in the background
every `oidc_jwks_refresh_seconds`, and once more when a token names an unknown `kid` (a rotation), but
never more often than `oidc_jwks_min_refresh_interval_seconds`: random kids cannot make it hammer the
provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ..core.tokens import ClaimMapping, TokenError, TokenRules, TokenVerifier, keys_from_jwks
from ..settings import AuthSettings

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
# A discovery document or JWK Set is a few KiB; more than this is not a provider we trust.
MAX_DOCUMENT_BYTES = 512 * 1024


class ProviderError(RuntimeError):
    """The identity provider could not be reached or answered something unusable."""


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What the gateway uses of the discovery document."""

    issuer: str
    jwks_uri: str
    algorithms: frozenset[str]  # advertised and allowed


def metadata_from_discovery(document: Any, issuer: str, allow_list: list[str]) -> ProviderMetadata:
    """Check a discovery document against the configured issuer (OIDC Discovery 4.3) and the allow-list."""
    if not isinstance(document, dict):
        raise ProviderError("the discovery document is not a JSON object")
    if document.get("issuer") != issuer:
        raise ProviderError(f"the discovery document names issuer {document.get('issuer')!r}, not {issuer!r}")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise ProviderError("the discovery document has no jwks_uri")
    if issuer.startswith("https://") and not jwks_uri.startswith("https://"):
        raise ProviderError("the provider's jwks_uri is not https while its issuer is")
    advertised = document.get("id_token_signing_alg_values_supported")
    if not isinstance(advertised, list):
        raise ProviderError("the discovery document lists no id_token_signing_alg_values_supported")
    algorithms = frozenset(a for a in advertised if a in allow_list)
    if not algorithms:
        raise ProviderError(f"the provider advertises none of the allowed algorithms {allow_list}: {advertised}")
    return ProviderMetadata(issuer, jwks_uri, algorithms)


def oidc_verifier(settings: AuthSettings) -> TokenVerifier:
    """An empty verifier with the provider's rules and claim mapping; an OidcKeySource fills its keys."""
    assert settings.oidc_issuer is not None
    rules = TokenRules(
        audience=settings.oidc_audience,
        issuer=settings.oidc_issuer,
        leeway_seconds=settings.jwt_leeway_seconds,
        max_lifetime_seconds=settings.token_max_lifetime_seconds,
        max_token_bytes=settings.token_max_bytes,
        required_claims=("exp", "iat", "aud", "iss", "sub"),
    )
    mapping = ClaimMapping(settings.oidc_role_claim, settings.oidc_region_claim, settings.oidc_department_claim)
    return TokenVerifier([], rules, mapping)


class OidcKeySource:
    """Keeps a TokenVerifier's keys equal to the provider's current JWK Set."""

    def __init__(
        self,
        settings: AuthSettings,
        verifier: TokenVerifier,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert settings.oidc_issuer is not None
        self.settings = settings
        self.verifier = verifier
        self.issuer = settings.oidc_issuer
        self.metadata: ProviderMetadata | None = None
        self.fetches = 0  # JWKS requests made (tests and metrics check that random kids do not add to it)
        self._transport = transport
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._last_attempt = -float("inf")
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Discover the provider and load its keys (retried until the start-up timeout); then refresh them."""
        self._client = httpx.AsyncClient(
            timeout=self.settings.oidc_http_timeout_seconds, transport=self._transport, follow_redirects=False
        )
        deadline = self._clock() + self.settings.oidc_startup_timeout_seconds
        while True:
            try:
                await self._discover()
                await self._refresh()
                break
            except ProviderError as exc:
                if self._clock() >= deadline:
                    await self.stop()
                    raise ProviderError(f"identity provider {self.settings.oidc_issuer}: {exc}") from exc
                log.warning("identity provider %s not usable yet: %s", self.settings.oidc_issuer, exc)
                await asyncio.sleep(1.0)
        self._task = asyncio.create_task(self._refresh_forever(), name="oidc-jwks-refresh")

    async def stop(self) -> None:
        """Stop the background refresh and close the HTTP client."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def refresh_for_unknown_kid(self, kid: str) -> bool:
        """Refetch the JWKS because a token named `kid`, unless that was done too recently; True if kid is known now."""
        async with self._lock:
            if kid in self.verifier.kids:
                return True  # another request's refresh (while this one waited) brought it
            if self._clock() - self._last_attempt < self.settings.oidc_jwks_min_refresh_interval_seconds:
                return False
            try:
                await self._refresh_locked()
            except ProviderError as exc:
                log.warning("JWKS refresh for an unknown kid failed: %s", exc)
                return False
            return kid in self.verifier.kids

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.oidc_jwks_refresh_seconds)
            try:
                await self._refresh()
            except ProviderError as exc:
                # Keep the keys we have: a provider outage must not lock everyone out at once.
                log.warning("background JWKS refresh failed, keeping %d keys: %s", len(self.verifier.kids), exc)

    async def _refresh(self) -> None:
        async with self._lock:
            await self._refresh_locked()

    async def _refresh_locked(self) -> None:
        assert self.metadata is not None
        self._last_attempt = self._clock()
        self.fetches += 1
        jwks = await self._get_json(self.metadata.jwks_uri)
        if not isinstance(jwks, dict):
            raise ProviderError("the JWK Set is not a JSON object")
        try:
            keys = keys_from_jwks(jwks, self.metadata.algorithms)
        except TokenError as exc:
            raise ProviderError(str(exc)) from exc
        if not keys:
            raise ProviderError(f"the JWK Set holds no signature key for {sorted(self.metadata.algorithms)}")
        if self.verifier.replace_keys(keys):
            log.info("identity provider keys now %s", sorted(k.kid for k in keys))

    async def _discover(self) -> None:
        document = await self._get_json(self.issuer.rstrip("/") + DISCOVERY_PATH)
        self.metadata = metadata_from_discovery(document, self.issuer, self.settings.oidc_algorithms)

    async def _get_json(self, url: str) -> Any:
        assert self._client is not None
        try:
            async with self._client.stream("GET", url, headers={"Accept": "application/json"}) as response:
                if response.status_code != 200:
                    raise ProviderError(f"GET {url} answered {response.status_code}")
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise ProviderError(f"GET {url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise ProviderError(f"GET {url} failed: {exc!r}") from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ProviderError(f"GET {url} did not answer JSON") from exc
