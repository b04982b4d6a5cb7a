"""Window rules judged in event time, in one process or through the repartition hop (windowing.py).

Cross-fund windows (an owner's awards to a vendor, a payee's payments) are judged by the replica
owning the window: the events of one window reach it in whatever order the replicas judging their
funds sent them, so the verdicts must not depend on that order.
"""

from __future__ import annotations

import itertools
import random
from datetime import timedelta
from typing import Any

import pytest

from fundtrail_compliance import scenario as sc
from fundtrail_compliance.core.engine import Engine
from fundtrail_compliance.core.evaluator import PackSet
from fundtrail_compliance.windowing import decode_routed, routed_records, window_key
from fundtrail_schemas.topics import COMPLIANCE_WINDOWS

G = sc.golden()
AWARD, PAY = G["ProcurementAwarded"], G["PaymentDisbursed"]
WINDOW_RULES = {"trading.split_purchase", "trading.split_tender", "finance.similar_payment_review"}


def award(n: int, days: int, amount_fen: int, fund: str) -> dict[str, Any]:
    """A construction award without a tender by the golden owner to the golden vendor, on a fund of its own."""
    ev = sc.variant(AWARD, n, amount_fen=amount_fen, method="inquiry", procurement_category="construction",
                    platform_ref=None, fund_doc_no=fund, occurred_at=sc.shift(AWARD["occurred_at"], days=days),
                    published_at=sc.shift(AWARD["published_at"], days=days))
    return sc.enriched(ev)


def payment(n: int, days: int, amount_fen: int) -> dict[str, Any]:
    ev = sc.variant(PAY, n, amount_fen=amount_fen, payment_kind="progress",
                    occurred_at=sc.shift(PAY["occurred_at"], days=days),
                    published_at=sc.shift(PAY["published_at"], days=days))
    nb, na = sc.normal_states(ev)
    return sc.enriched(ev, nb, na)


def window_docs() -> list[dict[str, Any]]:
    """Five awards (three funds) forming split purchases and a split tender, and three similar
    payments to one payee, in date order."""
    return [
        award(1, 0, 150_000_000, "粤财农〔2026〕1号"),
        award(2, 20, 150_000_000, "粤财农〔2026〕2号"),
        award(3, 40, 150_000_000, "粤财农〔2026〕3号"),
        award(4, 70, 6_000_000, "粤财农〔2026〕1号"),
        award(5, 80, 6_000_000, "粤财农〔2026〕2号"),
        payment(1, 1, 1_000_000),
        payment(2, 5, 1_004_000),
        payment(3, 9, 996_000),
    ]


def verdicts(engine: Engine, docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for d in docs:
        got = engine.process(d)
        assert not got.errors, got.errors
        out |= {(v.rule_id, str(v.violation_id)) for v in got.violations if v.rule_id in WINDOW_RULES}
    return out


def test_window_verdicts_do_not_depend_on_arrival_order(packs: PackSet) -> None:
    docs = window_docs()
    in_order = verdicts(Engine(packs), docs)
    assert {r for r, _ in in_order} == WINDOW_RULES  # every window rule fires on these
    # Late by any amount (a grace period longer than the events' span): the rules alone must make it so.
    grace = timedelta(days=400)
    awards, payments = docs[:5], docs[5:]
    orders = [[*a, *payments] for a in itertools.permutations(awards)]
    orders += [[*awards, *p] for p in itertools.permutations(payments)]
    shuffle = random.Random(18)
    for _ in range(40):
        orders.append(shuffle.sample(docs, len(docs)))
    for order in orders:
        assert verdicts(Engine(packs, grace=grace), order) == in_order, [d["event"]["event_id"] for d in order]


def route(sender: Engine, owner: Engine, docs: list[dict[str, Any]], *, twice: bool = False) -> set[tuple[str, str]]:
    """Judge through the hop: the sender routes windowed events, the owner judges the records."""
    out: set[tuple[str, str]] = set()
    for d in docs:
        got = sender.process(d)
        assert not got.errors, got.errors
        assert not {v.rule_id for v in got.violations} & WINDOW_RULES  # judged by the owner only
        for rec in routed_records(got.routed, []):
            assert rec.topic == COMPLIANCE_WINDOWS
            for _ in range(2 if twice else 1):
                routed, raw = decode_routed(rec.value)
                assert rec.key == window_key(routed.rule_id, routed.key)
                judged = owner.judge_window(routed, raw)
                assert not judged.errors, judged.errors
                out |= {(v.rule_id, str(v.violation_id)) for v in judged.violations}
    return out


def test_routed_windows_judge_as_one_process(packs: PackSet) -> None:
    docs = window_docs()
    in_process = verdicts(Engine(packs), docs)
    assert route(Engine(packs, route_windows=True), Engine(packs, owns_windows=True), docs) == in_process
    # Arriving in the reverse order (within the grace period), each record delivered twice.
    grace = timedelta(days=100)
    reversed_docs = list(reversed(docs))
    owner = Engine(packs, owns_windows=True, grace=grace)
    assert route(Engine(packs, route_windows=True, grace=grace), owner, reversed_docs, twice=True) == in_process


def test_a_redelivered_record_raises_nothing_again(packs: PackSet) -> None:
    sender, owner = Engine(packs, route_windows=True), Engine(packs, owns_windows=True)
    docs = window_docs()[3:5]  # two small awards: a split purchase
    routed = [r for d in docs for r in sender.process(d).routed]
    first = [v for r in routed for v in owner.judge_window(r).violations]
    again = [v for r in routed for v in owner.judge_window(r).violations]
    assert first and again == []


@pytest.mark.parametrize("value", [None, b"", b"{", b"[]", b'{"rule_id": "x", "key": [], "amount_fen": 1}',
                                   b'{"rule_id": "x", "key": [], "amount_fen": 1, "doc": {"event": {}}}'])
def test_a_record_that_is_not_a_routed_window_event_is_refused(value: bytes | None) -> None:
    with pytest.raises(ValueError, match="record"):
        decode_routed(value)
