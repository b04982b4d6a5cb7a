"""Writes go only through Kafka: events, imports, case actions and rule packs against the real broker."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import yaml
from kafka import KafkaConsumer

from fundtrail_gateway.main import create_app
from fundtrail_gateway.seed import World
from fundtrail_gateway.settings import GatewaySettings
from fundtrail_gateway.testing import SAMPLE_RULEPACK as RULEPACK
from fundtrail_gateway.testing import running
from fundtrail_schemas.examples import load_examples
from fundtrail_schemas.topics import CASES, HEADER_EVENT_TYPE, RAW_EVENTS, RULE_PACKS

pytestmark = pytest.mark.integration


def read_topic(bootstrap: str, topic: str, match: Callable[[Any], bool], *, settle: float = 1.5) -> list[Any]:
    """Every message of `topic` (from the beginning) that `match` accepts."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=int(settle * 1000))
    try:
        return [m for m in consumer if match(m)]
    finally:
        consumer.close()


def wait_for(bootstrap: str, topic: str, match: Callable[[Any], bool], n: int, timeout: float = 20) -> list[Any]:
    """Poll until at least `n` matching messages are there."""
    deadline = time.monotonic() + timeout
    found: list[Any] = []
    while time.monotonic() < deadline:
        found = read_topic(bootstrap, topic, match)
        if len(found) >= n:
            return found
    return found


