"""Benchmark of the Merkle log: append rate, store-based proof latency, against a raw SHA-256 baseline.

Run with ``python -m fundtrail_runtime.bench_merkle [n_leaves]``; ``make bench`` calls ``run()``.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fundtrail_schemas.examples import load_examples
from fundtrail_schemas.leaf import encode_leaf
from fundtrail_verify.merkle import (
    CompactRange,
    InMemoryTree,
    consistency_proof_from_store,
    inclusion_proof_from_store,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

__all__ = ["run"]

ENTRY_SIZE = 300
POOL = 4096  # distinct entries cycled through, so setup does not allocate n_leaves * 300 bytes


class _CountingStore:
    """Counts subtree reads, as a PostgreSQL store would count rows fetched."""

    def __init__(self, inner: InMemoryTree) -> None:
        self.inner = inner
        self.reads = 0

    def get_subtree_hash(self, start: int, end: int) -> bytes:
        self.reads += 1
        return self.inner.get_subtree_hash(start, end)


def _entries(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(ENTRY_SIZE) for _ in range(POOL)]


def _leaf_parts() -> tuple[bytes, bytes, bytes]:
    """A payment's wire payload and ledger states as fund-tracker has them (JSON bytes)."""
    payload = json.dumps(load_examples()["PaymentDisbursed"], ensure_ascii=False).encode()
    position = {"fund_doc_no": "F-1", "level": "town", "region_code": "440705101", "received_fen": 400_000_000,
                "passed_down_fen": 50_000_000, "paid_fen": 0, "returned_fen": 0, "contracted_fen": 180_000_000,
                "first_received_at": "2026-03-07T01:30:00+00:00", "last_outflow_at": None}
    state: dict[str, Any] = {
        "fund": {"fund_doc_no": "F-1", "known": True, "allocated_fen": 1_000_000_000}, "position": position,
        "counterparty": None, "project": {"project_id": "P-1", "approved": True, "budget_fen": 200_000_000},
        "contract": {"contract_id": "HT-1", "signed": True, "amount_fen": 180_000_000},
        "vendor": {"vendor_id": "V-1", "awards_count": 1}, "invoice_payment_ids": [],
    }
    after = {**state, "position": {**position, "paid_fen": 10_000_000}}
    return payload, json.dumps(state).encode(), json.dumps(after).encode()


def _median_us(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1e6, 1)


