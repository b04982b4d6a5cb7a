"""The store against real PostgreSQL: a batch's state written in one statement per table comes back
whole after a restart, and the upserts keep their rules (a fired timer stays fired, a clock never
moves back)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from fundtrail_compliance import scenario as sc
from fundtrail_compliance.adapters.kafka import partition_of
from fundtrail_compliance.adapters.postgres import ComplianceStore, conninfo
from fundtrail_compliance.core.engine import Engine, EngineState
from fundtrail_compliance.core.evaluator import PackSet
from fundtrail_compliance.core.reference import event_vendor

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def _batch(engine: Engine) -> tuple[list[tuple[uuid.UUID, int]], list]:
    """Golden events that leave every kind of state: reference data, a timer, window entries, a
    refutable violation (a payment without contract) and a plain one."""
    g = sc.golden()
    pay = sc.variant(g["PaymentDisbursed"], 1, handler_id=g["PaymentDisbursed"]["approver_id"])
    before, _ = sc.normal_states(pay)
    docs = [
        sc.enriched(g["VendorRegistered"]),
        sc.enriched(g["FundTransferred"]),
        sc.enriched(g["ProcurementAwarded"]),
        sc.enriched(pay, before={**before, "contract": None}),
    ]
    processed, violations = [], []
    for n, doc in enumerate(docs):
        out = engine.process(doc, partition=n % 2)
        violations += out.violations
        processed.append((uuid.UUID(doc["event"]["event_id"]), len(out.violations)))
    return processed, violations


async def _write(url: str, processed, violations, state: EngineState) -> None:
    store = ComplianceStore(url)
    try:
        async with store.pipelined_transaction() as (cur, _):
            await store.write_batch(cur, processed, violations, state, NOW)
    finally:
        await store.close()


async def _load(url: str) -> EngineState:
    state = EngineState()
    store = ComplianceStore(url)
    try:
        await store.load_state(state)
    finally:
        await store.close()
    return state


async def test_a_batch_written_as_arrays_comes_back_after_a_restart(packs: PackSet, migrated_database_url: str) -> None:
    url = migrated_database_url
    engine = Engine(packs)
    processed, violations = _batch(engine)
    st = engine.state
    assert st.timers.pending and st.windows.entries and st.refutables and len(violations) >= 2
    await _write(url, processed, violations, st)

    loaded = await _load(url)
    assert {tid: (t.due_at, t.snapshot, t.status) for tid, t in loaded.timers.pending.items()} == {
        tid: (t.due_at, t.snapshot, t.status) for tid, t in st.timers.pending.items()
    }
    assert {k: dict(b.ids) for k, b in loaded.windows.entries.items()} == {
        k: dict(b.ids) for k, b in st.windows.entries.items()
    }
    assert {f: set(b) for f, b in loaded.refutables.items()} == {f: set(b) for f, b in st.refutables.items()}
    vendor = sc.golden()["VendorRegistered"]["vendor_id"]
    on = NOW.date()
    assert loaded.reference.vendor_view(vendor, on) == st.reference.vendor_view(vendor, on)
    assert loaded.clock.watermark == st.clock.watermark

    with psycopg.connect(conninfo(url)) as conn:
        rows = conn.execute("SELECT violation_id, status, payload, evidence FROM violation").fetchall()
        assert {r[0]: (r[1], r[2], r[3]) for r in rows} == {
            v.violation_id: ("raised", v.model_dump(mode="json"), v.evidence.model_dump(mode="json"))
            for v in violations
        }
        assert dict(conn.execute("SELECT event_id, violations FROM compliance_processed").fetchall()) == dict(processed)

    # The timer fires; a stale copy of it written later as pending (an older batch retried) stays fired.
    later = st.clock.watermark + timedelta(days=400)
    for partition in (0, 1):  # the watermark is the slowest partition's clock
        engine.advance(later, partition)
    fired = dict(st.timers.dirty)  # written by the next batch
    assert fired and {t.status for t in fired.values()} == {"fired"}
    await _write(url, [], [], st)
    stale = EngineState()
    for t in fired.values():
        stale.timers.schedule(t.__class__(**{**t.__dict__, "status": "pending", "snapshot": {"stale": True}}))
    stale.clock.observe(datetime(2020, 1, 1, tzinfo=UTC), partition=0)  # a clock behind the stored one
    await _write(url, [], [], stale)
    with psycopg.connect(conninfo(url)) as conn:
        timers = conn.execute("SELECT timer_id, status, snapshot FROM compliance_timer").fetchall()
        assert {r[0]: r[1] for r in timers} == {tid: "fired" for tid in fired}
        assert all(r[2] == {"stale": True} for r in timers)  # the snapshot is the latest written
        clocks = dict(conn.execute("SELECT name, at FROM compliance_watermark").fetchall())
    assert "event_time" not in clocks  # a watermark saved per replica would be a maximum over them
    assert clocks["partition/0"] > datetime(2020, 1, 1, tzinfo=UTC)
    restored = await _load(url)
    assert restored.timers.pending == {}
    assert restored.clock.watermark == min(clocks["partition/0"], clocks["partition/1"]) == st.clock.watermark


async def test_a_worker_loads_only_the_funds_and_clocks_of_the_partitions_it_owns(
    packs: PackSet, migrated_database_url: str
) -> None:
    url = migrated_database_url
    engine = Engine(packs)
    processed, violations = _batch(engine)
    st = engine.state
    await _write(url, processed, violations, st)
    fund = next(iter(st.timers.pending.values())).fund_doc_no
    assert set(st.refutables) == {fund}
    mine = partition_of(fund.encode(), 6)
    clocks = dict(st.clock.partitions)

    async def load(owned: set[int]) -> EngineState:
        state = EngineState()
        store = ComplianceStore(url)
        try:
            await store.load_state(state, owned, lambda f: partition_of(f.encode(), 6) in owned)
        finally:
            await store.close()
        return state

    owner, other = await load({mine}), await load(set(range(6)) - {mine})
    assert set(owner.timers.pending) == set(st.timers.pending) and set(owner.refutables) == {fund}
    assert not other.timers.pending and not other.refutables  # the owner fires and refutes them
    assert owner.clock.watermark == clocks.get(mine)  # its own partitions' clocks, nobody else's
    assert other.clock.watermark is None or other.clock.watermark == min(
        at for p, at in clocks.items() if p != mine)
    for state in (owner, other):  # cross-fund state is read whole by every worker
        assert {k: dict(b.ids) for k, b in state.windows.entries.items()} == {
            k: dict(b.ids) for k, b in st.windows.entries.items()
        }


async def test_events_judged_before_a_restart_are_judged_again_by_reference_data_read_after_it(
    packs: PackSet, migrated_database_url: str
) -> None:
    url = migrated_database_url
    g = sc.golden()
    pay = sc.enriched(sc.variant(g["PaymentDisbursed"], 1))
    vendor = str(event_vendor(pay["event"]))
    debarment = sc.enriched(sc.variant(g["VendorDebarred"], 1, vendor_id=vendor))
    rule = "discipline.debarred_vendor"
    ordered = Engine(packs)
    ordered.process(debarment)
    expected = [v for v in ordered.process(pay).violations if v.rule_id == rule]
    assert len(expected) == 1

    first = Engine(packs)
    out = first.process(pay, raw=orjson.dumps(pay))
    assert rule not in {v.rule_id for v in out.violations}
    await _write(url, [(uuid.UUID(pay["event"]["event_id"]), len(out.violations))], out.violations, first.state)

    # Restarted: the debarment read now judges the payment again, as if it had been read first.
    second = Engine(packs, await _load(url))
    late = second.process(debarment)
    assert [v.model_dump() for v in late.violations] == [v.model_dump() for v in expected]
    await _write(url, [(uuid.UUID(debarment["event"]["event_id"]), len(late.violations))], late.violations,
                 second.state)
    with psycopg.connect(conninfo(url)) as conn:
        (raised,) = conn.execute("SELECT raised FROM compliance_judged").fetchone()  # type: ignore[misc]
    assert expected[0].violation_id in raised

    # Restarted again: what was raised is remembered, so more reference data raises nothing twice.
    third = Engine(packs, await _load(url))
    assert third.process(sc.enriched(sc.variant(g["VendorRegistered"], 2, vendor_id=vendor))).violations == []

    # Past the grace period the judged rows are deleted with the batch that moved the clock there.
    later = sc.shift(pay["event"]["occurred_at"], days=16)
    third.process(sc.enriched(sc.variant(g["VendorRegistered"], 9, occurred_at=later, published_at=later),
                              sc.ledger(), sc.ledger()))
    assert third.state.judged == {}
    await _write(url, [], [], third.state)
    with psycopg.connect(conninfo(url)) as conn:
        assert conn.execute("SELECT count(*) FROM compliance_judged").fetchone() == (0,)
    assert (await _load(url)).judged == {}


async def test_reference_data_another_replica_read_re_judges_what_this_one_judged(
    packs: PackSet, migrated_database_url: str
) -> None:
    """Two replicas over one database: A reads a debarment, B has judged a payment to that vendor.
    B's next batch reads what A committed and raises what an ordered load raises, once."""
    url = migrated_database_url
    g = sc.golden()
    pay = sc.enriched(sc.variant(g["PaymentDisbursed"], 3))
    vendor = str(event_vendor(pay["event"]))
    debarment = sc.enriched(sc.variant(g["VendorDebarred"], 3, vendor_id=vendor))
    rule = "discipline.debarred_vendor"
    ordered = Engine(packs)
    ordered.process(debarment)
    expected = [v.model_dump() for v in ordered.process(pay).violations if v.rule_id == rule]
    assert len(expected) == 1

    store_a, store_b = ComplianceStore(url), ComplianceStore(url)
    try:
        a, b = Engine(packs, EngineState()), Engine(packs, EngineState())
        await store_a.load_state(a.state)
        await store_b.load_state(b.state)
        judged = b.process(pay, raw=orjson.dumps(pay))
        assert rule not in {v.rule_id for v in judged.violations}
        async with store_b.pipelined_transaction() as (cur, _):
            await store_b.write_batch(cur, [(uuid.UUID(pay["event"]["event_id"]), 1)], judged.violations, b.state, NOW)
        read = a.process(debarment)
        assert read.violations == []  # A never judged the payment
        async with store_a.pipelined_transaction() as (cur, _):
            await store_a.write_batch(cur, [(uuid.UUID(debarment["event"]["event_id"]), 0)], [], a.state, NOW)

        raised = []
        for _ in range(2):  # the second look finds nothing new to raise
            async with store_b.pipelined_transaction() as (cur, _):
                shared = await store_b.reference_since()
                for rec in await shared():
                    raised += b.apply_reference(rec).violations
        assert [v.model_dump() for v in raised] == expected
    finally:
        await store_a.close()
        await store_b.close()
