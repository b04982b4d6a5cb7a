"""A regional reader's trail declares the entries it withholds, so the reader can check the chain it sees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_gateway.main import create_app
from fundtrail_gateway.seed import World, seed_world
from fundtrail_gateway.testing import running
from fundtrail_runtime.db import sync_engine
from fundtrail_verify.audit import trail_chain_problems

pytestmark = pytest.mark.integration


async def _trail(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        r = await client.get(next_url, headers=headers)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        next_url = r.json()["next"]
    return items


@pytest.mark.parametrize("limit", [2, 50])
async def test_a_regional_trail_declares_what_it_withholds(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World, limit: int,
) -> None:
    c = world.counties["440705"]
    url = f"/v1/funds/{c.fund_doc_no}/trail?limit={limit}"
    full = await _trail(client, url, auth("auditor"))
    town = await _trail(client, url, auth("compliance", c.town))
    assert all(i["withheld_before"] is None for i in full) and trail_chain_problems(full, "fund") == []
    shown = [i["leaf_index"] for i in town]
    # The city's allocation and the county's transfer are outside the town: withheld, and declared.
    assert 0 < len(shown) < len(full) and {i["region_code"][:9] for i in town} == {c.town}
    declared = [w for i in town for w in i["withheld_before"]]
    assert sorted(declared + shown) == [i["leaf_index"] for i in full][:len(declared) + len(shown)]
    assert declared and all(i["verification"]["ok"] for i in town), town
    assert trail_chain_problems(town, "fund") == []
    # What a reader's check names: an item dropped from what it was shown, or an undeclared withheld entry.
    assert trail_chain_problems(town[:1] + town[2:], "fund")
    assert trail_chain_problems([{**town[0], "withheld_before": []}, *town[1:]], "fund")


async def test_a_deleted_entry_in_a_regional_trail_is_a_chain_gap(
    fresh_database: str, settings_factory: Callable[..., Any], log_key: Ed25519PrivateKey,
    auth: Callable[..., dict[str, str]],
) -> None:
    engine = sync_engine(fresh_database)
    try:
        c = seed_world(engine, log_key).counties["440781"]
    finally:
        engine.dispose()
    # The town's first payment, removed past the append-only triggers as a superuser can.
    gone = c.leaf_indexes[5]
    with psycopg.connect(_plain(fresh_database), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        assert conn.execute("SELECT event_type FROM trail_entry WHERE seq = %s", (gone,)).fetchone() == (
            "PaymentDisbursed",)
        conn.execute("DELETE FROM trail_entry WHERE seq = %s", (gone,))
    async with running(create_app(settings_factory(database_url=fresh_database))) as client:
        town = await _trail(client, f"/v1/funds/{c.fund_doc_no}/trail", auth("compliance", c.town))
    after = next(i for i in town if i["leaf_index"] > gone)
    assert after["prev"]["fund"] == gone and after["verification"]["problems"] == ["chain_gap"]
    assert [p for p in trail_chain_problems(town, "fund") if "an entry is missing" in p]


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")
