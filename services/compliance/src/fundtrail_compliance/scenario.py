"""Enriched events built from the golden examples, with a plausible, compliant ledger state.

Used by the unit tests (which then break one thing at a time), the benchmark and the demo replay.
Everything is plain JSON-like dicts, the form the engine reads from the enriched topic.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fundtrail_schemas.examples import CONTRACT, FUND, PROJECT, VENDOR, load_examples

TOWN = "440705101"
COUNTY = "440705"


def golden() -> dict[str, dict[str, Any]]:
    """Fresh copies of the golden example events, by type."""
    return copy.deepcopy(load_examples())


def fund_state(**kw: Any) -> dict[str, Any]:
    base = {
        "fund_doc_no": FUND, "known": True, "purpose_category": "infrastructure", "allocated_fen": 1_200_000_000,
        "deadline": "2026-12-31", "allocated_at": "2026-03-02T01:30:00Z",
    }
    return {**base, **kw}


def position(level: str = "town", region: str = TOWN, **kw: Any) -> dict[str, Any]:
    base = {
        "fund_doc_no": FUND, "level": level, "region_code": region, "received_fen": 400_000_000,
        "passed_down_fen": 0, "paid_fen": 0, "returned_fen": 0, "contracted_fen": 0,
        "first_received_at": "2026-03-07T01:30:00Z", "last_outflow_at": None,
    }
    return {**base, **kw}


def project_state(**kw: Any) -> dict[str, Any]:
    base = {
        "project_id": PROJECT, "approved": True, "approved_at": "2026-03-14T01:30:00Z", "region_code": TOWN,
        "owner_unit": "440705101-JSB", "category": "infrastructure", "procurement_category": "construction",
        "budget_fen": 200_000_000, "land_use_approval_ref": "新自然资〔2026〕用地105号",
        "approving_official_id": "OFF-440705101-01", "awards_count": 1, "awarded_fen": 186_000_000,
        "contracted_fen": 186_000_000, "paid_fen": 0, "accepted": False, "accepted_at": None,
        "accepted_progress_bps": 0, "settled": False, "closed": False, "settled_at": None,
    }
    return {**base, **kw}


def contract_state(**kw: Any) -> dict[str, Any]:
    base = {
        "contract_id": CONTRACT, "signed": True, "signed_at": "2026-04-16T01:30:00Z", "vendor_id": VENDOR,
        "amount_fen": 186_000_000, "amendments_fen": 0, "approved_amendments_fen": 0, "paid_fen": 0,
        "prepaid_fen": 0, "payments_count": 0, "retention_share_bps": 300,
    }
    return {**base, **kw}


def ledger(**parts: Any) -> dict[str, Any]:
    """A LedgerState dict; unspecified parts are null (lists empty)."""
    base: dict[str, Any] = {
        "fund": None, "position": None, "counterparty": None, "project": None, "contract": None, "vendor": None,
        "invoice_payment_ids": [],
    }
    return {**base, **parts}


def normal_states(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Before/after ledger states under which the golden event breaks no rule."""
    et = event["event_type"]
    f = fund_state()
    if et == "FundAllocated":
        cp = position("county", COUNTY, received_fen=event["amount_fen"], first_received_at=event["occurred_at"])
        return ledger(fund=fund_state(known=False, allocated_fen=0)), ledger(fund=f, counterparty=cp)
    if et == "FundTransferred":
        amt = event["amount_fen"]
        pos_b = position("county", COUNTY, received_fen=1_200_000_000)
        pos_a = {**pos_b, "passed_down_fen": amt, "last_outflow_at": event["occurred_at"]}
        cp = position("town", TOWN, received_fen=amt, first_received_at=event["occurred_at"])
        return (ledger(fund=f, position=pos_b, counterparty=None),
                ledger(fund=f, position=pos_a, counterparty=cp))
    if et == "ProjectApproved":
        return (ledger(fund=f, position=position(), project=None),
                ledger(fund=f, position=position(), project=project_state(awards_count=0, awarded_fen=0,
                                                                          contracted_fen=0)))
    if et == "ProcurementAwarded":
        pb = project_state(awards_count=0, awarded_fen=0, contracted_fen=0)
        pa = {**pb, "awards_count": 1, "awarded_fen": event["amount_fen"]}
        return ledger(fund=f, position=position(), project=pb), ledger(fund=f, position=position(), project=pa)
    if et == "ContractSigned":
        pb = project_state(contracted_fen=0)
        pa = project_state(contracted_fen=event["amount_fen"])
        ca = contract_state(amount_fen=event["amount_fen"])
        pos = position(contracted_fen=event["amount_fen"])
        return (ledger(fund=f, position=position(), project=pb, contract=None),
                ledger(fund=f, position=pos, project=pa, contract=ca))
    if et == "ContractAmended":
        cb = contract_state()
        d = event["delta_fen"]
        ca = {**cb, "amendments_fen": d, "approved_amendments_fen": d if event["approved"] else 0}
        return (ledger(fund=f, project=project_state(), contract=cb),
                ledger(fund=f, project=project_state(), contract=ca))
    if et == "PaymentDisbursed":
        amt = event["amount_fen"]
        prepay = amt if event["payment_kind"] == "prepayment" else 0
        cb = contract_state()
        ca = {**cb, "paid_fen": amt, "prepaid_fen": prepay, "payments_count": 1}
        pb, pa = position(), position(paid_fen=amt, last_outflow_at=event["occurred_at"])
        prb, pra = project_state(), project_state(paid_fen=amt)
        return (ledger(fund=f, position=pb, project=prb, contract=cb),
                ledger(fund=f, position=pa, project=pra, contract=ca))
    return ledger(fund=f), ledger(fund=f)


def enriched(
    event: dict[str, Any],
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    *,
    sequence: int = 1,
    accepted_at: str | None = None,
    trace_id: str | None = None,
) -> dict[str, Any]:
    """An enriched-event document; missing states default to `normal_states`."""
    nb, na = normal_states(event)
    return {
        "event": event,
        "sequence": sequence,
        "accepted_at": accepted_at or shift(event["occurred_at"], minutes=5),
        "before": nb if before is None else before,
        "after": na if after is None else after,
        "trace_id": trace_id,
    }


def shift(ts: str, *, days: int = 0, minutes: int = 0) -> str:
    """An ISO timestamp moved by days/minutes (UTC, 'Z' form)."""
    t = datetime.fromisoformat(ts).astimezone(UTC) + timedelta(days=days, minutes=minutes)
    return t.isoformat().replace("+00:00", "Z")


def variant(event: dict[str, Any], n: int, **changes: Any) -> dict[str, Any]:
    """A copy of an event with a fresh deterministic id and the given field changes."""
    out = copy.deepcopy(event)
    out["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fundtrail-test/{event['event_id']}/{n}"))
    out.update(changes)
    return out
