"""Unit tests of the pure ledger: transitions, conservation, before/after, order independence."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fundtrail_schemas.events import (
    BudgetAdjusted,
    ContractAmended,
    ContractSigned,
    Envelope,
    FundAllocated,
    FundReturned,
    FundTransferred,
    PaymentDisbursed,
    ProjectAccepted,
    ProjectApproved,
    ProjectSettled,
)
from fundtrail_schemas.examples import golden_events
from fundtrail_schemas.ledger import Ledger, contract_value, keys_of
from fundtrail_schemas.types import Level

FUND = "江财农〔2026〕18号"
T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
_counter = iter(range(1, 10**9))


def env(level: str, region: str, days: float, **fields: Any) -> dict[str, Any]:
    at = T0 + timedelta(days=days)
    return {
        "event_id": uuid.UUID(int=next(_counter)),
        "occurred_at": at,
        "published_at": at + timedelta(minutes=1),
        "source_bureau": f"{region}-CZJ",
        "level": level,
        "region_code": region,
        "fund_doc_no": FUND,
        **fields,
    }


def town(days: float, **fields: Any) -> dict[str, Any]:
    return env("town", "440705101", days, **fields)


def pay(days: float, payment_id: str, amount: int, **extra: Any) -> PaymentDisbursed:
    fields = {
        "project_id": "P1", "payment_id": payment_id, "contract_id": "C1", "payee_vendor_id": "V1",
        "payee_name": "绿野建设", "payee_account": "6222-1", "account_kind": "corporate", "amount_fen": amount,
        "invoice_no": f"INV-{payment_id}", "payment_kind": "progress", "handler_id": "H1", "approver_id": "A1",
        "purpose": "进度款",
    }
    fields.update(extra)
    return PaymentDisbursed(**town(days, **fields))


def fund_story() -> list[Envelope]:
    """One fund's life, with facts that tempt order dependence (two budgets, two allocations)."""
    return [
        FundAllocated(**env("city", "440700", 0), amount_fen=900_000, purpose_category="infrastructure",
                      recipient_level="county", recipient_region_code="440705", deadline="2026-12-31", title="第一批"),
        FundAllocated(**env("city", "440700", 3), amount_fen=100_000, purpose_category="water",
                      recipient_level="county", recipient_region_code="440705", deadline="2027-06-30", title="第二批"),
        FundTransferred(**env("county", "440705", 5), transfer_id="T1", amount_fen=600_000, to_level="town",
                        to_region_code="440705101"),
        FundTransferred(**env("county", "440705", 6), transfer_id="T2", amount_fen=50_000, to_level="town",
                        to_region_code="440705102"),
        ProjectApproved(**town(10), project_id="P1", project_name="村道", owner_unit="JSB",
                        category="infrastructure", budget_fen=400_000, planned_procurement_method="open_tender",
                        procurement_category="construction", approval_doc_no="AP1", approving_official_id="O1"),
        BudgetAdjusted(**town(30), project_id="P1", adjustment_id="ADJ1", new_budget_fen=450_000,
                       approval_doc_no="AP2", reason="增加排水"),
        BudgetAdjusted(**town(20), project_id="P1", adjustment_id="ADJ0", new_budget_fen=420_000,
                       approval_doc_no="AP3", reason="先调一次"),
        ContractSigned(**town(15), project_id="P1", contract_id="C1", vendor_id="V1", amount_fen=380_000),
        ContractAmended(**town(40), project_id="P1", contract_id="C1", amendment_id="BG1", delta_fen=20_000,
                        approved=True, approval_doc_no="AP4", reason="加量"),
        ContractAmended(**town(41), project_id="P1", contract_id="C1", amendment_id="BG2", delta_fen=-5_000,
                        approved=False, reason="未批"),
        pay(16, "Z1", 76_000, payment_kind="prepayment"),
        pay(50, "Z2", 150_000),
        pay(60, "Z3", 100_000, invoice_no="INV-Z2"),
        ProjectAccepted(**town(70), project_id="P1", acceptance_id="YS0", passed=False, progress_bps=5000),
        ProjectAccepted(**town(80), project_id="P1", acceptance_id="YS1", passed=True, progress_bps=6000),
        ProjectAccepted(**town(90), project_id="P1", acceptance_id="YS2", passed=True, progress_bps=10_000),
        ProjectSettled(**town(100), project_id="P1", settlement_amount_fen=395_000, closed=False),
        ProjectSettled(**town(110), project_id="P1", settlement_amount_fen=398_000, closed=True),
        FundReturned(**town(120), return_id="R1", amount_fen=30_000, to_level="county", to_region_code="440705",
                     reason="unused"),
    ]


