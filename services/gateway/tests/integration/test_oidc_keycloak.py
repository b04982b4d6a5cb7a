"""Sign-in through a real Keycloak: discovery, JWKS, claim mapping, rotation without restart, refusals.

Keycloak (deploy/keycloak, dev mode, in-memory H2) is started once per session by the root `keycloak`
fixture with the fundtrail realm imported; the gateway under test is the real app with its lifespan,
which discovers the realm and fetches its keys itself.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from fundtrail_devstack.keycloak import KeycloakNode
from fundtrail_gateway.core.auth import Role
from fundtrail_gateway.main import create_app
from fundtrail_gateway.seed import World
from fundtrail_gateway.settings import GatewaySettings
from fundtrail_gateway.testing import running

pytestmark = pytest.mark.integration


@pytest.fixture
def oidc_settings(settings_factory: Callable[..., GatewaySettings], keycloak: KeycloakNode) -> Callable[..., Any]:
    """Gateway settings in OIDC mode against the test realm (Keycloak's realm roles as fundtrail roles)."""

    def make(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "oidc_issuer": keycloak.issuer,
            "oidc_role_claim": "realm_access.roles",
            "oidc_region_claim": "region",
            "oidc_department_claim": "department",
            "oidc_console_client_id": "fundtrail-console",
        }
        values.update(overrides)
        return settings_factory(**values)

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def trail_url(world: World, county: str = "440705") -> str:
    return f"/v1/funds/{world.counties[county].fund_doc_no}/trail"


async def test_signed_in_users_use_the_gateway(
    oidc_settings: Callable[..., GatewaySettings], keycloak: KeycloakNode, world: World, auth: Callable[..., Any]
) -> None:
    compliance = keycloak.password_token("compliance-xinhui")
    auditor = keycloak.password_token("auditor-inspection")
    bureau = keycloak.password_token("bureau-xinhui")
    app = create_app(oidc_settings())
    async with running(app) as client:
        assert (await client.get(trail_url(world), headers=bearer(compliance))).status_code == 200
        # Region from the group attribute: the compliance group of 440705 does not see another county.
        assert (await client.get(trail_url(world, "440781"), headers=bearer(compliance))).status_code == 404
        assert (await client.get(trail_url(world, "440781"), headers=bearer(auditor))).status_code == 200
        # Roles from realm_access.roles: a bureau may not read trails.
        assert (await client.get(trail_url(world), headers=bearer(bureau))).status_code == 403
        principal = app.state.runtime.codec.decode(auditor)
        assert principal.roles == {Role.AUDITOR} and principal.department == "inspection"
        assert app.state.runtime.codec.decode(bureau).region == "440705"
        # OIDC only: a locally signed development token is not accepted (its key is not the provider's).
        r = await client.get(trail_url(world), headers=auth("compliance", "440705"))
        assert r.status_code == 401 and r.json()["reason"] == "unknown-kid"


async def test_wrong_audience_and_issuer_refused(
    oidc_settings: Callable[..., GatewaySettings], keycloak: KeycloakNode, world: World
) -> None:
    # Another client of the same realm: a valid Keycloak token, but not for the gateway.
    other_app = keycloak.password_token("compliance-xinhui", client_id="fundtrail-other-app")
    # The same realm and key reached under another host name: Keycloak (dev mode) issues it as
    # http://localhost:PORT/realms/fundtrail, which is not the issuer the gateway trusts.
    other_issuer = keycloak.password_token("compliance-xinhui", host=f"localhost:{keycloak.port}")
    assert jwt.decode(other_issuer, options={"verify_signature": False})["iss"].startswith("http://localhost:")
    async with running(create_app(oidc_settings())) as client:
        for token, reason in ((other_app, "wrong-audience"), (other_issuer, "wrong-issuer")):
            r = await client.get(trail_url(world), headers=bearer(token))
            assert r.status_code == 401 and r.json()["reason"] == reason, r.text
            assert 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_random_kids_do_not_hammer_the_provider(
    oidc_settings: Callable[..., GatewaySettings], keycloak: KeycloakNode, world: World
) -> None:
    attacker = generate_private_key(65537, 2048)
    now = int(time.time())
    claims = {"sub": "mallory", "iss": keycloak.issuer, "aud": "fundtrail-gateway", "iat": now, "exp": now + 300,
              "realm_access": {"roles": ["auditor"]}}
    forged = [jwt.encode(claims, attacker, algorithm="RS256", headers={"kid": uuid.uuid4().hex}) for _ in range(40)]
    app = create_app(oidc_settings(oidc_jwks_min_refresh_interval_seconds=3600))
    async with running(app) as client:
        source = app.state.runtime.key_source
        fetches = source.fetches
        answers = await asyncio.gather(*(client.get(trail_url(world), headers=bearer(t)) for t in forged))
        assert {r.status_code for r in answers} == {401}
        assert {r.json()["reason"] for r in answers} == {"unknown-kid"}
        # Forty unknown kids within the minimum refresh interval: not one extra JWKS request.
        assert source.fetches == fetches


async def test_key_rotation_without_restart(
    oidc_settings: Callable[..., GatewaySettings], keycloak: KeycloakNode, world: World
) -> None:
    old_providers = [p for p in keycloak.key_providers() if p["providerId"] == "rsa-generated"]
    before = keycloak.password_token("auditor-inspection")
    old_kid = jwt.get_unverified_header(before)["kid"]
    # Two gateways: one refetches on an unknown kid (no minimum interval), one only by its 1 s TTL.
    on_demand = create_app(oidc_settings(oidc_jwks_min_refresh_interval_seconds=0))
    by_ttl = create_app(oidc_settings(oidc_jwks_min_refresh_interval_seconds=3600, oidc_jwks_refresh_seconds=1))
    async with running(on_demand) as client, running(by_ttl) as ttl_client:
        for c in (client, ttl_client):
            assert (await c.get(trail_url(world), headers=bearer(before))).status_code == 200

        keycloak.add_rsa_key(f"rotated-{uuid.uuid4().hex[:8]}", priority=500)
        for provider in old_providers:
            keycloak.remove_component(provider["id"])
        after = keycloak.password_token("auditor-inspection")
        assert jwt.get_unverified_header(after)["kid"] != old_kid

        fetches = on_demand.state.runtime.key_source.fetches
        assert (await client.get(trail_url(world), headers=bearer(after))).status_code == 200
        assert on_demand.state.runtime.key_source.fetches == fetches + 1
        # The removed key's token was cached as valid; the new key set forgot it.
        r = await client.get(trail_url(world), headers=bearer(before))
        assert r.status_code == 401 and r.json()["reason"] == "unknown-kid"

        # The TTL gateway catches up by itself (its background refresh), also without a restart.
        deadline = time.monotonic() + 60
        while (await ttl_client.get(trail_url(world), headers=bearer(after))).status_code != 200:
            assert time.monotonic() < deadline, "the background JWKS refresh never brought the new key"
            await asyncio.sleep(0.2)
        assert (await ttl_client.get(trail_url(world), headers=bearer(before))).status_code == 401