def run(n_leaves: int = 1_000_000, samples: int = 100, seed: int = 9162) -> dict[str, Any]:
    """Measure append rate and proof latency for an ``n_leaves`` log; print and return the results."""
    if n_leaves < 2:
        raise ValueError("need at least 2 leaves")
    entries = _entries(seed)
    mask = POOL - 1
    sha256 = hashlib.sha256

    # Baseline: the unavoidable cost, one SHA-256 per ~300-byte entry, same loop shape.
    t0 = time.perf_counter()
    for i in range(n_leaves):
        sha256(entries[i & mask]).digest()
    baseline_s = time.perf_counter() - t0

    # Writer hot path: leaf hash + O(log n) frontier update, completed nodes returned.
    cr = CompactRange()
    append = cr.append
    t0 = time.perf_counter()
    for i in range(n_leaves):
        append(leaf_hash(entries[i & mask]))
    compact_s = time.perf_counter() - t0

    # Same plus keeping every completed subtree (what the PostgreSQL table would hold).
    tree = InMemoryTree()
    tree_append = tree.append
    t0 = time.perf_counter()
    for i in range(n_leaves):
        tree_append(entries[i & mask])
    store_s = time.perf_counter() - t0
    root = tree.root()
    if root != cr.root():
        raise AssertionError("compact range and store disagree on the root")

    # What fund-tracker does per accepted event: build the format-2 leaf (payload and ledger states parsed
    # and written canonically, prev pointers), hash it, append it.
    leaf_n = min(n_leaves, 100_000)
    payload, before, after = _leaf_parts()
    heads: dict[tuple[str, str], int] = {}
    built = CompactRange()
    at = datetime(2026, 3, 2, tzinfo=UTC)
    t0 = time.perf_counter()
    for i in range(leaf_n):
        subjects = (("fund", "F-1"), ("project", "P-1"), ("payment", f"ZF-{i}"), ("vendor", "V-1"))
        data = encode_leaf(
            kind="event", entry_id=uuid.UUID(int=i), event_type="PaymentDisbursed", payload=payload,
            region_code="440705101", occurred_at=at, appended_at=at, trace_id=None,
            prev={k: heads.get((k, v)) for k, v in subjects}, fund_doc_no="F-1", project_id="P-1",
            payment_id=f"ZF-{i}", contract_id="HT-1", vendor_id="V-1", before=before, after=after,
        )
        for subject in subjects:
            heads[subject] = i
        built.append(leaf_hash(data))
    leaf_build_s = time.perf_counter() - t0

    # Full recomputation, for scale: what a naive proof server would do per request.
    leaf_hashes = [tree.leaf_hash_at(i) for i in range(n_leaves)]
    t0 = time.perf_counter()
    full_root = root_from_leaf_hashes(leaf_hashes)
    full_root_s = time.perf_counter() - t0
    del leaf_hashes
    if full_root != root:
        raise AssertionError("full recomputation disagrees with the store root")

    rng = random.Random(seed + 1)
    gen: list[float] = []
    ver: list[float] = []
    reads: list[int] = []
    lens: list[int] = []
    for _ in range(samples):
        index = rng.randrange(n_leaves)
        store = _CountingStore(tree)
        t0 = time.perf_counter()
        proof = inclusion_proof_from_store(store, index, n_leaves)
        t1 = time.perf_counter()
        ok = verify_inclusion(leaf_hash(entries[index & mask]), index, n_leaves, proof, root)
        t2 = time.perf_counter()
        if not ok:
            raise AssertionError(f"inclusion proof for {index} did not verify")
        gen.append(t1 - t0)
        ver.append(t2 - t1)
        reads.append(store.reads)
        lens.append(len(proof))

    cgen: list[float] = []
    cver: list[float] = []
    for _ in range(samples):
        old = rng.randrange(1, n_leaves)
        old_root = tree.root(old)
        t0 = time.perf_counter()
        cproof = consistency_proof_from_store(tree, old, n_leaves)
        t1 = time.perf_counter()
        ok = verify_consistency(old, n_leaves, old_root, root, cproof)
        t2 = time.perf_counter()
        if not ok:
            raise AssertionError(f"consistency proof {old}->{n_leaves} did not verify")
        cgen.append(t1 - t0)
        cver.append(t2 - t1)

    baseline_rate = n_leaves / baseline_s
    compact_rate = n_leaves / compact_s
    store_rate = n_leaves / store_s
    results: dict[str, Any] = {
        "n_leaves": n_leaves,
        "entry_bytes": ENTRY_SIZE,
        "baseline_sha256_leaves_per_s": round(baseline_rate),
        "append_leaves_per_s": round(compact_rate),
        "append_ratio_to_baseline": round(compact_rate / baseline_rate, 3),
        "append_with_store_leaves_per_s": round(store_rate),
        "append_with_store_ratio_to_baseline": round(store_rate / baseline_rate, 3),
        "leaf_bytes": len(data),
        "build_leaf_and_append_leaves_per_s": round(leaf_n / leaf_build_s),
        "full_root_recompute_s": round(full_root_s, 3),
        "inclusion_samples": samples,
        "inclusion_proof_len_max": max(lens),
        "inclusion_store_reads_max": max(reads),
        "inclusion_gen_median_us": _median_us(gen),
        "inclusion_verify_median_us": _median_us(ver),
        "inclusion_gen_plus_verify_median_us": _median_us([g + v for g, v in zip(gen, ver, strict=True)]),
        "consistency_gen_median_us": _median_us(cgen),
        "consistency_verify_median_us": _median_us(cver),
        "python": sys.version.split()[0],
    }
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
