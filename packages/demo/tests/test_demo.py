"""The demo generator: deterministic, valid, time-ordered, money-consistent, and it seeds exactly its manifest."""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from functools import cache

import pytest
from typer.testing import CliRunner

from fundtrail_demo import DemoDataset, generate
from fundtrail_demo.cli import demo_app
from fundtrail_demo.output import write_csv, write_jsonl
from fundtrail_demo.scenarios import NOT_SEEDED
from fundtrail_schemas.catalogue import RULE_IDS
from fundtrail_schemas.decode import decode_event
from fundtrail_schemas.events import (
    Envelope,
    FundAllocated,
    FundReturned,
    FundTransferred,
    PaymentDisbursed,
)
from fundtrail_schemas.regions import counties, full_name, is_known, towns, villages
from fundtrail_schemas.tabular import map_file
from fundtrail_schemas.types import level_of_region


@cache
def _events(seed: int, size: float) -> tuple[Envelope, ...]:
    return tuple(generate(seed, size).events)


@cache
def _dataset(seed: int, size: float) -> DemoDataset:
    ds = generate(seed, size)
    for _ in ds.events:
        pass
    return ds


def _jsonl(seed: int, size: float) -> bytes:
    out = io.StringIO()
    write_jsonl(generate(seed, size).events, out)
    return out.getvalue().encode()


def test_region_registry_is_jiangmen() -> None:
    assert [c.code for c in counties()] == ["440703", "440704", "440705", "440781", "440783", "440784", "440785"]
    assert len(towns()) == 73
    assert 900 <= sum(len(villages(t.code)) for t in towns()) <= 1100
    assert full_name("440705101") == "江门市新会区大泽镇"
    assert all(level_of_region(v.code).value == "village" for v in villages("440781101"))


def test_same_seed_gives_identical_bytes_and_another_seed_differs() -> None:
    first = _jsonl(11, 0.1)
    assert first == _jsonl(11, 0.1)
    assert first != _jsonl(12, 0.1)
    assert generate(11, 0.1).manifest() == generate(11, 0.1).manifest()


def test_every_event_is_a_valid_source_event_in_wire_form() -> None:
    lines = _jsonl(3, 0.1).splitlines()
    decoded = [decode_event(line, source_only=True) for line in lines]
    bad = [d for d in decoded if not isinstance(d, Envelope)]
    assert not bad, bad[:3]
    assert len(decoded) == generate(3, 0.1).summary()["events"]
    assert all(is_known(e.region_code) for e in decoded)  # type: ignore[union-attr]


@pytest.mark.parametrize("size", [0.05, 0.1, 1.0])
def test_every_catalogue_rule_is_seeded(size: float) -> None:
    ds = generate(5, size)
    seeded = Counter(e.rule_id for e in ds.expected)
    assert set(seeded) == RULE_IDS - NOT_SEEDED
    if size >= 1.0:
        assert min(seeded.values()) >= 3
    assert {r for c in ds.clean for r in c.rule_ids} <= RULE_IDS
    assert len(ds.clean) >= 25


def test_event_counts_scale_linearly_with_size() -> None:
    events = {s: generate(9, s).summary()["events"] for s in (0.1, 0.5, 1.0, 2.0)}
    assert events[0.1] < events[0.5] < events[1.0] < events[2.0]
    assert 3_000 <= events[1.0] <= 15_000
    assert 1.7 <= events[2.0] / events[1.0] <= 2.3
    funds = generate(9, 2.0).summary()["funds"]
    assert funds == 100


def test_events_are_in_occurred_time_order_within_the_year() -> None:
    events = _events(4, 0.3)
    times = [e.occurred_at for e in events]
    assert times == sorted(times), "the stream is globally time-ordered (event-time timers rely on it)"
    per_fund: dict[str, list[datetime]] = defaultdict(list)
    for e in events:
        if e.fund_doc_no:
            per_fund[e.fund_doc_no].append(e.occurred_at)
    assert all(ts == sorted(ts) for ts in per_fund.values())
    assert datetime(2025, 1, 1, tzinfo=UTC) <= times[0] and times[-1] < datetime(2026, 1, 1, tzinfo=UTC)
    assert all(e.published_at > e.occurred_at for e in events)