STORY = fund_story()


def snapshot(ledger: Ledger) -> dict[str, Any]:
    """Everything the ledger stores, in a form that compares equal iff the stored state is equal."""
    return {
        "funds": {k: (asdict(r.state), r.title, r.region_code, r.provenance) for k, r in ledger.funds.items()},
        "positions": {k: asdict(p) for k, p in ledger.positions.items()},
        "projects": {k: (asdict(r.state), r.fund_doc_no, r.settlement_amount_fen, r.provenance)
                     for k, r in ledger.projects.items()},
        "contracts": {k: (asdict(r.state), r.project_id, r.fund_doc_no) for k, r in ledger.contracts.items()},
        "vendors": {k: asdict(v) for k, v in ledger.vendors.items()},
        "invoices": {k: sorted(v) for k, v in ledger.invoices.items()},
        "payments": sorted(p.payment_id for p in ledger.new_payments),
    }


def apply_all(events: list[Envelope]) -> Ledger:
    ledger = Ledger()
    for ev in events:
        ledger.apply(ev)
    return ledger


def test_money_flows_level_by_level_and_is_conserved() -> None:
    ledger = apply_all(fund_story())
    city = ledger.positions[(FUND, "city", "440700")]
    county = ledger.positions[(FUND, "county", "440705")]
    town_a = ledger.positions[(FUND, "town", "440705101")]
    town_b = ledger.positions[(FUND, "town", "440705102")]
    assert (city.received_fen, city.passed_down_fen, city.balance_fen) == (1_000_000, 1_000_000, 0)
    # The county got both allocations and the town's return, and passed 650,000 down.
    assert (county.received_fen, county.passed_down_fen, county.balance_fen) == (1_030_000, 650_000, 380_000)
    assert (town_a.received_fen, town_a.paid_fen, town_a.returned_fen) == (600_000, 326_000, 30_000)
    assert town_a.balance_fen == 600_000 - 326_000 - 30_000
    assert town_b.balance_fen == 50_000
    total_balance = sum(p.balance_fen for p in ledger.positions.values())
    assert total_balance == ledger.funds[FUND].state.allocated_fen - 326_000


def test_fund_attributes_come_from_the_earliest_allocation() -> None:
    fund = apply_all(fund_story()).funds[FUND]
    assert fund.state.allocated_fen == 1_000_000
    assert fund.state.purpose_category == "infrastructure"
    assert fund.title == "第一批"
    assert fund.state.allocated_at == T0


def test_project_contract_and_vendor_figures() -> None:
    ledger = apply_all(fund_story())
    p = ledger.projects["P1"]
    assert p.state.approved and p.state.budget_fen == 450_000  # the latest adjustment by business time
    assert p.state.contracted_fen == 400_000  # signed 380,000 + approved 20,000; the unapproved -5,000 not
    assert p.state.paid_fen == 326_000
    assert p.state.accepted and p.state.accepted_progress_bps == 10_000
    assert p.state.accepted_at == T0 + timedelta(days=80)  # the failed acceptance does not count
    assert p.state.settled and p.state.closed and p.settlement_amount_fen == 398_000
    c = ledger.contracts["C1"].state
    assert (c.amount_fen, c.amendments_fen, c.approved_amendments_fen) == (380_000, 15_000, 20_000)
    assert contract_value(c) == 400_000
    assert (c.paid_fen, c.prepaid_fen, c.payments_count) == (326_000, 76_000, 3)
    assert ledger.positions[(FUND, "town", "440705101")].contracted_fen == 400_000
    assert ledger.vendors["V1"].paid_fen == 326_000
    assert ledger.invoices["INV-Z2"] == ["Z2", "Z3"]


def test_transition_shows_the_slice_before_and_after() -> None:
    story = fund_story()
    ledger = apply_all(story[:12])  # up to the first progress payment Z2
    t = ledger.apply(story[12])  # Z3 reuses Z2's invoice number
    assert t.before.position is not None and t.after.position is not None
    assert t.after.position.paid_fen - t.before.position.paid_fen == 100_000
    assert t.before.contract is not None and t.before.contract.paid_fen == 226_000
    assert t.after.project is not None and t.after.project.paid_fen == 326_000
    assert t.before.invoice_payment_ids == ["Z2"] and t.after.invoice_payment_ids == ["Z2"]
    assert t.before.fund is not None and t.before.fund.known


