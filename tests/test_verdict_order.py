"""The same verdicts whatever order a fund's events arrive in (issue 18, rule semantics).

Generated funds (allocation, transfer, approval, award, contract, payments, acceptance, settlement,
random dates and amounts, some violating) go through fund-tracker's ledger (the before/after states
it computes in arrival order) and then the compliance engine (pure cores, no Kafka, no database).
After every grace period has passed, the open verdicts (raised and not resolved) must be those of
the same events arriving in date order.

Two arrival models:
- any permutation at all, with a grace period longer than the fund's life (evidence may be late
  by any amount: the rule semantics alone must make the verdicts order-independent);
- the default 15-day grace period, each event arriving less than the grace period after the fund's
  own latest event (what the grace period promises).

Kept out of the generator, and why (docs/domain.md says the same): several inflows into one
position (an idle-funds clock starts at the first inflow *to arrive*), budget adjustments and
contract amendments (registers judged on their newest value), repeated invoices and similar
payments to one payee (a rule that names the event completing a pair names the one that arrived
last; window rules are judged in event time, tests/unit/test_windows_event_time.py), spending
beyond what a level received (a violation resolved by late evidence is not raised again by still
later evidence: its id is taken).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundtrail_compliance.core.engine import Engine
from fundtrail_compliance.core.evaluator import PackSet
from fundtrail_schemas.events import (
    Bidder,
    ContractSigned,
    Envelope,
    FundAllocated,
    FundTransferred,
    PaymentDisbursed,
    ProcurementAwarded,
    ProjectAccepted,
    ProjectApproved,
    ProjectSettled,
)
from fundtrail_schemas.ledger import Ledger
from fundtrail_schemas.rulepack import load_pack

RULEPACKS = Path(__file__).parents[1] / "services/compliance/rulepacks"
PACKS = PackSet([(load_pack(p), str(p)) for p in sorted(RULEPACKS.glob("*.yaml"))])
FUND = "粤财农〔2025〕77号"
CITY, COUNTY, TOWN = "440700", "440705", "440705101"
D0 = datetime(2025, 3, 1, 1, 30, tzinfo=UTC)
FAR = D0 + timedelta(days=3 * 365)


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"fundtrail-test/order/{name}")


def _env(name: str, day: float, level: str, region: str, published: float | None = None) -> dict[str, Any]:
    at = D0 + timedelta(days=day)
    return dict(event_id=_id(name), occurred_at=at, published_at=D0 + timedelta(days=published if published is not None
                else day, minutes=3), source_bureau=f"{region}-CZJ", level=level, region_code=region, fund_doc_no=FUND)


@st.composite
def funds(draw: st.DrawFn, *, late_recording: bool) -> list[Envelope]:
    """One fund's events; `late_recording`: some are recorded (published) long after their date."""
    day = st.integers(min_value=1, max_value=200)

    def rec(d: int) -> float | None:
        return d + draw(st.sampled_from([0, 0, 3, 40])) if late_recording else None

    allocated = draw(st.integers(min_value=50_000_000, max_value=900_000_000))
    transfer_day = draw(st.integers(min_value=1, max_value=45))
    purpose, category = draw(st.sampled_from([("infrastructure", "infrastructure")] * 3 + [("water", "industry")]))
    budget = draw(st.integers(min_value=10_000_000, max_value=allocated // 2))
    contract_amount = draw(st.integers(min_value=budget // 2, max_value=budget * 6 // 5))
    events: list[Envelope] = [
        FundAllocated(**_env("alloc", 0, "city", CITY), amount_fen=allocated, purpose_category=purpose,
                      recipient_level="county", recipient_region_code=COUNTY, deadline=date(2026, 6, 30),
                      title="乡村振兴专项"),
        FundTransferred(**_env("transfer", transfer_day, "county", COUNTY), transfer_id="T-1", amount_fen=allocated,
                        to_level="town", to_region_code=TOWN),
    ]
    prj = dict(project_id="P-1")
    d = draw(day)
    events.append(ProjectApproved(**_env("approval", d, "town", TOWN, rec(d)), **prj, project_name="村道硬化",
                                  owner_unit="440705101-JSB", category=category, budget_fen=budget,
                                  planned_procurement_method="open_tender", procurement_category="construction",
                                  approval_doc_no="批-1", approving_official_id="OFF-1", land_use_approval_ref="地-1"))
    bidders = [Bidder(vendor_id=f"V-{i}", name=f"公司{i}", legal_rep_id=f"R-{i}", phone=f"1380000000{i}",
                      bank_account=f"6222-{i}", address=f"地址{i}", bid_amount_fen=contract_amount + i)
               for i in range(3)]
    d = draw(day)
    events.append(ProcurementAwarded(**_env("award", d, "town", TOWN), **prj, award_id="A-1",
                                     owner_unit="440705101-JSB", method="open_tender",
                                     procurement_category="construction", amount_fen=contract_amount,
                                     winner_vendor_id="V-0", bidders=bidders, platform_ref="JY-1",
                                     approving_official_id="OFF-1"))
    d = draw(day)
    events.append(ContractSigned(**_env("contract", d, "town", TOWN, rec(d)), **prj, contract_id="C-1",
                                 award_id="A-1", vendor_id="V-0", amount_fen=contract_amount))
    n = draw(st.integers(min_value=1, max_value=3))
    # Payments start after the transfer and stay within what the town received (see the docstring).
    share = allocated // n
    for i in range(n):
        pay_day = transfer_day + draw(st.integers(min_value=1, max_value=200))
        kind = draw(st.sampled_from(["prepayment", "progress", "final"]))
        amount = draw(st.integers(min_value=1, max_value=share))
        events.append(PaymentDisbursed(**_env(f"pay-{i}", pay_day, "town", TOWN), **prj, payment_id=f"ZF-{i}",
                                       contract_id="C-1", payee_vendor_id="V-0", payee_name="公司0",
                                       payee_account=f"6222-0-{i}", account_kind="corporate", amount_fen=amount,
                                       invoice_no=f"FP-{i}", payment_kind=kind, handler_id="H-1", approver_id="A-1",
                                       purpose="工程款"))
    if draw(st.booleans()):
        events.append(ProjectAccepted(**_env("acceptance", draw(day), "town", TOWN), **prj, acceptance_id="YS-1",
                                      passed=True))
    if draw(st.booleans()):
        events.append(ProjectSettled(**_env("settlement", draw(day), "town", TOWN), **prj,
                                     settlement_amount_fen=contract_amount, closed=draw(st.booleans())))
    return events


def enrich(arrival: list[Envelope]) -> list[dict[str, Any]]:
    """What fund-tracker publishes for events arriving in this order: it parks a fund's events until
    the fund's allocation is known, then applies each to its ledger (before/after in arrival order)."""
    alloc = next(i for i, e in enumerate(arrival) if isinstance(e, FundAllocated))
    order = [arrival[alloc], *arrival[:alloc], *arrival[alloc + 1:]]
    ledger = Ledger()
    docs = []
    for n, ev in enumerate(order, start=1):
        t = ledger.apply(ev)
        docs.append({
            "event": orjson.loads(ev.model_dump_json()), "sequence": n, "accepted_at": FAR.isoformat(),
            "before": orjson.loads(t.before_json), "after": orjson.loads(t.after_json), "trace_id": None,
        })
    return docs


def open_verdicts(arrival: list[Envelope], grace: timedelta) -> set[tuple[str, int, str]]:
    """(rule, version, triggering event) of the violations still open once every grace period passed."""
    engine = Engine(PACKS, grace=grace)
    raised: dict[uuid.UUID, tuple[str, int, str]] = {}
    resolved: set[uuid.UUID] = set()

    def take(out: Any) -> None:
        assert not out.errors, out.errors
        for v in out.violations:
            raised[v.violation_id] = (v.rule_id, v.rule_version, str(v.triggering_event_id))
        resolved.update(r.violation_id for r in out.resolutions)

    for doc in enrich(arrival):
        take(engine.process(doc))
    take(engine.advance(FAR))
    assert resolved <= set(raised)
    return {v for vid, v in raised.items() if vid not in resolved}


def by_date(events: list[Envelope]) -> list[Envelope]:
    return sorted(events, key=lambda e: (e.occurred_at, str(e.event_id)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), events=funds(late_recording=True))
def test_any_arrival_order_gives_the_verdicts_of_date_order(data: st.DataObject, events: list[Envelope]) -> None:
    grace = timedelta(days=3650)  # evidence may arrive any time within the fund's life
    expected = open_verdicts(by_date(events), grace)
    arrival = data.draw(st.permutations(events))
    assert open_verdicts(arrival, grace) == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), events=funds(late_recording=False))
def test_arrival_within_the_grace_period_gives_the_verdicts_of_date_order(
    data: st.DataObject, events: list[Envelope]
) -> None:
    grace = timedelta(days=15)
    expected = open_verdicts(by_date(events), grace)
    # Each event arrives (is published) 0-14 days after its date: never later than the grace period
    # after the fund's latest event already read.
    delays = [data.draw(st.floats(min_value=0, max_value=14.9)) for _ in events]
    arrival = [e for _, e in sorted(zip(delays, events, strict=True),
                                    key=lambda p: (p[1].occurred_at + timedelta(days=p[0]), str(p[1].event_id)))]
    assert open_verdicts(arrival, grace) == expected


def test_the_generated_funds_do_violate_rules() -> None:
    """The property is not vacuous: date-ordered generated funds raise rules it is about."""
    seen: set[str] = set()

    @settings(max_examples=120, deadline=None, database=None)
    @given(events=funds(late_recording=True))
    def collect(events: list[Envelope]) -> None:
        seen.update(rule for rule, _, _ in open_verdicts(by_date(events), timedelta(days=3650)))

    collect()
    assert {"finance.payment_without_approval_or_contract", "development.contract_before_approval",
            "audit.idle_funds", "housing.final_without_acceptance"} <= seen, seen


# --- the cases of the issue, by name --------------------------------------------------------------


def _approval(day: float, published: float | None = None, **kw: Any) -> ProjectApproved:
    return ProjectApproved(**_env(f"approval-{day}", day, "town", TOWN, published), project_id="P-1",
                           project_name="村道硬化", owner_unit="440705101-JSB", category="infrastructure",
                           budget_fen=200_000_000, planned_procurement_method="open_tender",
                           procurement_category="construction", approval_doc_no="批-1", approving_official_id="OFF-1",
                           land_use_approval_ref="地-1", **kw)


def _contract(day: float, published: float | None = None, amount: int = 186_000_000) -> ContractSigned:
    return ContractSigned(**_env(f"contract-{day}", day, "town", TOWN, published), project_id="P-1",
                          contract_id="C-1", vendor_id="V-0", amount_fen=amount)


def _payment(day: float, amount: int, n: int = 0, kind: str = "progress") -> PaymentDisbursed:
    return PaymentDisbursed(**_env(f"pay-{n}-{day}", day, "town", TOWN), project_id="P-1", payment_id=f"ZF-{n}",
                            contract_id="C-1", payee_vendor_id="V-0", payee_name="公司0", payee_account=f"6222-0-{n}",
                            account_kind="corporate", amount_fen=amount, invoice_no=f"FP-{n}", payment_kind=kind,
                            handler_id="H-1", approver_id="A-1", purpose="工程款")


def _funded() -> list[Envelope]:
    return [
        FundAllocated(**_env("alloc", 0, "city", CITY), amount_fen=900_000_000, purpose_category="infrastructure",
                      recipient_level="county", recipient_region_code=COUNTY, deadline=date(2026, 6, 30),
                      title="乡村振兴专项"),
        FundTransferred(**_env("transfer", 1, "county", COUNTY), transfer_id="T-1", amount_fen=900_000_000,
                        to_level="town", to_region_code=TOWN),
    ]


def _run(arrival: list[Envelope], grace: timedelta = timedelta(days=15)) -> tuple[list[Any], list[Any]]:
    engine = Engine(PACKS, grace=grace)
    violations, resolutions = [], []
    for doc in enrich(arrival):
        out = engine.process(doc)
        assert not out.errors, out.errors
        violations += out.violations
        resolutions += out.resolutions
    return violations, resolutions


def _rules(violations: list[Any], of: Envelope | None = None) -> set[str]:
    return {v.rule_id for v in violations if of is None or v.triggering_event_id == of.event_id}


def test_a_payment_dated_before_its_approval_and_contract_but_published_after_them_fires() -> None:
    pay = _payment(4, 10_000_000)
    violations, _ = _run([*_funded(), _approval(5), _contract(6), pay])
    assert "finance.payment_without_approval_or_contract" in _rules(violations, pay)
    v = next(v for v in violations if v.rule_id == "finance.payment_without_approval_or_contract")
    assert "尚未立项批复" in v.explanation_zh and "尚未签订" in v.explanation_zh and "2025年3月5日" in v.explanation_zh
    assert "was not yet approved and contract C-1 was not yet signed" in v.explanation_en


def test_a_contract_dated_before_its_approval_but_published_after_it_fires() -> None:
    contract = _contract(5)
    violations, _ = _run([*_funded(), _approval(10), contract])
    assert _rules(violations, contract) == {"development.contract_before_approval"}


def test_a_payment_before_its_contract_raises_only_the_missing_contract_rule_and_the_contract_resolves_it() -> None:
    pay, contract = _payment(20, 50_000_000), _contract(15, published=25)
    violations, resolutions = _run([*_funded(), _approval(10), pay, contract])
    assert _rules(violations) == {"finance.payment_without_approval_or_contract"}
    assert [r.violation_id for r in resolutions] == [violations[0].violation_id]
    # The contract's amount is judged once it arrives: here it is smaller than what was paid.
    violations, resolutions = _run([*_funded(), _approval(10), pay, _contract(15, published=25, amount=40_000_000)])
    assert _rules(violations) == {"finance.payment_without_approval_or_contract", "finance.paid_exceeds_contract",
                                  "housing.retention_below_warranty"}
    assert len(resolutions) == 1
    over = next(v for v in violations if v.rule_id == "finance.paid_exceeds_contract")
    assert over.triggering_event_id == pay.event_id and "超过合同金额400,000.00元" in over.explanation_zh


def test_a_contract_dated_after_the_payment_does_not_resolve_it() -> None:
    pay = _payment(20, 50_000_000)
    violations, resolutions = _run([*_funded(), _approval(10), pay, _contract(22)])
    assert _rules(violations) == {"finance.payment_without_approval_or_contract"} and resolutions == []


def test_the_back_dating_rule_fires_in_either_arrival_order_and_its_near_miss_stays_silent() -> None:
    # Contract dated day 15, recorded day 45; a payment against it dated day 20 (25 days before).
    late = _contract(15, published=45)
    for order in ([*_funded(), _approval(10), _payment(20, 1_000_000), late],
                  [*_funded(), _approval(10), late, _payment(20, 1_000_000)]):
        violations, _ = _run(order, grace=timedelta(days=60))
        hits = [v for v in violations if v.rule_id == "audit.backdated_entry"]
        assert [v.triggering_event_id for v in hits] == [late.event_id]
        assert hits[0].explanation_zh.startswith("合同C-1的业务日期为2025年3月16日，却迟至2025年4月15日才录入")
    near = _contract(15, published=35)  # recorded 15 days after the payment: within the tolerance
    violations, _ = _run([*_funded(), _approval(10), _payment(20, 1_000_000), near], grace=timedelta(days=60))
    assert "audit.backdated_entry" not in _rules(violations)


# The demo stream through the same pure cores: the dataset raises exactly the violations its manifest
# seeds, and nothing on its clean cases. This replaced a second, hand-written reading of the rules
# (schemas' demo/oracle.py): the contract cannot import the services, these root tests can.
@pytest.mark.parametrize(("seed", "size"), [(1, 0.05), (2, 0.1), (3, 0.1), (44, 0.05), (7, 1.0)])
def test_the_demo_dataset_raises_exactly_its_manifest_through_the_real_ledger_and_engine(
    seed: int, size: float
) -> None:
    from fundtrail_demo import generate

    dataset = generate(seed, size)
    hits = {(rule, trigger) for rule, _, trigger in open_verdicts(list(dataset.events), timedelta(days=15))}
    expected = {(e.rule_id, str(e.triggering_event_id)) for e in dataset.expected}
    assert expected - hits == set(), "seeded violations that do not fire"
    assert hits - expected == set(), "accidental violations in clean data"
    for clean in dataset.clean:
        for rule_id in clean.rule_ids:
            assert not {(rule_id, str(i)) for i in clean.event_ids} & hits, clean


# --- a restart between a fund's events (the book recovered from PostgreSQL) ------------------------

RESTART_CASES = {
    # The payment arrives after the back-dated contract: the book's kept contract is judged again.
    "backdated": ([*_funded(), _approval(10), _contract(15, published=45), _payment(20, 1_000_000)], 60),
    # The contract arrives after the payment: the payment is judged again on the event-time view.
    "late_contract": ([*_funded(), _approval(10), _payment(20, 50_000_000), _contract(15, published=25,
                                                                                     amount=40_000_000)], 15),
    # Months of payments: the daily sweeps forget and fold the book between restarts; the last one,
    # back-dated within the grace period, is judged on sums rebuilt partly from the folded bases.
    "swept": ([*_funded(), _approval(10), _contract(15), *[_payment(20 + 9 * k, 30_000_000, n=k) for k in range(9)],
               _payment(88, 10_000_000, n=20), _payment(84, 10_000_000, n=21)], 15),
}


def _book_facts(book: Any) -> dict[str, Any]:
    """Everything a fund's book decides with (the kept documents' form aside: a dict or its bytes)."""
    return {
        "clock": (book.clock, book.last, book.disordered, book.folded, book.horizon),
        "rows": {rk: (r.kind, r.sequence, r.latest, r.base, r.entries, r.ids, r.total or list(r.base))
                 for rk, r in book.rows.items()},
        "kept": {eid: (k.at, k.raised, k.resolved, k.keep_from) for eid, k in book.kept.items()},
        "order": [k for k in book.kept_order if k[1] in book.kept],
        "entries": book.entries, "dependents": book.dependents,
    }


async def _run_with_restarts(
    url: str, arrival: list[Envelope], grace: timedelta, restart_after: set[int]
) -> tuple[set[tuple[str, str]], set[str]]:
    """Each event its own committed batch (as the worker writes them); after the events numbered in
    `restart_after` the engine is thrown away, as a SIGKILL would, and a new one loads what was stored."""
    from fundtrail_compliance.adapters.postgres import ComplianceStore
    from fundtrail_compliance.core.engine import EngineState

    store = ComplianceStore(url)
    engine = Engine(PACKS, grace=grace)
    violations: set[tuple[str, str]] = set()
    resolutions: set[str] = set()
    try:
        for i, doc in enumerate(enrich(arrival)):
            out = engine.process(doc)
            assert not out.errors, out.errors
            now = datetime.now(UTC)
            async with store.pipelined_transaction() as (cur, _):
                await store.write_batch(cur, [(uuid.UUID(doc["event"]["event_id"]), len(out.violations))],
                                        out.violations, engine.state, now)
                await cur.execute("SELECT 1")  # the violations are in: the resolutions update them
                for r in out.resolutions:
                    await store.record_case(cur, r, "resolved", "applied", "raised", "resolved", None, now, None)
            violations |= {(v.rule_id, str(v.triggering_event_id)) for v in out.violations}
            resolutions |= {str(r.violation_id) for r in out.resolutions}
            if i in restart_after:
                before = {f: _book_facts(b) for f, b in engine.state.books.items()}
                engine = Engine(PACKS, grace=grace, state=EngineState())
                await store.load_state(engine.state)
                engine.restore_books(*await store.load_books())
                assert {f: _book_facts(b) for f, b in engine.state.books.items()} == before
    finally:
        await store.close()
    return violations, resolutions


@pytest.mark.integration
@pytest.mark.parametrize("case", sorted(RESTART_CASES))
async def test_a_restart_between_a_funds_events_judges_as_an_uninterrupted_run(
    case: str, pg_node: Any, migrated_template: str
) -> None:
    """The fund's book (core/book.py) comes back from PostgreSQL: a replica restarted between any two
    of a fund's events (the back-dated contract and its payment, the payment and its late contract)
    raises and resolves exactly what one that never stopped does."""
    import psycopg

    arrival, grace_days = RESTART_CASES[case]
    grace = timedelta(days=grace_days)
    admin = pg_node.url("postgres").replace("postgresql+psycopg://", "postgresql://")
    names: list[str] = []

    def fresh() -> str:
        names.append(f"m_{uuid.uuid4().hex}")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{names[-1]}" TEMPLATE "{migrated_template}"')
        return str(pg_node.url(names[-1]))

    try:
        expected = await _run_with_restarts(fresh(), arrival, grace, set())
        # Each case raises something only the book decides.
        if case == "backdated":
            assert ("audit.backdated_entry", str(arrival[-2].event_id)) in expected[0]
        elif case == "late_contract":
            assert ("finance.paid_exceeds_contract", str(arrival[-2].event_id)) in expected[0] and expected[1]
        for split in range(len(arrival) - 1):
            got = await _run_with_restarts(fresh(), arrival, grace, {split})
            assert got == expected, f"restart after event {split}"
    finally:
        for name in names:
            pg_node.drop_database(name, force=True)
