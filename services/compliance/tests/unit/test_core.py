"""Windows, timers, reference data, late evidence, determinism, templates."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from fundtrail_compliance import scenario as sc
from fundtrail_compliance.core.engine import Engine
from fundtrail_compliance.core.expr import ExpressionError, compile_expr
from fundtrail_compliance.core.helpers import LOCAL_TZ, days_between, local_date, parse_time
from fundtrail_compliance.core.reference import ReferenceData
from fundtrail_compliance.core.timers import EventClock, Timer, TimerWheel
from fundtrail_compliance.core.violations import format_pct, format_yuan, render, violation_id
from fundtrail_compliance.core.windows import WindowEntry, Windows

G = sc.golden()
PAY, CONTRACT, TRANSFER = G["PaymentDisbursed"], G["ContractSigned"], G["FundTransferred"]
T = datetime(2026, 3, 2, tzinfo=UTC)


def test_window_counts_within_days_and_tolerance() -> None:
    w = Windows()
    w.add("r", ("k",), WindowEntry("a", T, 1000))
    w.add("r", ("k",), WindowEntry("b", T + timedelta(days=20), 1005))
    w.add("r", ("k",), WindowEntry("c", T + timedelta(days=40), 1000))
    w.add("r", ("other",), WindowEntry("d", T, 1000))
    e = WindowEntry("e", T + timedelta(days=25), 1000)
    v = w.earlier("r", ("k",), e, days=30)  # event time: only what is dated before it
    assert (v.count, v.total_fen, v.event_ids) == (3, 3005, ["a", "b"])
    assert w.earlier("r", ("k",), e, days=10).event_ids == ["b"]
    assert w.earlier("r", ("k",), e, days=30, tolerance_bps=1).event_ids == ["a"]
    placed = w.place("r", ("k",), e, days=30, tolerance_bps=None, reach=30)
    assert placed is not None
    assert placed[0].event_ids == ["a", "b"] and [m.event_id for m in placed[1]] == ["c"]  # c's window now holds e
    assert not w.add("r", ("k",), WindowEntry("a", T, 1000))
    assert w.place("r", ("k",), e, days=30, tolerance_bps=None, reach=30) is None  # a redelivery
    assert len(w.drain()) == 5 and w.drain() == []
    assert w.prune(T + timedelta(days=30)) == 4


def test_clock_and_timer_wheel() -> None:
    clock, wheel = EventClock(), TimerWheel()
    t = Timer(uuid.uuid4(), "audit.idle_funds", "audit.idle_funds@1", "s", "F", "town", "440705101", uuid.uuid4(),
              T, T + timedelta(days=90), 90, {"received_fen": 1})
    assert wheel.schedule(t) and not wheel.schedule(t)
    wheel.observe_position("s", {"received_fen": 2})
    assert clock.observe(T + timedelta(days=89)) and not clock.observe(T)
    assert wheel.pop_due(clock.watermark) == []
    clock.observe(T + timedelta(days=90))
    due = wheel.pop_due(clock.watermark)
    assert [x.status for x in due] == ["fired"] and due[0].snapshot == {"received_fen": 2}
    assert wheel.pop_due(T + timedelta(days=900)) == []


def test_timers_survive_a_restart_through_drained_state(packs) -> None:
    first = Engine(packs)
    first.process(sc.enriched(G["FundTransferred"]))
    saved = [t for t in first.state.timers.drain() if t.status == "pending"]
    watermark = first.state.clock.watermark
    second = Engine(packs)
    second.state.timers.load(saved)
    second.state.clock.observe(watermark)
    due = datetime.fromisoformat(G["FundTransferred"]["occurred_at"]) + timedelta(days=90)
    assert [v.rule_id for v in second.advance(due).violations] == ["audit.idle_funds"]


def test_reference_vendor_view() -> None:
    ref = ReferenceData()
    ref.apply(G["VendorRegistered"])
    ref.apply(sc.variant(G["VendorDebarred"], 1, vendor_id=G["VendorRegistered"]["vendor_id"]))
    assert not ref.apply(sc.variant(G["VendorDebarred"], 1, vendor_id=G["VendorRegistered"]["vendor_id"]))
    ref.apply(sc.variant(G["RelationDeclared"], 1, vendor_id=G["VendorRegistered"]["vendor_id"]))
    v = ref.vendor_view(G["VendorRegistered"]["vendor_id"], date(2026, 4, 1))
    assert v["registered"] and v["debarred"] and v["related_officials"] == ["OFF-440705101-09"]
    assert v["age_days"] == (date(2026, 4, 1) - date(2019, 6, 18)).days
    assert not ref.vendor_view(G["VendorRegistered"]["vendor_id"], date(2026, 1, 1))["debarred"]
    unknown = ref.vendor_view("nobody", date(2026, 4, 1))
    assert not unknown["registered"] and not unknown["debarred"] and unknown["related_officials"] == []
    assert len(ref.drain()) == 3


def _unpaid_contract_payment() -> dict:
    doc = sc.enriched(sc.variant(PAY, 1))
    doc["before"]["contract"] = None
    return doc


def _late_contract(days: int, published_after: int = 10, n: int = 1) -> dict:
    """The payment's contract, dated `days` from the payment, entered `published_after` days after it."""
    ev = sc.variant(CONTRACT, n, occurred_at=sc.shift(PAY["occurred_at"], days=days),
                    published_at=sc.shift(PAY["occurred_at"], days=published_after))
    return sc.enriched(ev)