def test_ids_are_unique() -> None:
    events = _events(4, 0.3)
    assert len({e.event_id for e in events}) == len(events)
    payments = [e for e in events if isinstance(e, PaymentDisbursed)]
    assert len({p.payment_id for p in payments}) == len(payments)
    dup_invoice = {e.triggering_event_id for e in generate(4, 0.3).expected if e.rule_id == "finance.duplicate_invoice"}
    invoices = Counter(p.invoice_no for p in payments if p.event_id not in dup_invoice)
    assert invoices.most_common(1)[0][1] == 1


def test_clean_positions_never_go_negative_and_funds_never_overspend() -> None:
    ds = _dataset(6, 0.3)
    seeded_overspend = {e.triggering_event_id for e in ds.expected
                        if e.rule_id in ("audit.paid_exceeds_received", "audit.transfer_exceeds_received")}
    balance: dict[tuple[str, str], int] = defaultdict(int)
    broken: set[tuple[str, str]] = set()
    negative_clean = []
    for e in _events(6, 0.3):
        if isinstance(e, FundAllocated):
            balance[(e.fund_doc_no, e.recipient_region_code)] += e.amount_fen
        elif isinstance(e, FundTransferred | FundReturned):
            balance[(e.fund_doc_no, e.to_region_code)] += e.amount_fen
        if isinstance(e, FundTransferred | FundReturned | PaymentDisbursed):
            key = (e.fund_doc_no, e.region_code)
            balance[key] -= e.amount_fen
            if e.event_id in seeded_overspend:
                broken.add(key)
            if balance[key] < 0 and key not in broken:
                negative_clean.append((key, e.event_type, e.event_id))
    assert not negative_clean
    assert broken, "the seeded overspending scenarios exist"
    allocated: Counter[str] = Counter()
    paid: Counter[str] = Counter()
    for e in _events(6, 0.3):
        if isinstance(e, FundAllocated):
            allocated[e.fund_doc_no] += e.amount_fen
        elif isinstance(e, PaymentDisbursed):
            paid[e.fund_doc_no] += e.amount_fen
    broken_funds = {f for f, _ in broken}
    assert all(paid[f] <= allocated[f] for f in allocated if f not in broken_funds)


def test_idle_violations_are_due_before_the_year_ends() -> None:
    ds = _dataset(7, 1.0)
    last = _events(7, 1.0)[-1].occurred_at
    idle = [e for e in ds.expected if e.rule_id == "audit.idle_funds"]
    assert idle and all(e.due_at is not None and e.occurred_at < e.due_at < last for e in idle)
    assert all(e.due_at is None for e in ds.expected if e.rule_id != "audit.idle_funds")


def test_csv_output_reads_back_through_the_publisher_mapping() -> None:
    events = _events(8, 0.05)
    out = io.StringIO()
    assert write_csv(events, out) == len(events)
    report = map_file(out.getvalue().encode(), "csv", published_at=datetime(2027, 1, 1, tzinfo=UTC))
    assert report.ok, report.errors[:3]
    assert [r.event for r in report.rows] == list(events)


def test_cli_writes_events_and_manifest(tmp_path) -> None:
    out, manifest = tmp_path / "demo.jsonl", tmp_path / "expected.json"
    result = CliRunner().invoke(demo_app, ["--seed", "2", "--size", "0.05", "--out", str(out),
                                      "--expected", str(manifest)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == _jsonl(2, 0.05)
    data = json.loads(manifest.read_text(encoding="utf-8"))
    assert {v["rule_id"] for v in data["expected_violations"]} == RULE_IDS - NOT_SEEDED
    assert data["summary"]["events"] == len(out.read_bytes().splitlines())
    ids = {json.loads(line)["event_id"] for line in out.read_bytes().splitlines()}
    assert {v["triggering_event_id"] for v in data["expected_violations"]} <= ids
    csv_out = tmp_path / "demo.csv"
    result = CliRunner().invoke(demo_app, ["--seed", "2", "--size", "0.05", "--out", str(csv_out),
                                      "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert len(csv_out.read_text(encoding="utf-8").splitlines()) == data["summary"]["events"] + 1


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        generate(1, 0)
