"""Violation evidence is redacted for regional readers as ledger states are: what may name another region's
accounts or payees is withheld (and so are the signed leaf bytes holding it); auditors see everything."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_gateway.main import create_app
from fundtrail_gateway.seed import CountyWorld, TrailBuilder, _env, seed_county
from fundtrail_gateway.testing import running
from fundtrail_runtime.db import sync_engine
from fundtrail_schemas.events import Evidence, ViolationRaised
from fundtrail_schemas.types import Department, Level, Severity

pytestmark = pytest.mark.integration

VALUES = {
    "payment_id": "ZF-440705101-0000",  # the rule's `event.payment_id`: kept
    "other_payments": ["ZF-440781101-0007"],  # not an evidence name of the rule: withheld
    "read": {"event.handler_id": "STAFF-1", "after.vendor.paid_fen": 123, "before.invoice_payment_ids": ["ZF-X"],
             "after.counterparty.received_fen": 5, "after.position.paid_fen": 7},
    "params": {"threshold_fen": 1},
}


@pytest.fixture
def scoped_world(fresh_database: str, log_key: Ed25519PrivateKey) -> tuple[str, CountyWorld, uuid.UUID]:
    """One county's trail plus a violation whose evidence names things outside the town."""
    b = TrailBuilder()
    c = seed_county(b, "440705")
    vid = uuid.uuid4()
    b.violation(ViolationRaised(
        **_env(("evidence", 1), Level.TOWN, c.town, 60, c.fund_doc_no, c.project_id), violation_id=vid,
        rule_id="inspection.same_handler_approver", rule_version=1, department=Department.INSPECTION,
        severity=Severity.HIGH, triggering_event_id=c.event_ids[5],
        evidence=Evidence(event_ids=[c.event_ids[5]], values=VALUES), explanation_zh="经办审批同一人",
        explanation_en="Same handler and approver", legal_basis="第十二条", trace_id=None))
    b.checkpoint(log_key)
    engine = sync_engine(fresh_database)
    try:
        b.write(engine)
    finally:
        engine.dispose()
    return fresh_database, c, vid


async def test_a_regional_reader_sees_only_its_own_evidence(
    scoped_world: tuple[str, CountyWorld, uuid.UUID], settings_factory: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    url, c, vid = scoped_world
    async with running(create_app(settings_factory(database_url=url))) as client:
        full = (await client.get(f"/v1/violations/{vid}", headers=auth("auditor"))).json()
        town = (await client.get(f"/v1/violations/{vid}", headers=auth("compliance", c.town))).json()
        trail = await _items(client, f"/v1/funds/{c.fund_doc_no}/trail", auth("compliance", c.town))
        full_trail = await _items(client, f"/v1/funds/{c.fund_doc_no}/trail", auth("auditor"))
    assert full["evidence"]["values"] == VALUES and full["leaf"]["leaf_data"] and "withheld" not in full["evidence"]
    assert town["evidence"]["values"] == {"payment_id": "ZF-440705101-0000", "params": {"threshold_fen": 1},
                                          "read": {"event.handler_id": "STAFF-1", "after.position.paid_fen": 7}}
    assert town["evidence"]["withheld"] == ["other_payments", "read.after.counterparty.received_fen",
                                            "read.after.vendor.paid_fen", "read.before.invoice_payment_ids"]
    assert town["leaf"]["leaf_data"] is None and town["leaf"]["leaf_withheld"] is True and town["leaf"]["leaf_hash"]
    item = next(i for i in trail if i["violation_id"] == str(vid))
    assert item["event"]["evidence"] == town["evidence"] and item["leaf_data"] is None and item["leaf_withheld"]
    full_item = next(i for i in full_trail if i["violation_id"] == str(vid))
    assert full_item["event"]["evidence"]["values"] == VALUES and full_item["leaf_data"]
    # The seeded violations read only their own event: nothing withheld, the leaf served.
    plain = next(i for i in trail if i["violation_id"] == str(c.violation_id))
    assert "withheld" not in plain["event"]["evidence"] and plain["leaf_data"]


async def _items(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        body = (await client.get(next_url, headers=headers)).json()
        items += body["items"]
        next_url = body["next"]
    return items