def test_late_contract_dated_before_the_payment_resolves(engine: Engine) -> None:
    raised = engine.process(_unpaid_contract_payment()).violations
    v = next(x for x in raised if x.rule_id == "finance.payment_without_approval_or_contract")
    out = engine.process(_late_contract(-3))
    assert [r.violation_id for r in out.resolutions] == [v.violation_id]
    r = out.resolutions[0]
    assert r.actor == "compliance" and "dated on or before the payment" in r.reason
    assert str(r.refuting_event_id) == _late_contract(-3)["event"]["event_id"]
    assert engine.process(_late_contract(-2, n=2)).resolutions == []


def test_a_contract_dated_after_the_payment_does_not_resolve(engine: Engine) -> None:
    # Semantics since version 2: the payment was made before the contract existed (event time).
    engine.process(_unpaid_contract_payment())
    assert engine.process(_late_contract(10)).resolutions == []


def test_late_contract_after_its_funds_grace_does_not_resolve(engine: Engine) -> None:
    engine.process(_unpaid_contract_payment())
    # The fund's own event time moves past the payment's grace period (15 days)...
    later = sc.variant(PAY, 7, occurred_at=sc.shift(PAY["occurred_at"], days=16),
                       published_at=sc.shift(PAY["occurred_at"], days=16), invoice_no="INV-LATER")
    engine.process(sc.enriched(later))
    assert engine.process(_late_contract(-3, published_after=17)).resolutions == []


def test_grace_runs_on_the_funds_own_clock_not_on_other_funds_traffic(engine: Engine) -> None:
    raised = engine.process(_unpaid_contract_payment()).violations
    v = next(x for x in raised if x.rule_id == "finance.payment_without_approval_or_contract")
    # Another bureau's fund publishes events dated months later: the daily clean-up runs...
    other = sc.variant(TRANSFER, 3, fund_doc_no="粤财农〔2026〕999号",
                       occurred_at=sc.shift(PAY["occurred_at"], days=120),
                       published_at=sc.shift(PAY["occurred_at"], days=120))
    doc = sc.enriched(other)
    for part in ("fund", "position", "counterparty"):
        for state in (doc["before"], doc["after"]):
            if state.get(part):
                state[part] = {**state[part], "fund_doc_no": other["fund_doc_no"]}
    engine.process(doc)
    assert engine.state.clock.watermark is not None and engine.state.clock.watermark > parse_time(PAY["occurred_at"])
    # ...but this fund's violation still waits for its own evidence.
    out = engine.process(_late_contract(-3, published_after=20))
    assert [r.violation_id for r in out.resolutions] == [v.violation_id]


def test_same_event_gives_the_same_violation(packs) -> None:
    doc = sc.enriched(sc.variant(PAY, 1, handler_id=PAY["approver_id"]), trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    a = Engine(packs).process(doc).violations
    b = Engine(packs).process(doc).violations
    assert [v.model_dump_json() for v in a] == [v.model_dump_json() for v in b]
    v = a[0]
    assert v.violation_id == violation_id("inspection.same_handler_approver@1", v.triggering_event_id)
    assert v.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert v.evidence.values["read"] == {"event.handler_id": "STAFF-101-02", "event.approver_id": "STAFF-101-02"}
    assert "第十二条" in v.legal_basis and v.department == "inspection" and v.severity == "high"


def test_evaluation_error_is_reported_not_swallowed(packs) -> None:
    doc = sc.enriched(sc.variant(PAY, 1))
    doc["after"]["contract"]["paid_fen"] = "a lot"
    out = Engine(packs).process(doc)
    assert any(e.rule_ref == "finance.paid_exceeds_contract@2" for e in out.errors)


def test_templates_and_money_formatting() -> None:
    assert format_yuan(123456789) == "1,234,567.89" and format_yuan(-5) == "-0.05"
    assert format_pct(1000) == "10%" and format_pct(150) == "1.5%" and format_pct(5) == "0.05%"
    zh = render("支付 {a:yuan} 元，\n  超过 {b:pct}：{c}", {"a": 100, "b": 3000, "c": None}, "zh")
    assert zh == "支付1.00元，超过30%：—"
    assert render("paid {a:yuan} CNY,\n  {ok}", {"a": 100, "ok": True}, "en") == "paid 1.00 CNY, yes"


def test_days_between_uses_china_dates() -> None:
    assert days_between("2026-03-20", "2026-04-10") == 21
    assert days_between("2026-03-01T16:30:00Z", "2026-03-02T15:00:00Z") == 0


def test_local_date_matches_the_zone_on_both_sides_of_the_fixed_offset() -> None:
    # The fast path adds +8 h from 1992 on; 1986-1991 had summer time (+9 h), which only the zone knows.
    start = datetime(1985, 1, 1, tzinfo=UTC)
    for hours in range(0, 60 * 365 * 24, 997):
        at = start + timedelta(hours=hours)
        assert local_date(at) == at.astimezone(LOCAL_TZ).date(), at
    assert local_date(datetime(1990, 7, 1, 15, 30, tzinfo=UTC)) == date(1990, 7, 2)  # +9 h that summer
    assert local_date(datetime(2026, 7, 1, 15, 30, tzinfo=UTC)) == date(2026, 7, 1)
    assert local_date("2026-07-01T23:30:00+08:00") == date(2026, 7, 1)
    assert parse_time("2026-07-01T23:30:00+08:00") == datetime(2026, 7, 1, 15, 30, tzinfo=UTC)
    assert parse_time("2026-07-01T15:30:00Z").tzinfo is UTC
    with pytest.raises(ValueError, match="no timezone"):
        parse_time("2026-07-01T15:30:00")


def test_expression_string_literals_are_not_rewritten() -> None:
    e = compile_expr('event.a == "event.b" && event.b == \'params.x\'', {"event": {"a": "scalar", "b": "scalar"}}, {})
    assert e.rewritten == 'event__a == "event.b" && event__b == \'params.x\''
    with pytest.raises(ExpressionError):
        compile_expr("event.a.b", {"event": {"a": "scalar"}}, {})
