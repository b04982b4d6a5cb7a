"""Trails, positions, violations, proofs and the verify CLI over the seeded database."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_gateway.main import create_app
from fundtrail_gateway.seed import World
from fundtrail_gateway.settings import GatewaySettings
from fundtrail_gateway.testing import running
from fundtrail_verify import merkle
from fundtrail_verify.checkpoint import (
    Checkpoint,
    ConsistencyProof,
    InclusionProof,
    ProofBundle,
    verify_bundle,
    verify_checkpoint,
)
from fundtrail_verify.cli import verify_offline, verify_online

pytestmark = pytest.mark.integration


async def test_fund_trail_in_order_with_state_violations_and_pagination(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World
) -> None:
    c = world.counties["440781"]
    headers = auth("auditor")
    items: list[dict[str, Any]] = []
    url: str | None = f"/v1/funds/{c.fund_doc_no}/trail?limit=3"
    pages = 0
    while url:
        r = await client.get(url, headers=headers)
        assert r.status_code == 200
        body = r.json()
        if body["next"]:
            assert r.headers["link"] == f'<{body["next"]}>; rel="next"'
        items += body["items"]
        url = body["next"]
        pages += 1
    assert pages == 4
    assert [i["leaf_index"] for i in items] == list(c.leaf_indexes)
    kinds = [i["entry_kind"] for i in items]
    assert kinds.count("violation") == 2 and kinds.count("case") == 1
    first = items[0]
    assert first["event"]["event_type"] == "FundAllocated" and first["state_after"]["position"]["level"] == "city"
    assert bytes.fromhex(first["leaf_hash"]) == merkle.leaf_hash(
        base64.b64decode((await client.get(first["links"]["proof"], headers=headers)).json()["leaf_data"])
    )
    acked = next(i for i in items if i["entry_kind"] == "violation" and i["violation_status"] == "acknowledged")
    assert acked["violation_id"] == str(c.violation_id) and acked["trace_id"]
    case = next(i for i in items if i["entry_kind"] == "case")
    assert case["event"]["event_type"] == "ViolationAcknowledged" and case["state_after"] is None
    bad = await client.get(f"/v1/funds/{c.fund_doc_no}/trail?cursor=garbage", headers=headers)
    assert bad.status_code == 400 and bad.json()["type"] == "urn:fundtrail:problem:invalid-cursor"
    assert (await client.get("/v1/funds/NOPE/trail", headers=headers)).status_code == 404
    assert (await client.get(f"/v1/funds/{c.fund_doc_no}/trail?limit=0", headers=headers)).status_code == 422


async def test_payment_vendor_and_project_trails(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World
) -> None:
    c = world.counties["440705"]
    headers = auth("compliance", "440705")
    pay = (await client.get(f"/v1/payments/{c.payment_id}/trail", headers=headers)).json()["items"]
    # Violations and case actions inherit the payment of their triggering event (as fund-tracker writes them).
    assert [i["event_type"] for i in pay] == ["PaymentDisbursed", "ViolationRaised", "ViolationAcknowledged",
                                              "ViolationRaised"]
    vendor = (await client.get(f"/v1/vendors/{c.vendor_id}/trail", headers=headers)).json()["items"]
    assert [i["event_type"] for i in vendor] == ["ContractSigned", "PaymentDisbursed", "PaymentDisbursed",
                                                 "ViolationRaised", "ViolationAcknowledged", "ViolationRaised"]
    project = (await client.get(f"/v1/projects/{c.project_id}/trail", headers=headers)).json()["items"]
    assert project[0]["event_type"] == "ProjectApproved" and len(project) == len(c.leaf_indexes) - 2


async def test_where_is_the_money(client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World) -> None:
    c = world.counties["440705"]
    body = (await client.get(f"/v1/funds/{c.fund_doc_no}", headers=auth("auditor"))).json()
    city = body["positions"][0]
    assert city["region_code"] == "440700" and city["passed_down_fen"] == 1_000_000_000
    county = city["children"][0]
    town = county["children"][0]
    assert (county["region_code"], town["region_code"], town["children"][0]["region_code"]) == (
        c.county, c.town, c.village)
    assert town["contracted_fen"] == 180_000_000 and town["paid_fen"] == 20_000_001
    assert town["balance_fen"] == 400_000_000 - 50_000_000 - 20_000_001
    assert city["subtree_balance_fen"] == 1_000_000_000 - 20_000_001


async def test_violation_list_filters_and_detail(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World
) -> None:
    headers = auth("auditor")
    everything = (await client.get("/v1/violations", headers=headers)).json()["items"]
    assert len(everything) == 6
    raised = [v["raised_at"] for v in everything]
    assert raised == sorted(raised, reverse=True)
    fin = (await client.get("/v1/violations?department=finance&status=raised", headers=headers)).json()["items"]
    assert len(fin) == 3 and {v["rule_id"] for v in fin} == {"finance.duplicate_invoice"}
    paged = (await client.get("/v1/violations?limit=4", headers=headers)).json()
    rest = (await client.get(paged["next"], headers=headers)).json()
    assert [v["violation_id"] for v in paged["items"] + rest["items"]] == [v["violation_id"] for v in everything]
    window = await client.get("/v1/violations", params={"raised_from": "2026-04-24T00:00:00+00:00",
                                                        "raised_until": "2026-04-25T00:00:00Z"}, headers=headers)
    assert {v["rule_id"] for v in window.json()["items"]} == {"finance.duplicate_invoice"}
    assert (await client.get("/v1/violations?raised_from=12", headers=headers)).status_code == 422
    c = world.counties["440705"]
    detail = (await client.get(f"/v1/violations/{c.violation_id}", headers=headers)).json()
    assert detail["status"] == "acknowledged" and detail["allowed_actions"] == ["rectify", "dismiss", "assign"]
    assert detail["case_history"][0]["action"] == "acknowledged"
    assert detail["links"]["evidence"] == [f"/v1/events/{c.event_ids[5]}"]
    assert len(detail["links"]["trail_entries"]) == 2 and detail["legal_basis"]
    evidence = (await client.get(detail["links"]["evidence"][0], headers=headers)).json()
    assert evidence["event_type"] == "PaymentDisbursed" and evidence["payload"]["handler_id"] == "STAFF-1"


async def test_proofs_verify_against_the_signing_key(
    client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], world: World, log_key: Ed25519PrivateKey
) -> None:
    headers = auth("auditor")
    cp = Checkpoint.model_validate((await client.get("/v1/proofs/checkpoint", headers=headers)).json())
    assert cp.tree_size == world.checkpoints[-1] and verify_checkpoint(cp, log_key.public_key())
    for leaf in (0, 5, cp.tree_size - 1):
        doc = (await client.get(f"/v1/proofs/entries/{leaf}", headers=headers)).json()
        proof = InclusionProof.model_validate(doc["inclusion_proof"])
        assert proof.verify_leaf(base64.b64decode(doc["leaf_data"]), cp)
    old = world.checkpoints[0]
    doc = (await client.get(f"/v1/proofs/consistency?old_size={old}", headers=headers)).json()
    old_cp = Checkpoint.model_validate(doc["old_checkpoint"])
    assert ConsistencyProof.model_validate(doc["consistency_proof"]).verify_checkpoints(old_cp, cp)
    unsigned = (await client.get("/v1/proofs/consistency?old_size=5", headers=headers)).json()
    assert unsigned["old_checkpoint"] is None and len(unsigned["consistency_proof"]["hashes"]) > 0
    b = await client.get(f"/v1/proofs/entries/3/bundle?previous_size={old}", headers=headers)
    bundle = ProofBundle.model_validate(b.json())
    assert verify_bundle(bundle, log_key.public_key()).ok
    assert (await client.get(f"/v1/proofs/entries/{cp.tree_size}", headers=headers)).status_code == 404
    assert (await client.get("/v1/proofs/entries/1?tree_size=7", headers=headers)).status_code == 404
    assert (await client.get(f"/v1/proofs/consistency?old_size={cp.tree_size + 1}",
                             headers=headers)).status_code == 404


def test_verify_cli_online_and_offline(
    settings_factory: Callable[..., GatewaySettings], token: Callable[..., str], log_key: Ed25519PrivateKey,
    tmp_path: Path, world: World,
) -> None:
    from starlette.testclient import TestClient

    pub = log_key.public_key()
    state = tmp_path / "state.json"
    app = create_app(settings_factory())
    with TestClient(app, base_url="http://gateway.test") as tc:
        transport = tc._transport
        first = verify_online("http://gateway.test", token("auditor"), pub, 4, state, None, transport=transport)
        assert first.ok, first.summary()
        assert json.loads(state.read_text())[world.log_id]["tree_size"] == world.checkpoints[-1]
        second = verify_online("http://gateway.test", token("auditor"), pub, None, state, None, transport=transport)
        assert second.ok and any(c.name == "growth.proof" for c in second.checks)
        bundle_doc = tc.get("/v1/proofs/entries/2/bundle", headers={"Authorization": f"Bearer {token('auditor')}"})
    bundle = tmp_path / "bundle.json"
    bundle.write_text(bundle_doc.text)
    assert verify_offline(bundle, pub, state, None).ok
    tampered = json.loads(bundle_doc.text)
    tampered["leaf_data"] = base64.b64encode(b"rewritten history").decode()
    bundle.write_text(json.dumps(tampered))
    assert not verify_offline(bundle, pub, state, None).ok
    # A remembered checkpoint that the server's log does not extend (a rewritten log) fails.
    forged = json.loads(state.read_text())
    forged[world.log_id]["root_hash"] = "0" * 64
    state.write_text(json.dumps(forged))
    with TestClient(app, base_url="http://gateway.test") as tc:
        report = verify_online("http://gateway.test", token("auditor"), pub, None, state, None,
                               transport=tc._transport)
    assert not report.ok


async def test_errors_are_problem_documents_and_rate_limit(
    settings_factory: Callable[..., GatewaySettings], auth: Callable[..., dict[str, str]]
) -> None:
    # Two requests per hour-long window: the third is refused (the window will not end mid-test).
    app = create_app(settings_factory(rate_limit_per_second=2 / 3600, rate_limit_window_seconds=3600))
    async with running(app) as c:
        headers = auth("auditor", subject="rate-limited-auditor")
        assert (await c.get("/v1/departments", headers=headers)).status_code == 200
        assert (await c.get("/v1/departments", headers=headers)).status_code == 200
        limited = await c.get("/v1/departments", headers=headers)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["type"] == "urn:fundtrail:problem:rate-limited"
        other = auth("auditor", subject="someone-else")
        assert (await c.get("/v1/departments", headers=other)).status_code == 200
        r405 = await c.post("/health")
        assert r405.status_code == 405 and r405.headers["allow"] == "GET"
        assert r405.headers["content-type"] == "application/problem+json"
        assert (await c.get("/nowhere")).json()["status"] == 404
        r422 = await c.get("/v1/events/not-a-uuid", headers=other)
        assert r422.status_code == 422 and r422.json()["errors"][0]["field"].startswith("path")
        metrics = (await c.get("/metrics")).text
        assert 'fundtrail_gateway_requests_total{method="GET",route="/v1/departments",status="429"} 1.0' in metrics
        doc = (await c.get("/openapi.json")).json()
        body = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
        assert "PaymentDisbursed" in body["examples"]
        assert doc["paths"]["/v1/funds/{fund_doc_no}/trail"]["get"]["responses"]["404"]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        depts = (await c.get("/v1/departments", headers=auth("admin", subject="adm"))).json()
        assert len(depts) == 9 and depts[0]["violations_topic"].startswith("fundtrail.violations.")
        rules = (await c.get("/v1/rules/inspection.same_handler_approver", headers=auth("admin", subject="adm"))).json()
        assert [v["version"] for v in rules["versions"]] == [1, 2]
        assert rules["versions"][0]["effective_until"] == "2026-01-01"
