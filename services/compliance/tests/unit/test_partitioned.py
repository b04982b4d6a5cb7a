"""The partitioned replay (one process per group of partitions, one for the window rules) gives the
serial replay's verdicts: same violation ids, rule versions and content."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import orjson
import pytest

from fundtrail_compliance.adapters.kafka import partition_of
from fundtrail_compliance.bench import synthetic_docs
from fundtrail_compliance.core.reference import REFERENCE_TYPES
from fundtrail_compliance.packs import load_dir
from fundtrail_compliance.partitioned import NotPartitionedByFund, evaluate_partitioned, window_types
from fundtrail_compliance.replay import evaluate
from fundtrail_compliance.settings import DEFAULT_RULEPACK_DIR

GRACE = timedelta(days=15)
PARTITIONS = 6


def _log(n: int, funds: int) -> list[tuple[int, bytes]]:
    """A log as fund-tracker writes it: keyed by fund (reference data by vendor), in sequence order."""
    out = []
    for i, doc in enumerate(synthetic_docs(n, seed=5, funds=funds)):
        ev = doc["event"]
        if ev["event_type"] == "PaymentDisbursed" and i % 40 == 0:
            ev.update(account_kind="personal", amount_fen=9_000_000)  # a plain rule fires
        key = f"vendor:{ev['vendor_id']}" if ev["event_type"] in REFERENCE_TYPES else ev["fund_doc_no"]
        out.append((partition_of(key.encode(), PARTITIONS), orjson.dumps(doc)))
    return out


def _dumped(res):
    return {k: v.model_dump_json() for k, v in res.violations.items()}


@pytest.fixture(scope="module")
def packs():
    return load_dir(DEFAULT_RULEPACK_DIR)[1]


def test_window_rules_of_the_shipped_packs_can_be_judged_apart(packs) -> None:
    assert window_types(packs) == {"PaymentDisbursed", "ProcurementAwarded"}


@pytest.mark.parametrize("workers", [1, 3])
def test_partitioned_replay_gives_the_serial_verdicts(packs, workers) -> None:
    log = _log(6000, funds=40)
    serial = evaluate((v for _, v in log), packs, start=None, end=None, grace=GRACE)
    par = evaluate_partitioned(iter(log), packs, DEFAULT_RULEPACK_DIR, start=None, end=None, grace=GRACE,
                               workers=workers)
    by_rule = Counter(k[0] for k in serial.violations)
    # The log exercises what crosses partitions: windows over several funds, timers on the shared
    # clock, reference data judged late, and funds whose events arrive out of date order.
    windowed = {"finance.similar_payment_review", "trading.split_purchase", "trading.split_tender"}
    assert sum(by_rule[r] for r in windowed) > 0, by_rule
    assert by_rule["audit.idle_funds"] > 0, by_rule
    assert by_rule["finance.personal_account_payment"] > 0, by_rule
    assert _dumped(par) == _dumped(serial)
    assert (par.events, par.duplicates, par.undecodable, par.errors) == (
        serial.events, serial.duplicates, serial.undecodable, serial.errors)
    # Windows really crossed funds: some window violation names events of other funds.
    assert any(len(set(v.evidence.event_ids)) > 1 for (r, _), v in serial.violations.items() if r in windowed)


def test_a_log_not_keyed_by_fund_is_refused(packs) -> None:
    log = [(i % PARTITIONS, v) for i, (_, v) in enumerate(_log(300, funds=2))]
    with pytest.raises(NotPartitionedByFund):
        evaluate_partitioned(iter(log), packs, DEFAULT_RULEPACK_DIR, start=None, end=None, grace=GRACE, workers=2)
