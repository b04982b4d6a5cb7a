"""Benchmark: evaluation throughput of the pure core and replay speed, against a raw pass-through.

`run(bootstrap)` returns a dict of numbers measured in one run; ratios compare each stage with a
pass-through of the same records (decode + encode only) measured in the same run. The replay reads
`replay_events` records (1,000,000 by default) from a real topic three times: the pass-through,
the serial replay (one process) and the partitioned one `fundtrail replay` runs on two cores
(`partitioned.py`); both replays must give the same violations. The replay's records are spread over
`replay_funds` funds and keyed as fund-tracker keys them (by fund, reference data by vendor).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from fundtrail_schemas.eventspec import bureau_specs
from fundtrail_schemas.kafka_security import client_security
from fundtrail_schemas.topics import ENRICHED_EVENTS

from . import scenario as sc
from .core.engine import Engine
from .core.evaluator import PackSet
from .core.reference import REFERENCE_TYPES
from .packs import load_dir
from .settings import DEFAULT_RULEPACK_DIR

# A month-end-like mix of every type bureaus publish: payments dominate (DOMAIN.md: tens of
# thousands of payments a year). The weights are the event-type registry's.
MIX = tuple((s.name, s.mix_weight) for s in bureau_specs())


def synthetic_docs(n: int, seed: int = 7, funds: int = 1) -> Iterator[dict[str, Any]]:
    """`n` enriched documents over a year: varied ids, amounts, payees, people and dates, spread over
    `funds` funds (the owners and payees windows judge are shared between them)."""
    rng = random.Random(seed)
    golden = sc.golden()
    types = [t for t, _ in MIX]
    weights = [w for _, w in MIX]
    base: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {}
    for t in types:
        before, after = sc.normal_states(golden[t])
        base[t] = (golden[t], before, after)
    # After the golden approval and contract dates the states carry: rules compare those dates
    # with the event's (event time), so a payment dated before them would be a violation.
    # Dates rise with the log (jittered within each step): the states below are copies of one
    # golden pair, not a running ledger, so events read out of date order would make the fund book
    # (core/book.py) rebuild sums from them that no real ledger has (and raise on them).
    start = datetime(2026, 5, 4, 1, 30, tzinfo=UTC)
    step = 86400 * 360 / max(n, 1)
    for i in range(n):
        t = rng.choices(types, weights)[0]
        ev0, before0, after0 = base[t]
        ev = dict(ev0)
        at = start + timedelta(seconds=int(i * step) + rng.randint(0, max(int(step) - 1, 0)))
        ev["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        ev["occurred_at"] = at.isoformat().replace("+00:00", "Z")
        ev["published_at"] = (at + timedelta(minutes=3)).isoformat().replace("+00:00", "Z")
        before, after = orjson.loads(orjson.dumps(before0)), orjson.loads(orjson.dumps(after0))  # deep copies, fast
        if t == "PaymentDisbursed":
            amount = rng.randint(10_000, 30_000_000)
            ev.update(
                payment_id=f"ZF-{i:08d}", invoice_no=f"INV{i:010d}", amount_fen=amount,
                payee_account=f"6222-{rng.randint(0, 4999):04d}", handler_id=f"STAFF-{rng.randint(1, 400):03d}",
                approver_id=f"STAFF-{rng.randint(401, 600):03d}",
                payment_kind=rng.choice(["progress", "progress", "progress", "prepayment", "final", "other"]),
            )
            after["contract"]["paid_fen"] = amount
            after["position"]["paid_fen"] = amount
            if ev["payment_kind"] == "final":
                for state in (before, after):
                    state["project"].update(accepted=True, accepted_at=state["project"]["approved_at"],
                                            accepted_progress_bps=10_000)
        elif t == "ProcurementAwarded":
            ev.update(award_id=f"ZB-{i:08d}", amount_fen=rng.randint(1_000_000, 300_000_000),
                      owner_unit=f"OWN-{rng.randint(1, 300)}")
        elif t in ("ContractSigned", "ContractAmended"):
            ev["contract_id"] = f"HT-{i:08d}"
        if funds > 1 and ev.get("fund_doc_no"):
            fund = f"{ev['fund_doc_no']}-{rng.randrange(funds)}"
            ev["fund_doc_no"] = fund
            for state in (before, after):
                for part in ("fund", "position", "counterparty"):
                    if state.get(part):
                        state[part]["fund_doc_no"] = fund
        yield {"event": ev, "sequence": i + 1, "accepted_at": ev["published_at"], "before": before, "after": after,
               "trace_id": None}


def encode_all(docs: Iterator[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(d) for d in docs]


def passthrough_rate(blobs: list[bytes]) -> float:
    """Events/s of decode + encode only."""
    t = time.perf_counter()
    for b in blobs:
        orjson.dumps(orjson.loads(b))
    return len(blobs) / (time.perf_counter() - t)


def evaluation_rate(blobs: list[bytes], packs: PackSet) -> tuple[float, int]:
    """Events/s of decode + evaluation against every loaded rule, and the violations raised."""
    engine = Engine(packs)
    raised = 0
    t = time.perf_counter()
    for b in blobs:
        raised += len(engine.process(orjson.loads(b), raw=b).violations)
    return len(blobs) / (time.perf_counter() - t), raised


def _produce(bootstrap: str, topic: str, docs: Iterator[dict[str, Any]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=1_048_576,
                             max_request_size=8_388_608, compression_type=None, **client_security("kafka-python"))
    try:
        for d in docs:  # keyed as fund-tracker keys them: by fund, reference data by vendor
            ev = d["event"]
            key = f"vendor:{ev['vendor_id']}" if ev["event_type"] in REFERENCE_TYPES else ev["fund_doc_no"]
            producer.send(topic, orjson.dumps(d), key=key.encode())
        producer.flush()
    finally:
        producer.close()


def run(
    bootstrap: str,
    *,
    eval_events: int = 50_000,
    replay_events: int = 1_000_000,
    rulepack_dir: Path = DEFAULT_RULEPACK_DIR,
    replay_funds: int = 64,
    workers: int = 2,
) -> dict[str, Any]:
    """Measure evaluation and replay throughput; every rate has its pass-through baseline beside it."""
    from kafka.admin import KafkaAdminClient

    from fundtrail_runtime.kafka_admin import ensure_topics
    from fundtrail_runtime.worker import tune_gc
    from fundtrail_schemas.topics import DEFAULT_PARTITIONS, TopicSpec

    from .logreader import read_log, read_log_partitions
    from .partitioned import evaluate_partitioned
    from .replay import evaluate

    _, packs = load_dir(rulepack_dir)
    blobs = encode_all(synthetic_docs(eval_events))
    tune_gc()  # as the worker runs; the baseline below is measured under the same settings
    base = passthrough_rate(blobs)
    rate, raised = evaluation_rate(blobs, packs)
    result: dict[str, Any] = {
        "rules": len(packs.rule_ids()),
        "rule_versions": len(packs.rules),
        "eval_events": eval_events,
        "eval_events_per_s": round(rate),
        "eval_passthrough_events_per_s": round(base),
        "eval_vs_passthrough": round(rate / base, 4),
        "eval_violations": raised,
        "eval_target_events_per_s": 20_000,
    }
    topic = f"{ENRICHED_EVENTS}.bench-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [TopicSpec(topic, DEFAULT_PARTITIONS, "bench", "replay benchmark (deleted after)")])
    try:
        _produce(bootstrap, topic, synthetic_docs(replay_events, seed=11, funds=replay_funds))
        t = time.perf_counter()
        values, total = read_log(bootstrap, topic)
        for v in values:
            orjson.dumps(orjson.loads(v))
        raw_s = time.perf_counter() - t
        t = time.perf_counter()
        values, total = read_log(bootstrap, topic)
        serial = evaluate(values, packs, start=None, end=None, grace=timedelta(days=15))
        serial_s = time.perf_counter() - t
        t = time.perf_counter()
        records, _ = read_log_partitions(bootstrap, topic)
        par = evaluate_partitioned(records, packs, rulepack_dir, start=None, end=None, grace=timedelta(days=15),
                                   workers=workers)
        parallel_s = time.perf_counter() - t
    finally:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, **client_security("kafka-python"))
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()
    same = {k: v.model_dump_json() for k, v in par.violations.items()} == {
        k: v.model_dump_json() for k, v in serial.violations.items()
    }
    result.update(
        replay_events=total,
        replay_evaluated=par.events,
        replay_passthrough_seconds=round(raw_s, 2),
        replay_passthrough_events_per_s=round(total / raw_s),
        replay_serial_seconds=round(serial_s, 2),
        replay_serial_events_per_s=round(total / serial_s),
        # The replay as `fundtrail replay` runs it on a machine with two cores (partitioned).
        replay_parallel_seconds=round(parallel_s, 2),
        replay_parallel_events_per_s=round(total / parallel_s),
        replay_parallel_vs_serial=round(serial_s / parallel_s, 4),
        replay_parallel_vs_passthrough=round(raw_s / parallel_s, 4),
        replay_same_violations=same,
        replay_1m_seconds=round(parallel_s * 1_000_000 / total, 1),
        replay_1m_extrapolated=total < 1_000_000,
        replay_1m_target_seconds=60,
        replay_violations=len(par.violations),
    )
    return result
