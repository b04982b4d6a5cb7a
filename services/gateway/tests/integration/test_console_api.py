"""The console's endpoints over the seeded database: dev sign-in, auth config, regions, log key,
violation counts, the county overview, the monthly report, exports and the static build."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from openpyxl import load_workbook
from pydantic import ValidationError

from fundtrail_gateway.main import create_app
from fundtrail_gateway.seed import LOG_ID, World
from fundtrail_gateway.settings import GatewaySettings
from fundtrail_gateway.testing import running
from fundtrail_verify.checkpoint import Checkpoint, key_id, verify_checkpoint
from fundtrail_verify.note import NoteVerifier

pytestmark = pytest.mark.integration

Auth = Callable[..., dict[str, str]]


async def _all_violations(client: httpx.AsyncClient, headers: dict[str, str], **query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {**query, "limit": "200", **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/v1/violations", params=params, headers=headers)).json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


def test_dev_sign_in_is_refused_outside_development(tmp_path: Path) -> None:
    pub = tmp_path / "k.pub.pem"
    pub.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for environment in ("production", "test"):
        with pytest.raises(ValidationError, match="DEV_SIGN_IN"):
            GatewaySettings(environment=environment, dev_sign_in=True, jwt_public_key_file=pub,
                            database_url="postgresql+psycopg://x@127.0.0.1:9/x", kafka_bootstrap_servers="127.0.0.1:9")


async def test_without_dev_sign_in_there_is_no_role_picker(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/auth/config")).json() == {"mode": "none"}
    r = await client.post("/v1/dev/session", json={"subject": "demo-auditor"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


async def test_dev_session_mints_a_scoped_token(
    settings_factory: Callable[..., GatewaySettings], jwt_key: tuple[Ed25519PrivateKey, Path, Path]
) -> None:
    settings = settings_factory(environment="development", dev_sign_in=True, jwt_private_key_file=jwt_key[1])
    async with running(create_app(settings)) as c:
        assert (await c.get("/v1/auth/config")).json() == {"mode": "dev"}
        people = (await c.get("/v1/dev/identities")).json()["items"]
        assert {p["role"] for p in people} >= {"compliance", "auditor", "bureau"}
        xinhui = next(p for p in people if p["region"] == "440705" and p["role"] == "compliance")
        r = await c.post("/v1/dev/session", json={"subject": xinhui["subject"]})
        assert r.status_code == 200
        body = r.json()
        assert body["expires_in"] <= 3600 and body["identity"]["subject"] == xinhui["subject"]
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        items = await _all_violations(c, headers)
        assert items and all(v["region_code"].startswith("440705") for v in items)
        unknown = await c.post("/v1/dev/session", json={"subject": "somebody-else"})
        assert unknown.status_code == 404 and unknown.json()["type"] == "urn:fundtrail:problem:not-found"


async def test_regions_and_log_key(
    settings_factory: Callable[..., GatewaySettings], auth: Auth, log_key: Ed25519PrivateKey, world: World
) -> None:
    verifier = NoteVerifier.ed25519(LOG_ID, log_key.public_key())
    async with running(create_app(settings_factory(trail_vkey=verifier.vkey))) as c:
        headers = auth("compliance", "440705")
        tree = (await c.get("/v1/regions", headers=headers)).json()
        assert tree["code"] == "440700" and len(tree["children"]) == 7
        assert {"440705", "440781"} <= {county["code"] for county in tree["children"]}
        key = (await c.get("/v1/console/log-key", headers=headers)).json()
        raw = log_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert base64.b64decode(key["public_key"]) == raw
        assert (key["key_name"], key["vkey"]) == (LOG_ID, verifier.vkey)
        assert key["key_id"] == key_id(log_key.public_key(), LOG_ID)
        # The console verifies the checkpoint notes the proof endpoint serves with exactly this key.
        latest = (await c.get("/v1/checkpoints/latest")).json()
        assert verify_checkpoint(Checkpoint.model_validate(
            {k: latest[k] for k in ("log_id", "tree_size", "root_hash", "timestamp", "note")}), key["vkey"])
        names = (await c.get("/v1/regions/names", params=[("code", "440705"), ("code", "999999")],
                             headers=headers)).json()
        assert names == {"440705": {"name": "新会区", "full_name": "江门市新会区"}}
        assert (await c.get("/v1/regions")).status_code == 401


async def test_log_key_absent_is_a_problem(client: httpx.AsyncClient, auth: Auth) -> None:
    r = await client.get("/v1/console/log-key", headers=auth("auditor"))
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


async def test_department_counts_follow_the_filters_and_the_region(
    client: httpx.AsyncClient, auth: Auth, world: World
) -> None:
    auditor = auth("auditor")
    everything = await _all_violations(client, auditor)
    expected: dict[str, int] = {}
    for v in everything:
        expected[v["department"]] = expected.get(v["department"], 0) + 1
    body = (await client.get("/v1/stats/violations/by-department", headers=auditor)).json()
    assert body["counts"] == expected and body["total"] == len(everything)

    xinhui = auth("compliance", "440705")
    mine = (await client.get("/v1/stats/violations/by-department", headers=xinhui)).json()
    assert mine["total"] == len([v for v in everything if v["region_code"].startswith("440705")]) > 0
    other = await client.get("/v1/stats/violations/by-department", params={"region": "440781"}, headers=xinhui)
    assert other.status_code == 200 and other.json() == {"counts": {}, "total": 0}
    bad = await client.get("/v1/stats/violations/by-department", params={"severity": "huge"}, headers=auditor)
    assert bad.status_code == 422


async def test_overview_and_monthly_report_stay_in_the_region(client: httpx.AsyncClient, auth: Auth) -> None:
    auditor = (await client.get("/v1/stats/overview", headers=auth("auditor"))).json()
    assert len(auditor["counties"]) == 7
    seen = {cell["county"] for cell in auditor["items"]}
    assert {"440705", "440781"} <= seen
    for cell in auditor["items"]:
        assert cell["total"] == sum(cell["by_department"].values()) == sum(cell["by_severity"].values())
        assert cell["open"] == cell["total"] - cell["closed"]

    xinhui = auth("compliance", "440705")
    mine = (await client.get("/v1/stats/overview", headers=xinhui)).json()["items"]
    assert mine and {cell["county"] for cell in mine} == {"440705"}
    assert (await client.get("/v1/stats/overview", params={"county": "440781"}, headers=xinhui)).status_code == 404

    month = mine[0]["month"]
    report = (await client.get("/v1/stats/monthly-report", params={"county": "440705", "month": month},
                               headers=xinhui)).json()
    assert report["county_name"] == "江门市新会区" and report["month_figures"]["month"] == month
    assert all(c["month"] <= month for c in report["year_to_date"])
    bad = await client.get("/v1/stats/monthly-report", params={"county": "440705", "month": "2026-13"},
                           headers=xinhui)
    assert bad.status_code == 422


async def test_exports_as_csv_and_xlsx_hold_the_region_only(client: httpx.AsyncClient, auth: Auth) -> None:
    xinhui = auth("compliance", "440705")
    expected = {v["violation_id"] for v in await _all_violations(client, xinhui)}
    r = await client.get("/v1/exports/violations", params={"format": "csv"}, headers=xinhui)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][0] == "违规编号"
    assert {row[0] for row in rows[1:]} == expected
    assert all(row[6].startswith("440705") for row in rows[1:])

    x = await client.get("/v1/exports/violations", params={"status": "raised"}, headers=xinhui)
    assert x.status_code == 200
    sheet = load_workbook(io.BytesIO(x.content), read_only=True).active
    assert sheet is not None
    table = list(sheet.iter_rows(values_only=True))
    assert table[0][0] == "违规编号" and all(row[5] == "raised" for row in table[1:])
    assert (await client.get("/v1/exports/violations", params={"format": "pdf"}, headers=xinhui)).status_code == 422
    assert (await client.get("/v1/exports/violations", headers=auth("bureau", "440705"))).status_code == 403


async def test_the_console_build_is_served_with_a_single_page_fallback(
    settings_factory: Callable[..., GatewaySettings], tmp_path: Path
) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>", encoding="utf-8")
    (tmp_path / "assets" / "app-1234.js").write_text("console.log(1)", encoding="utf-8")
    async with running(create_app(settings_factory(console_dir=tmp_path))) as c:
        root = await c.get("/")
        assert root.status_code in (302, 307) and root.headers["location"] == "/console/"
        page = await c.get("/console/")
        assert page.status_code == 200 and "<title>console</title>" in page.text
        assert page.headers["cache-control"] == "no-cache"
        deep = await c.get("/console/violations/123")
        assert deep.status_code == 200 and "<title>console</title>" in deep.text
        asset = await c.get("/console/assets/app-1234.js")
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
        assert (await c.get("/console/assets/missing.js")).status_code == 404
    async with running(create_app(settings_factory(console_dir=tmp_path / "none"))) as c:
        assert (await c.get("/console/")).status_code == 404


async def test_an_altered_leaf_is_an_item_that_fails_its_checks_not_a_missing_trail(
    migrated_database_url: str, settings_factory: Callable[..., GatewaySettings], auth: Auth,
    log_key: Ed25519PrivateKey,
) -> None:
    """What the console's fund page reads when one stored leaf was altered past the append-only triggers:
    the trail is still served, the altered item names its failed checks and has no facts, the others pass."""
    import psycopg

    from fundtrail_gateway.seed import seed_world
    from fundtrail_runtime.db import sync_engine
    from fundtrail_verify import merkle

    engine = sync_engine(migrated_database_url)
    try:
        seed_world(engine, log_key)
    finally:
        engine.dispose()
    fund = "F-440705-2026-01"
    admin = migrated_database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        seq, data = conn.execute("SELECT seq, leaf_data FROM trail_entry WHERE fund_doc_no = %s ORDER BY seq"
                                 " OFFSET 2 LIMIT 1", (fund,)).fetchone()  # type: ignore[misc]
        altered = bytes(data).replace(b'"', b"'", 1)  # the console's browser test alters it the same way
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE trail_entry SET leaf_data = %s WHERE seq = %s", (altered, seq))
    headers = auth("auditor")
    async with running(create_app(settings_factory(database_url=migrated_database_url))) as c:
        assert (await c.get(f"/v1/funds/{fund}", headers=headers)).status_code == 200
        r = await c.get(f"/v1/funds/{fund}/trail", headers=headers)
        assert r.status_code == 200, r.text
        items = {i["leaf_index"]: i for i in r.json()["items"]}
        bad = items.pop(seq)
        assert bad["verification"] == {"ok": False, "problems": ["leaf_hash", "leaf_unparseable"]}
        assert bad["leaf_hash"] == merkle.leaf_hash(altered).hex()  # the hash of the bytes served
        assert base64.b64decode(bad["leaf_data"]) == altered
        assert bad["event_type"] is bad["region_code"] is bad["occurred_at"] is None
        assert items and all(i["verification"]["ok"] for i in items.values()), items
        # The proof the browser asks for is served too; it does not lead from these bytes to the root.
        proof = await c.get(f"/v1/proofs/entries/{seq}", headers=headers)
        assert proof.status_code == 200, proof.text
        assert proof.json()["leaf_hash"] == bad["leaf_hash"]
