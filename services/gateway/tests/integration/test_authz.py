"""Object-level authorization across three counties, role guards and JWT negatives over HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from fundtrail_gateway.core.tokens import key_thumbprint
from fundtrail_gateway.seed import COUNTIES, World

pytestmark = pytest.mark.integration


def id_urls(world: World, county: str) -> list[str]:
    """Every endpoint that takes an id, with the ids of one county's records."""
    c = world.counties[county]
    town_entries = [i for i in c.leaf_indexes[2:]]  # town-level leaves of this county
    return [
        f"/v1/funds/{c.fund_doc_no}",
        f"/v1/funds/{c.fund_doc_no}/trail",
        f"/v1/projects/{c.project_id}/trail",
        f"/v1/payments/{c.payment_id}/trail",
        f"/v1/vendors/{c.vendor_id}/trail",
        f"/v1/events/{c.event_ids[2]}",
        f"/v1/violations/{c.violation_id}",
        f"/v1/violations/{c.open_violation_id}",
        f"/v1/proofs/entries/{town_entries[0]}",
        f"/v1/proofs/entries/{town_entries[-1]}/bundle",
    ]


@pytest.mark.parametrize("reader", COUNTIES)
async def test_zero_cross_county_reads(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World, reader: str
) -> None:
    headers = auth("compliance", reader)
    for owner in COUNTIES:
        for url in id_urls(world, owner):
            r = await client.get(url, headers=headers)
            if owner == reader:
                assert r.status_code == 200, (url, r.text)
            else:
                # 404, not 403: the caller cannot tell a foreign id from a missing one.
                assert r.status_code == 404, (reader, url, r.status_code)
                assert r.headers["content-type"] == "application/problem+json"
                assert set(r.json()) == {"type", "title", "status", "detail", "instance"}


@pytest.mark.parametrize("reader", COUNTIES)
async def test_listings_stay_in_region(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World, reader: str
) -> None:
    headers = auth("compliance", reader)
    violations = (await client.get("/v1/violations", headers=headers)).json()["items"]
    assert violations and all(v["region_code"].startswith(reader) for v in violations)
    other = next(c for c in COUNTIES if c != reader)
    assert (await client.get(f"/v1/violations?region={other}", headers=headers)).json()["items"] == []
    city = (await client.get("/v1/violations?region=440700", headers=headers)).json()["items"]
    assert {v["violation_id"] for v in city} == {v["violation_id"] for v in violations}
    funds = (await client.get("/v1/funds", headers=headers)).json()["items"]
    assert [f["fund_doc_no"] for f in funds] == [world.counties[reader].fund_doc_no]
    trail = (await client.get(f"/v1/funds/{world.counties[reader].fund_doc_no}/trail", headers=headers)).json()
    assert trail["items"] and all(e["region_code"].startswith(reader) for e in trail["items"])


async def test_town_user_sees_only_its_town(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World
) -> None:
    c = world.counties["440705"]
    body = (await client.get(f"/v1/funds/{c.fund_doc_no}", headers=auth("compliance", c.town))).json()
    assert [p["region_code"] for p in body["positions"]] == [c.town]
    assert [ch["region_code"] for ch in body["positions"][0]["children"]] == [c.village]


async def test_auditor_reads_everything(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World
) -> None:
    for county in COUNTIES:
        for url in id_urls(world, county):
            assert (await client.get(url, headers=auth("auditor"))).status_code == 200, url
    funds = (await client.get("/v1/funds", headers=auth("auditor"))).json()["items"]
    assert len(funds) == len(COUNTIES)


@pytest.mark.parametrize("role", ["bureau", "admin"])
async def test_roles_without_read_access_get_403(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World, role: str
) -> None:
    for url in id_urls(world, "440705"):
        r = await client.get(url, headers=auth(role, "440705" if role == "bureau" else None))
        assert r.status_code == 403, url
        assert r.json()["type"] == "urn:fundtrail:problem:forbidden"