def test_first_transfer_shows_no_receiving_position_before() -> None:
    story = fund_story()
    ledger = apply_all(story[:3])
    t = ledger.apply(story[3])
    assert t.before.counterparty is None
    assert t.after.counterparty is not None and t.after.counterparty.received_fen == 50_000
    assert t.after.counterparty.level is Level.TOWN


def test_payment_before_approval_and_contract_is_recorded_against_unknown_rows() -> None:
    ledger = Ledger()
    t = ledger.apply(pay(1, "Z9", 5_000, project_id="P-UNKNOWN", contract_id="C-UNKNOWN"))
    assert t.before.project is None and t.before.contract is None
    assert t.after.project is not None and not t.after.project.approved and t.after.project.paid_fen == 5_000
    assert t.after.contract is not None and not t.after.contract.signed and t.after.contract.paid_fen == 5_000


def test_reference_events_touch_no_money() -> None:
    ledger = Ledger()
    for ev in golden_events()[11:14]:
        t = ledger.apply(ev)
        assert t.before == t.after
    assert not ledger.positions and not ledger.dirty_positions


def test_keys_cover_every_row_an_event_touches() -> None:
    story = fund_story()
    keys = keys_of(story)
    ledger = apply_all(story)
    assert set(ledger.positions) <= keys.positions
    assert set(ledger.projects) <= keys.projects
    assert set(ledger.contracts) <= keys.contracts
    assert set(ledger.vendors) <= keys.vendors
    assert set(ledger.invoices) <= keys.invoices


@settings(max_examples=150, deadline=None)
@given(st.permutations(STORY))
def test_final_state_does_not_depend_on_arrival_order(order: list[Envelope]) -> None:
    assert snapshot(apply_all(order)) == snapshot(apply_all(STORY))


@settings(max_examples=60, deadline=None)
@given(st.permutations(STORY), st.lists(st.integers(1, 6), min_size=1, max_size=20))
def test_state_is_the_same_when_split_into_batches_through_storage(order: list[Envelope], cuts: list[int]) -> None:
    """Batches load only their own slice; merging slices must give the same state as one pass."""
    stored = Ledger()
    i = 0
    sizes = itertools.cycle(cuts)
    while i < len(order):
        batch = order[i : i + next(sizes)]
        i += len(batch)
        keys = keys_of(batch)
        part = _slice(stored, keys)
        for ev in batch:
            part.apply(ev)
        _merge_back(stored, part)
    assert snapshot(stored) == snapshot(apply_all(STORY))


def _slice(stored: Ledger, keys: Any) -> Ledger:
    """What the adapter loads: copies of the stored rows the keys name."""
    import copy

    part = Ledger()
    part.funds = {k: copy.deepcopy(v) for k, v in stored.funds.items() if k in keys.funds}
    part.positions = {k: copy.copy(v) for k, v in stored.positions.items() if k in keys.positions}
    part.projects = {k: copy.deepcopy(v) for k, v in stored.projects.items() if k in keys.projects}
    part.contracts = {k: copy.deepcopy(v) for k, v in stored.contracts.items() if k in keys.contracts}
    part.vendors = {k: copy.copy(v) for k, v in stored.vendors.items() if k in keys.vendors}
    part.invoices = {k: list(v) for k, v in stored.invoices.items() if k in keys.invoices}
    return part


def _merge_back(stored: Ledger, part: Ledger) -> None:
    """What the adapter writes: the dirty rows, whole."""
    for k in part.dirty_funds:
        stored.funds[k] = part.funds[k]
    for k in part.dirty_positions:
        stored.positions[k] = part.positions[k]
    for k in part.dirty_projects:
        stored.projects[k] = part.projects[k]
    for k in part.dirty_contracts:
        stored.contracts[k] = part.contracts[k]
    for k in part.dirty_vendors:
        stored.vendors[k] = part.vendors[k]
    for p in part.new_payments:
        stored.invoices.setdefault(p.invoice_no, []).append(p.payment_id)
        stored.new_payments.append(p)
