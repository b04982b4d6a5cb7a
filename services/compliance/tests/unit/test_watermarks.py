"""Event time per partition: timers fire on the minimum over the partitions read, not on the
fastest one, and that clock survives a restart; a late outflow refutes an idle-funds check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from fundtrail_compliance import scenario as sc
from fundtrail_compliance.core.engine import Engine, EngineState
from fundtrail_compliance.core.helpers import parse_time
from fundtrail_compliance.core.reference import event_vendor
from fundtrail_compliance.core.timers import EventClock

G = sc.golden()
TRANSFER = G["FundTransferred"]  # starts the idle-funds timer of the receiving town: 90 days
START = parse_time(TRANSFER["occurred_at"])
IDLE = "audit.idle_funds"


def at(days: int) -> str:
    return sc.shift(TRANSFER["occurred_at"], days=days)


def unrelated(n: int, days: int) -> dict[str, Any]:
    """An event of another fund (reference data) dated `days` after the transfer: it only moves the clock."""
    ev = sc.variant(G["VendorRegistered"], n, occurred_at=at(days), published_at=at(days))
    return sc.enriched(ev, sc.ledger(), sc.ledger())


def outflow(n: int, days: int) -> dict[str, Any]:
    """A payment by the receiving town, dated `days` after the transfer."""
    ev = sc.variant(G["PaymentDisbursed"], n, occurred_at=at(days), published_at=at(days))
    before, after = sc.normal_states(ev)
    after["position"] = sc.position(paid_fen=37_200_000)
    return sc.enriched(ev, before, after)


def idle_checks(out: Any) -> list[str]:
    return [v.rule_id for v in out.violations if v.rule_id == IDLE]


def test_a_faster_partition_does_not_fire_before_a_slower_ones_earlier_outflow(engine: Engine) -> None:
    engine.assign([0, 1])
    engine.process(sc.enriched(TRANSFER), partition=0)
    engine.process(unrelated(1, 1), partition=1)
    # A bulk load: partition 0 is read far ahead; one watermark for all would fire the check here.
    assert idle_checks(engine.process(unrelated(2, 120), partition=0)) == []
    assert engine.state.clock.watermark == parse_time(at(1))
    assert len(engine.state.timers.pending) == 1
    engine.process(outflow(3, 40), partition=1)  # the slower partition delivers the earlier outflow
    out = engine.process(unrelated(4, 121), partition=1)
    assert engine.state.clock.watermark == parse_time(at(120))
    assert engine.state.timers.pending == {}  # checked when due: the money had moved, nothing raised
    assert idle_checks(out) == [] and out.resolutions == []


def test_without_the_outflow_the_check_fires_once_every_partition_is_past_due(engine: Engine) -> None:
    engine.assign([0, 1])
    engine.process(sc.enriched(TRANSFER), partition=0)
    engine.process(unrelated(1, 1), partition=1)
    assert idle_checks(engine.process(unrelated(2, 120), partition=0)) == []
    assert idle_checks(engine.process(unrelated(3, 89), partition=1)) == []
    assert idle_checks(engine.process(unrelated(4, 90), partition=1)) == [IDLE]


def test_a_partition_not_read_yet_holds_the_clock_until_it_is_idle(engine: Engine) -> None:
    engine.assign([0, 1, 2])
    engine.process(sc.enriched(TRANSFER), partition=0)
    engine.process(unrelated(1, 100), partition=1)
    assert engine.state.clock.watermark is None  # partition 2 may still hold anything
    assert idle_checks(engine.process(unrelated(2, 101), partition=0)) == []
    # Partition 2 has nothing to read (the adapter says so): it no longer holds the clock back.
    assert idle_checks(engine.assign([0, 1, 2], idle=[2])) == [IDLE]
    assert engine.state.clock.watermark == parse_time(at(100))


def test_the_watermark_never_moves_backwards() -> None:
    clock = EventClock()
    clock.assign([0, 1])
    clock.observe(START, 0)
    assert clock.observe(START + timedelta(days=5), 1) and clock.watermark == START
    clock.observe(START + timedelta(days=9), 0)
    assert clock.watermark == START + timedelta(days=5)
    clock.assign([0, 1, 2])  # a rebalance hands over a partition not read yet
    clock.observe(START + timedelta(days=2), 2)
    assert clock.watermark == START + timedelta(days=5)


def test_partition_clocks_survive_a_restart(packs: Any) -> None:
    first = Engine(packs)
    first.assign([0, 1])
    first.process(sc.enriched(TRANSFER), partition=0)
    first.process(unrelated(1, 120), partition=0)
    first.process(unrelated(2, 30), partition=1)
    saved_timers = [t for t in first.state.timers.drain() if t.status == "pending"]
    saved_clocks, saved_watermark = first.state.clock.drain(), first.state.clock.watermark
    assert saved_clocks == {0: parse_time(at(120)), 1: parse_time(at(30))} and first.state.clock.drain() == {}
    state = EngineState()
    state.timers.load(saved_timers)
    state.clock.restore(saved_watermark, saved_clocks)
    second = Engine(packs, state)
    assert idle_checks(second.assign([0, 1])) == []
    assert second.state.clock.watermark == parse_time(at(30))
    assert idle_checks(second.process(unrelated(3, 95), partition=1)) == [IDLE]


def test_a_late_outflow_refutes_an_idle_funds_check(engine: Engine) -> None:
    engine.process(sc.enriched(TRANSFER))
    fired = engine.process(unrelated(1, 120)).violations
    assert [v.rule_id for v in fired] == [IDLE]
    out = engine.process(outflow(2, 40))  # dated before the due time, read after the check fired
    assert [r.violation_id for r in out.resolutions] == [fired[0].violation_id]


def test_a_newer_position_state_read_before_the_transfer_is_what_the_check_sees(engine: Engine) -> None:
    # fund-tracker recorded the transfer (sequence 1) and then the town's payment (sequence 2); the
    # payment's partition is read first. The idle check must judge the newer state, not the transfer's.
    engine.assign([0, 1])
    spent = outflow(1, 40)
    spent["sequence"] = 2
    engine.process(spent, partition=1)
    engine.process(sc.enriched(TRANSFER, sequence=1), partition=0)
    engine.process(unrelated(2, 120), partition=0)
    out = engine.process(unrelated(3, 121), partition=1)
    assert engine.state.timers.pending == {}
    assert idle_checks(out) == []


def test_an_older_position_state_read_late_does_not_replace_a_newer_one(engine: Engine) -> None:
    engine.assign([0])
    engine.process(sc.enriched(TRANSFER, sequence=1), partition=0)
    spent = outflow(1, 40)
    spent["sequence"] = 3
    engine.process(spent, partition=0)
    stale = sc.enriched(sc.variant(G["BudgetAdjusted"], 2, occurred_at=at(41), published_at=at(41)), sequence=2)
    _, after = sc.normal_states(TRANSFER)
    stale["after"]["counterparty"] = after["counterparty"]  # received, nothing spent: older than the payment
    engine.process(stale, partition=0)
    (timer,) = engine.state.timers.pending.values()
    assert timer.snapshot["paid_fen"] == 37_200_000


# --- reference data read after the events it judges ---------------------------------------------

VENDOR = G["ProcurementAwarded"]["winner_vendor_id"]


def award(n: int) -> dict[str, Any]:
    return sc.enriched(sc.variant(G["ProcurementAwarded"], n))


def reference(event_type: str, n: int, **changes: Any) -> dict[str, Any]:
    return sc.enriched(sc.variant(G[event_type], n, vendor_id=VENDOR, **changes))


def test_a_debarment_read_after_the_award_judges_it_as_if_read_first(packs: Any) -> None:
    debarment, judged = reference("VendorDebarred", 1), award(1)
    ordered = Engine(packs)
    ordered.process(debarment)
    expected = [v for v in ordered.process(judged).violations if v.rule_id == "discipline.debarred_vendor"]
    assert len(expected) == 1
    bulk = Engine(packs)
    assert "discipline.debarred_vendor" not in {v.rule_id for v in bulk.process(judged).violations}
    late = [v for v in bulk.process(debarment).violations if v.rule_id == "discipline.debarred_vendor"]
    assert [v.model_dump() for v in late] == [v.model_dump() for v in expected]
    # Judged once: more reference data about the vendor raises nothing again.
    assert bulk.process(reference("VendorRegistered", 2)).violations == []


@pytest.mark.parametrize("event_type", ["ProcurementAwarded", "ContractSigned", "PaymentDisbursed"])
@pytest.mark.parametrize("keep", ["record", "document"])
def test_every_event_a_reference_rule_judges_is_judged_again_when_the_debarment_is_read_late(
    packs: Any, event_type: str, keep: str
) -> None:
    judged = sc.enriched(sc.variant(G[event_type], 1))
    assert event_vendor(judged["event"]) == VENDOR
    debarment = reference("VendorDebarred", 1)
    ordered = Engine(packs)
    ordered.process(debarment)
    expected = [v for v in ordered.process(judged).violations if v.rule_id == "discipline.debarred_vendor"]
    assert len(expected) == 1
    bulk = Engine(packs)
    raw = orjson.dumps(judged) if keep == "record" else None
    assert "discipline.debarred_vendor" not in {v.rule_id for v in bulk.process(judged, raw=raw).violations}
    (day,) = bulk.state.judged[VENDOR].values()
    assert isinstance(day.events[judged["event"]["event_id"]].doc, bytes if raw else dict)
    late = [v for v in bulk.process(debarment).violations if v.rule_id == "discipline.debarred_vendor"]
    assert [v.model_dump() for v in late] == [v.model_dump() for v in expected]


def test_a_relation_declared_late_is_found_for_a_payment(engine: Engine) -> None:
    pay = sc.enriched(sc.variant(G["PaymentDisbursed"], 1))
    engine.process(pay, raw=orjson.dumps(pay))
    out = engine.process(reference("RelationDeclared", 1, official_id=pay["event"]["approver_id"]))
    assert [v.rule_id for v in out.violations] == ["inspection.related_vendor"]
    assert str(out.violations[0].triggering_event_id) == pay["event"]["event_id"]


def test_a_relation_declared_late_is_found(engine: Engine) -> None:
    engine.process(award(1))
    out = engine.process(reference("RelationDeclared", 1, official_id="OFF-440705101-01"))
    assert [v.rule_id for v in out.violations] == ["inspection.related_vendor"]
    assert str(out.violations[0].triggering_event_id) == award(1)["event"]["event_id"]


def test_reference_data_after_the_grace_period_judges_nothing_again(engine: Engine) -> None:
    judged = award(1)
    engine.process(judged)
    later = sc.shift(judged["event"]["occurred_at"], days=16)  # the grace period is 15 days
    engine.process(sc.enriched(sc.variant(G["VendorRegistered"], 9, occurred_at=later, published_at=later),
                               sc.ledger(), sc.ledger()))
    assert engine.state.judged == {}
    assert engine.process(reference("VendorDebarred", 1)).violations == []


def test_what_is_judged_and_raised_later_is_handed_to_the_store_once_per_batch(engine: Engine) -> None:
    pay = sc.enriched(sc.variant(G["PaymentDisbursed"], 1))
    eid = pay["event"]["event_id"]
    engine.process(pay, raw=orjson.dumps(pay))
    (changed,), kept_from = engine.state.drain_judged()
    assert changed[2] == eid and changed[3].doc == orjson.dumps(pay) and kept_from is not None
    assert engine.state.drain_judged() == ([], None)
    out = engine.process(reference("RelationDeclared", 1, official_id=pay["event"]["approver_id"]))
    ((_, _, again, j),), _ = engine.state.drain_judged()
    assert again == eid and out.violations[0].violation_id in j.raised
