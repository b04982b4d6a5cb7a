"""One case lifecycle: for every status, action and role, the gateway's HTTP API and compliance's
consumer of the cases topic agree on whether the action is allowed, and fund-tracker's trail
records every submitted action (`fundtrail_schemas.cases.REFUSED_ACTIONS_ENTER_TRAIL`).

Real processes (the e2e stack): each combination gets a violation of its own, inserted in the
status under test. The action is first tried through the gateway; what the gateway refuses is then
published straight onto the cases topic with the same role, as a client bypassing it would, so
compliance judges every combination too.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer
from sqlalchemy import text

from fundtrail_devstack.stack import Stack
from fundtrail_runtime.db import sync_engine
from fundtrail_schemas.cases import EVENT_TYPE_OF, REFUSED_ACTIONS_ENTER_TRAIL, CaseAction, CaseRole, CaseStatus
from fundtrail_schemas.events import EVENT_TYPES, event_key
from fundtrail_schemas.topics import CASES
from fundtrail_schemas.types import level_of_region

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REGION, GROUP_REGION = "440705101", "440705"
HTTP_ROLES = (CaseRole.BUREAU, CaseRole.COMPLIANCE, CaseRole.AUDITOR, CaseRole.ADMIN)
BODIES: dict[CaseAction, dict[str, Any]] = {
    CaseAction.ACKNOWLEDGE: {"note": "已收到", "assignee": "USER-440705101-CZS-02", "due_date": "2020-01-31"},
    CaseAction.RECTIFY: {"note": "已整改", "document_sha256": "ab" * 32},
    CaseAction.DISMISS: {"reason": "误报"},
    CaseAction.ASSIGN: {"assignee": "USER-440705101-CZS-07", "due_date": "2099-12-31"},
    CaseAction.RESOLVE: {"reason": "late evidence", "refuting_event_id": str(uuid.uuid4())},
}


def _sql(stack: Stack, sql: str, **params: Any) -> list[Any]:
    engine = sync_engine(stack.database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def _insert_violation(stack: Stack, vid: uuid.UUID, status: str, fund: str) -> None:
    now = datetime.now(UTC)
    _sql(stack, """
        INSERT INTO violation (violation_id, rule_id, rule_version, department, severity, status, triggering_event_id,
          fund_doc_no, project_id, region_code, occurred_at, raised_at, status_changed_at, explanation_zh,
          explanation_en, legal_basis, evidence, payload, trace_id)
        VALUES (:vid, 'inspection.same_handler_approver', 1, 'inspection', 'high', :status, :trigger, :fund, NULL,
          :region, :now, :now, :now, '测试', 'test', '测试依据', '{"event_ids": [], "values": {}}', '{}', NULL)""",
         vid=vid, status=status, trigger=uuid.uuid4(), fund=fund, region=REGION, now=now)


def _event(action: CaseAction, vid: uuid.UUID, fund: str, role: CaseRole) -> Any:
    at = datetime.now(UTC)
    model = EVENT_TYPES[EVENT_TYPE_OF[action]]
    return model(event_id=uuid.uuid4(), occurred_at=at, published_at=at, source_bureau=f"{GROUP_REGION}-compliance",
                 level=level_of_region(REGION), region_code=REGION, fund_doc_no=fund, violation_id=vid,
                 actor=f"user-{role.value}", actor_role=role, **BODIES[action])


def _wait(what: str, probe: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_gateway_and_compliance_agree_on_every_status_action_and_role(e2e_stack: Stack) -> None:
    stack = e2e_stack
    tokens = {
        role: stack.token(role.value, f"user-{role.value}",
                          GROUP_REGION if role in (CaseRole.BUREAU, CaseRole.COMPLIANCE) else None)
        for role in HTTP_ROLES
    }
    fund = f"江财农〔2099〕{uuid.uuid4().hex[:6]}号"
    cases: list[dict[str, Any]] = []
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    try:
        with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
            for status in CaseStatus:
                for action in CaseAction:
                    for role in HTTP_ROLES:
                        vid = uuid.uuid4()
                        _insert_violation(stack, vid, status.value, fund)
                        body = {k: v for k, v in BODIES[action].items() if action is not CaseAction.RESOLVE}
                        r = http.post(f"/v1/violations/{vid}/{action.value}", json=body,
                                      headers={"Authorization": f"Bearer {tokens[role]}"})
                        assert r.status_code in (202, 403, 404, 405, 409), (status, action, role, r.text)
                        case = {"vid": vid, "status": status.value, "action": action, "role": role,
                                "http": r.status_code}
                        if r.status_code == 202:
                            case["event_id"] = uuid.UUID(r.json()["event_id"])
                            case["announced"] = r.json()["status"]
                        else:  # what a client bypassing the gateway would publish
                            ev = _event(action, vid, fund, role)
                            producer.send(CASES, ev.model_dump_json().encode(), key=event_key(ev))
                            case["event_id"] = ev.event_id
                        cases.append(case)
        producer.flush()
    finally:
        producer.close()

    ids = [c["event_id"] for c in cases]

    def recorded() -> dict[uuid.UUID, tuple[str, str | None]] | None:
        rows = _sql(stack, "SELECT event_id, outcome, reason FROM case_action WHERE event_id = ANY(:ids)", ids=ids)
        return {r[0]: (r[1], r[2]) for r in rows} if len(rows) == len(ids) else None

    outcomes = _wait("compliance to record every case action", recorded)
    statuses = dict(_sql(stack, "SELECT violation_id, status FROM violation WHERE fund_doc_no = :f", f=fund))
    disagreements = []
    for c in cases:
        applied = outcomes[c["event_id"]][0] == "applied"
        if (c["http"] == 202) != applied:
            disagreements.append((c["status"], c["action"].value, c["role"].value, c["http"], outcomes[c["event_id"]]))
        if c["http"] == 202:
            assert statuses[c["vid"]] == c["announced"], c
        elif not applied:
            assert statuses[c["vid"]] == c["status"], c  # a refused action changes nothing
    assert not disagreements, disagreements
    # The decision: dismissing a raised violation is allowed, through both.
    raised_dismissed = [c for c in cases if (c["status"], c["action"], c["role"]) ==
                        ("raised", CaseAction.DISMISS, CaseRole.COMPLIANCE)]
    assert raised_dismissed and raised_dismissed[0]["http"] == 202
    assert sum(c["http"] == 202 for c in cases) == 6  # the six group transitions of the contract

    # Every submitted action, applied or refused, is in the trail.
    assert REFUSED_ACTIONS_ENTER_TRAIL
    _wait("fund-tracker to append every case action to the trail", lambda: len(_sql(
        stack, "SELECT 1 FROM trail_entry WHERE entry_id = ANY(:ids)", ids=ids)) == len(ids))

    # Assignee and due date, through the API: set by acknowledge and by assign, overdue when past.
    group = {"Authorization": f"Bearer {tokens[CaseRole.COMPLIANCE]}"}
    ack = next(c for c in cases if (c["status"], c["action"], c["role"]) ==
               ("raised", CaseAction.ACKNOWLEDGE, CaseRole.COMPLIANCE))
    assign = next(c for c in cases if (c["status"], c["action"], c["role"]) ==
                  ("acknowledged", CaseAction.ASSIGN, CaseRole.COMPLIANCE))
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        got = http.get(f"/v1/violations/{ack['vid']}", headers=group).json()
        assert (got["assignee"], got["due_date"], got["overdue"]) == ("USER-440705101-CZS-02", "2020-01-31", True)
        assert [h["outcome"] for h in got["case_history"]] == ["applied"]
        got = http.get(f"/v1/violations/{assign['vid']}", headers=group).json()
        assert (got["status"], got["assignee"], got["due_date"], got["overdue"]) == (
            "acknowledged", "USER-440705101-CZS-07", "2099-12-31", False)
        refused = next(c for c in cases if (c["status"], c["action"], c["role"]) ==
                       ("rectified", CaseAction.ASSIGN, CaseRole.COMPLIANCE))
        assert refused["http"] == 409
        got = http.get(f"/v1/violations/{refused['vid']}", headers=group).json()
        assert got["assignee"] is None and got["overdue"] is False
        assert [(h["outcome"], h["reason"]) for h in got["case_history"]] == [("rejected", "invalid_transition")]
        listed = http.get("/v1/violations", params={"fund_doc_no": fund, "limit": 200}, headers=group).json()
        assert {i["violation_id"] for i in listed["items"] if i["overdue"]} == {str(ack["vid"])}
