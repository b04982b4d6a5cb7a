"""Served items are parsed from leaves and name what disagrees; the audit recomputes a log from its leaves."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_gateway.core.leafview import StoredEntry, check_entry, render_item
from fundtrail_schemas.leaf import encode_leaf
from fundtrail_verify import merkle
from fundtrail_verify.audit import audit_log, served_positions_problems
from fundtrail_verify.checkpoint import sign_checkpoint

AT = datetime(2026, 3, 2, tzinfo=UTC)


def _position(paid: int) -> dict[str, Any]:
    return {"position": {"fund_doc_no": "F", "level": "town", "region_code": "440705101", "received_fen": 10,
                         "passed_down_fen": 0, "paid_fen": paid, "returned_fen": 0, "contracted_fen": 0}}


def _log(n: int = 4) -> tuple[list[StoredEntry], dict[tuple[int, int], bytes]]:
    tree = merkle.InMemoryTree()
    entries, nodes = [], {}
    for i in range(n):
        data = encode_leaf(kind="event", entry_id=uuid.UUID(int=i), event_type="PaymentDisbursed", payload={"i": i},
                           region_code="440705101", occurred_at=AT, appended_at=AT, trace_id=None,
                           prev={"fund": i - 1 if i else None}, fund_doc_no="F",
                           before=_position(i) if i else None, after=_position(i + 1))
        tree.append(data)
        cols = {"entry_kind": "event", "entry_id": uuid.UUID(int=i), "event_type": "PaymentDisbursed",
                "fund_doc_no": "F", "region_code": "440705101", "occurred_at": AT, "appended_at": AT}
        entries.append(StoredEntry(i, data, merkle.leaf_hash(data), tree.leaf_hash_at(i), cols))
    for level in range(n.bit_length()):
        for idx in range(n >> level):
            nodes[(level, idx)] = tree.get_subtree_hash(*merkle.node_range(level, idx))
    return entries, nodes


def _checkpoint(entries: list[StoredEntry]) -> Any:
    root = merkle.root_from_leaf_hashes([merkle.leaf_hash(e.leaf_data) for e in entries])
    return sign_checkpoint(Ed25519PrivateKey.generate(), "t", len(entries), root, AT)


def test_an_item_shows_its_leaf_and_checks_it() -> None:
    entries, _ = _log()
    item = render_item(entries[2], subject="fund", previous=1, violation_status=None, proof_url="p", violation_url=None)
    assert item["verification"] == {"ok": True, "problems": []}
    assert base64.b64decode(item["leaf_data"]) == entries[2].leaf_data and item["event"] == {"i": 2}
    gap = render_item(entries[2], subject="fund", previous=0, violation_status=None, proof_url="p", violation_url=None)
    assert gap["verification"]["problems"] == ["chain_gap"]


def test_copies_that_disagree_with_the_leaf_are_named() -> None:
    e = _log()[0][1]
    moved = StoredEntry(e.seq, e.leaf_data, e.stored_hash, e.node_hash, {**e.columns, "fund_doc_no": "F-2"})
    assert check_entry(moved)[2] == ["column_mismatch"]
    garbage = StoredEntry(e.seq, b"\x00", e.stored_hash, e.node_hash, e.columns)
    assert check_entry(garbage)[2] == ["leaf_hash", "leaf_unparseable"]


def test_the_audit_passes_an_untouched_log_and_names_each_change() -> None:
    entries, nodes = _log()
    cp = _checkpoint(entries)
    checks, facts = audit_log(entries, nodes, cp)
    assert all(c.passed for c in checks), checks
    assert facts.chains[("fund", "F")] == [0, 1, 2, 3]
    served = [{"level": "town", "region_code": "440705101", "received_fen": 10, "passed_down_fen": 0,
               "paid_fen": 4, "returned_fen": 0, "contracted_fen": 0}]
    assert served_positions_problems("F", served, facts) == []
    assert served_positions_problems("F", [{**served[0], "paid_fen": 3}], facts)

    def failed(entries: list[StoredEntry], nodes: dict[tuple[int, int], bytes]) -> set[str]:
        return {c.name for c in audit_log(entries, nodes, cp)[0] if not c.passed}

    assert failed(entries[:2] + entries[3:], nodes) >= {"missing_leaf", "chain_gap", "checkpoint_root"}
    assert failed(entries, {**nodes, (1, 1): bytes(32)}) == {"interior_node"}
    del nodes[(1, 0)]
    assert failed(entries, nodes) == {"interior_node"}