async def test_write_operations_need_their_role(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World
) -> None:
    c = world.counties["440705"]
    checks = [
        ("post", "/v1/events", {"json": {}}, ["compliance", "auditor", "admin"]),
        ("post", f"/v1/violations/{c.open_violation_id}/acknowledge", {"json": {}}, ["bureau", "auditor", "admin"]),
        ("put", "/v1/rulepacks/inspection", {"json": {}}, ["bureau", "compliance", "auditor"]),
    ]
    for method, url, kwargs, roles in checks:
        for role in roles:
            region = "440705" if role in ("bureau", "compliance") else None
            r = await client.request(method.upper(), url, headers=auth(role, region), **kwargs)
            assert r.status_code == 403, (method, url, role, r.text)


async def test_compliance_cannot_act_on_foreign_case(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World
) -> None:
    foreign = world.counties["440781"].open_violation_id
    r = await client.post(f"/v1/violations/{foreign}/acknowledge", json={}, headers=auth("compliance", "440705"))
    assert r.status_code == 404


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


async def test_jwt_negatives_refused_over_http(
    client: httpx.AsyncClient, jwt_key: Any, world: World
) -> None:
    key, _, pub_path = jwt_key
    now = datetime.now(UTC)
    base = {"sub": "x", "iss": "fundtrail", "aud": "fundtrail-gateway", "scope": "auditor",
            "iat": int(now.timestamp()), "nbf": int(now.timestamp()),
            "exp": int((now + timedelta(hours=1)).timestamp())}

    kid = key_thumbprint("EdDSA", key.public_key())

    def signed(header_kid: str | None = kid, **over: Any) -> str:
        claims = {k: v for k, v in {**base, **over}.items() if v is not None}
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": header_kid} if header_kid else None)

    import hmac

    header = _b64({"alg": "HS256", "typ": "JWT", "kid": kid})
    body = _b64(base)
    mac = hmac.new(pub_path.read_bytes(), f"{header}.{body}".encode(), "sha256").digest()
    tokens = {
        "expired": signed(exp=int((now - timedelta(minutes=5)).timestamp()),
                          iat=int((now - timedelta(hours=1)).timestamp())),
        "not_yet_valid": signed(nbf=int((now + timedelta(minutes=5)).timestamp())),
        "wrong_audience": signed(aud="other"),
        "wrong_issuer": signed(iss="other"),
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{body}.",
        "hs256_with_public_key": f"{header}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}",
        "missing_exp": signed(exp=None),
        # The findings of issue 20: each is refused now, for its own reason.
        "exp_numeric_string_9999": signed(exp="253402300799"),
        "exp_year_9999": signed(exp=253402300799),
        "no_kid": signed(header_kid=None),
        "unknown_kid": signed(header_kid="not-our-key"),
        "token_64k": signed(padding="x" * 64 * 1024),
    }
    reasons = {"exp_numeric_string_9999": "non-numeric-date", "exp_year_9999": "lifetime-too-long",
               "no_kid": "missing-kid", "unknown_kid": "unknown-kid", "token_64k": "token-too-large",
               "expired": "expired", "wrong_audience": "wrong-audience", "alg_none": "wrong-algorithm"}
    url = f"/v1/funds/{world.counties['440705'].fund_doc_no}/trail"
    assert (await client.get(url, headers={"Authorization": f"Bearer {signed()}"})).status_code == 200
    for name, token in tokens.items():
        r = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (name, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"].startswith('Bearer realm="fundtrail", error="invalid_token"'), name
        problem = r.json()
        assert problem["type"] == "urn:fundtrail:problem:unauthorized" and problem["detail"]
        if name in reasons:
            assert problem["reason"] == reasons[name], (name, problem)
    anonymous = await client.get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="fundtrail"'  # RFC 6750: no error code
    assert (await client.get(url, headers={"Authorization": "Basic eDp5"})).status_code == 401
    missing_scope = signed(scope="bureau", region="440705")
    assert (await client.get(url, headers={"Authorization": f"Bearer {missing_scope}"})).status_code == 403
    no_scope = signed(scope=None)
    assert (await client.get(url, headers={"Authorization": f"Bearer {no_scope}"})).status_code == 403