@pytest.fixture
async def kclient(
    settings_factory: Callable[..., GatewaySettings], kafka_bootstrap: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app connected to the real broker, tracing on (trace context goes into Kafka headers)."""
    app = create_app(settings_factory(kafka_bootstrap_servers=kafka_bootstrap, ensure_topics=True,
                                      enable_tracing=True))
    async with running(app) as c:
        yield c


def fresh(event_type: str, **changes: Any) -> dict[str, Any]:
    """A golden example with a new event id."""
    ev = copy.deepcopy(load_examples()[event_type])
    ev["event_id"] = str(uuid.uuid4())
    ev.update(changes)
    return ev


def value_id(msg: Any) -> str:
    return json.loads(msg.value)["event_id"]


async def test_post_events_publishes_once_and_reports_each_item(
    kclient: httpx.AsyncClient, auth: Callable[..., dict[str, str]], kafka_bootstrap: str, world: World
) -> None:
    bureau = auth("bureau", "440705")
    transfer = fresh("FundTransferred")
    approved = fresh("ProjectApproved")
    foreign = fresh("FundTransferred", region_code="440781", to_region_code="440781101",
                    source_bureau="440781-CZJ")
    invalid = fresh("PaymentDisbursed", amount_fen=12.5)
    recorded = world.counties["440705"].event_ids[1]  # fund-tracker already recorded it (seeded)
    known = fresh("FundTransferred", event_id=str(recorded))
    r = await kclient.post("/v1/events", json=[transfer, approved, foreign, invalid, transfer, known], headers=bureau)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == [transfer["event_id"], approved["event_id"]]
    assert body["already_recorded"] == [transfer["event_id"], str(recorded)]
    rejected = {item["index"]: item["problem"] for item in body["rejected"]}
    assert rejected[2]["status"] == 403 and rejected[2]["reason"] == "region_forbidden"
    assert rejected[3]["status"] == 422 and rejected[3]["errors"][0]["field"] == "amount_fen"

    ours = {transfer["event_id"], approved["event_id"]}
    msgs = wait_for(kafka_bootstrap, RAW_EVENTS, lambda m: value_id(m) in ours, 2)
    assert sorted(value_id(m) for m in msgs) == sorted(ours)
    headers = dict(msgs[0].headers)
    assert headers[HEADER_EVENT_TYPE] in (b"FundTransferred", b"ProjectApproved")
    assert "traceparent" in headers
    assert {m.key for m in msgs} == {transfer["fund_doc_no"].encode()}

    again = await kclient.post("/v1/events", json=transfer, headers=bureau)
    assert again.status_code == 202
    assert again.json() == {"accepted": [], "already_recorded": [transfer["event_id"]], "rejected": []}
    assert len(read_topic(kafka_bootstrap, RAW_EVENTS, lambda m: value_id(m) in ours)) == 2
    assert not read_topic(kafka_bootstrap, RAW_EVENTS, lambda m: value_id(m) in {foreign["event_id"], str(recorded)})


async def test_all_rejected_is_a_problem(kclient: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> None:
    bureau = auth("bureau", "440705")
    r = await kclient.post("/v1/events", json=fresh("PaymentDisbursed", amount_fen=-1), headers=bureau)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == "amount_fen"
    assert r.json()["report"]["rejected"][0]["index"] == 0
    foreign = fresh("FundAllocated")  # a city event for a county bureau
    assert (await kclient.post("/v1/events", json=foreign, headers=bureau)).status_code == 403
    assert (await kclient.post("/v1/events", json=[], headers=bureau)).status_code == 422
    assert (await kclient.post("/v1/events", json="x", headers=bureau)).status_code == 422
    bad = await kclient.post("/v1/events", content=b"{nope", headers={**bureau, "content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["type"] == "urn:fundtrail:problem:malformed-json"


async def test_import_csv_row_report_and_reimport(
    kclient: httpx.AsyncClient, auth: Callable[..., dict[str, str]], kafka_bootstrap: str
) -> None:
    run = uuid.uuid4().hex[:8]
    csv = (
        "event_type,source_record_key,occurred_at,source_bureau,region_code,fund_doc_no,transfer_id,amount_yuan,"
        "to_level,to_region_code\n"
        f"FundTransferred,{run}-1,2026-03-07 09:30,440705-CZJ,440705,F-{run},T-{run}-1,1000.50,town,440705101\n"
        f"FundTransferred,{run}-2,2026-03-08 09:30,440705-CZJ,440705,F-{run},T-{run}-2,12.345,town,440705101\n"
        f"FundTransferred,{run}-3,2026-03-09 09:30,440781-CZJ,440781,F-{run},T-{run}-3,10,town,440781101\n"
    ).encode()
    bureau = auth("bureau", "440705")
    files = {"file": ("transfers.csv", csv, "text/csv")}
    r = await kclient.post("/v1/imports", files=files, headers=bureau)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["total_rows"] == 3 and body["valid_rows"] == 2
    assert [a["row"] for a in body["accepted"]] == [2]
    assert body["rejected_rows"] == [3, 4]
    reasons = {e["row"]: e["reason"] for e in body["errors"]}
    assert reasons[4] == "region_forbidden"
    accepted_id = body["accepted"][0]["event_id"]
    msgs = wait_for(kafka_bootstrap, RAW_EVENTS, lambda m: value_id(m) == accepted_id, 1)
    assert json.loads(msgs[0].value)["amount_fen"] == 100050

    again = await kclient.post("/v1/imports", files=files, headers=bureau)
    assert again.status_code == 202
    assert again.json()["accepted"] == [] and [a["row"] for a in again.json()["already_recorded"]] == [2]
    assert len(read_topic(kafka_bootstrap, RAW_EVENTS, lambda m: value_id(m) == accepted_id)) == 1

    dry = await kclient.post("/v1/imports", files={"file": ("x.txt", b"a,b\n", "text/plain")}, headers=bureau)
    assert dry.status_code == 422


async def test_case_actions_publish_and_refuse_impossible_transitions(
    kclient: httpx.AsyncClient, auth: Callable[..., dict[str, str]], kafka_bootstrap: str, world: World
) -> None:
    c = world.counties["440705"]
    me = auth("compliance", "440705", "USER-440705-7")
    vid = c.open_violation_id
    r = await kclient.post(f"/v1/violations/{vid}/rectify",
                           json={"note": "fixed", "document_sha256": "a" * 64}, headers=me)
    assert r.status_code == 409 and r.json()["type"] == "urn:fundtrail:problem:impossible-transition"
    ack = await kclient.post(f"/v1/violations/{vid}/acknowledge", json={"note": "seen"}, headers=me)
    assert ack.status_code == 202, ack.text
    assert ack.json()["status"] == "acknowledged" and ack.json()["topic"] == CASES
    # The stored status is still "raised" until compliance records the action; the gateway remembers it.
    again = await kclient.post(f"/v1/violations/{vid}/acknowledge", json={}, headers=me)
    assert again.status_code == 409
    fix = await kclient.post(f"/v1/violations/{vid}/rectify",
                             json={"note": "审批流程已调整", "document_sha256": "b" * 64}, headers=me)
    assert fix.status_code == 202
    dismissed = await kclient.post(f"/v1/violations/{vid}/dismiss", json={"reason": "x"}, headers=me)
    assert dismissed.status_code == 409
    bad = await kclient.post(f"/v1/violations/{c.violation_id}/rectify",
                             json={"note": "n", "document_sha256": "XYZ"}, headers=me)
    assert bad.status_code == 422

    ids = {ack.json()["event_id"], fix.json()["event_id"]}
    msgs = wait_for(kafka_bootstrap, CASES, lambda m: value_id(m) in ids, 2)
    events = sorted((json.loads(m.value) for m in msgs), key=lambda e: e["event_type"])
    assert [e["event_type"] for e in events] == ["ViolationAcknowledged", "ViolationRectified"]
    assert all(e["violation_id"] == str(vid) and e["actor"] == "USER-440705-7" for e in events)
    assert all(e["region_code"] == c.town and e["fund_doc_no"] == c.fund_doc_no for e in events)
    assert {m.key for m in msgs} == {c.fund_doc_no.encode()}


async def test_put_rulepack(
    kclient: httpx.AsyncClient, auth: Callable[..., dict[str, str]], kafka_bootstrap: str
) -> None:
    admin = auth("admin")
    pack = yaml.safe_load(RULEPACK)
    pack["pack_version"] = 2
    v3 = copy.deepcopy(pack["rules"][1])
    pack["rules"][1]["effective_until"] = "2027-01-01"
    v3.update(version=3, effective_from="2027-01-01", severity="high")
    pack["rules"].append(v3)
    doc = json.loads(json.dumps(pack, default=str))
    # Version 2 was published open-ended; closing it edits a published version.
    changed = await kclient.put("/v1/rulepacks/inspection", json=doc, headers=admin)
    assert changed.status_code == 409 and changed.json()["type"].endswith("rule-version-changed")

    pack = yaml.safe_load(RULEPACK)
    pack["pack_version"] = 2
    pack["description"] = f"run {uuid.uuid4().hex[:6]}"
    doc = json.loads(json.dumps(pack, default=str))
    r = await kclient.put("/v1/rulepacks/inspection", json=doc, headers=admin)
    assert r.status_code == 202, r.text
    assert r.json()["pack_version"] == 2 and r.json()["topic"] == RULE_PACKS
    stale = await kclient.put("/v1/rulepacks/inspection", json=doc, headers=admin)
    assert stale.status_code == 409
    wrong = await kclient.put("/v1/rulepacks/finance", json={**doc, "pack_version": 3}, headers=admin)
    assert wrong.status_code == 422
    broken = await kclient.put("/v1/rulepacks/inspection", json={**doc, "pack_version": 3, "rules": [{"id": "x"}]},
                               headers=admin)
    assert broken.status_code == 422 and broken.json()["errors"]
    msgs = wait_for(kafka_bootstrap, RULE_PACKS, lambda m: json.loads(m.value)["description"] == doc["description"], 1)
    assert msgs[0].key == b"inspection"
    assert (await kclient.get("/v1/rulepacks/inspection", headers=admin)).json()["pack_version"] == 2
