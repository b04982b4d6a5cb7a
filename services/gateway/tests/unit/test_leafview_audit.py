"""Served items are parsed from leaves and name what disagrees; the audit recomputes a log from its leaves."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_gateway.core.leafview import StoredEntry, check_entry, render_item
from fundtrail_schemas.decode import encode_event
from fundtrail_schemas.events import PaymentDisbursed
from fundtrail_schemas.leaf import encode_leaf
from fundtrail_schemas.ledger import Ledger
from fundtrail_schemas.types import AccountKind, Level, PaymentKind
from fundtrail_verify import merkle
from fundtrail_verify.audit import audit_log, served_positions_problems
from fundtrail_verify.checkpoint import sign_checkpoint

AT = datetime(2026, 3, 2, tzinfo=UTC)


def _payment(i: int, amount: int = 100) -> PaymentDisbursed:
    return PaymentDisbursed(
        event_id=uuid.UUID(int=i), occurred_at=AT, published_at=AT, source_bureau="440705101-CZ", level=Level.TOWN,
        region_code="440705101", fund_doc_no="F", project_id=None, payment_id=f"ZF-{i}", payee_name="供应商",
        payee_account="6222", account_kind=AccountKind.CORPORATE, amount_fen=amount, invoice_no=f"INV-{i}",
        payment_kind=PaymentKind.PROGRESS, handler_id="H", approver_id="A", purpose="进度款")


def _log(n: int = 4, alter: dict[int, Any] | None = None) -> tuple[list[StoredEntry], dict[tuple[int, int], bytes]]:
    """`n` payments of fund F with the states the ledger core gives; `alter[i]` edits leaf i's (payload, before,
    after) before it is encoded, as an operator rewriting a leaf and re-hashing the log would."""
    tree = merkle.InMemoryTree()
    ledger = Ledger()
    entries, nodes = [], {}
    for i in range(n):
        event = _payment(i)
        t = ledger.apply(event)
        parts = [orjson.loads(encode_event(event)), orjson.loads(t.before_json), orjson.loads(t.after_json)]
        if alter and i in alter:
            alter[i](parts)
        data = encode_leaf(kind="event", entry_id=event.event_id, event_type="PaymentDisbursed", payload=parts[0],
                           region_code="440705101", occurred_at=AT, appended_at=AT, trace_id=None,
                           prev={"fund": i - 1 if i else None}, fund_doc_no="F", before=parts[1], after=parts[2])
        tree.append(data)
        cols = {"entry_kind": "event", "entry_id": event.event_id, "event_type": "PaymentDisbursed",
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
    assert base64.b64decode(item["leaf_data"]) == entries[2].leaf_data and item["event"]["payment_id"] == "ZF-2"
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
    served = [{"level": "town", "region_code": "440705101", "received_fen": 0, "passed_down_fen": 0,
               "paid_fen": 400, "returned_fen": 0, "contracted_fen": 0}]
    assert served_positions_problems("F", served, facts) == []
    assert served_positions_problems("F", [{**served[0], "paid_fen": 300}], facts)

    def failed(entries: list[StoredEntry], nodes: dict[tuple[int, int], bytes]) -> set[str]:
        return {c.name for c in audit_log(entries, nodes, cp)[0] if not c.passed}

    assert failed(entries[:2] + entries[3:], nodes) >= {"missing_leaf", "chain_gap", "checkpoint_root"}
    assert failed(entries, {**nodes, (1, 1): bytes(32)}) == {"interior_node"}
    del nodes[(1, 0)]
    assert failed(entries, nodes) == {"interior_node"}


def test_the_audit_redoes_the_ledger_arithmetic_from_the_leaves() -> None:
    """Re-hashed, re-signed rewrites pass every hash check; only the replay through the ledger core names them."""

    def failed(alter: dict[int, Any]) -> dict[str, str]:
        entries, nodes = _log(alter=alter)
        return {c.name: c.reason for c in audit_log(entries, nodes, _checkpoint(entries))[0] if not c.passed}

    def paid(part: int, delta: int) -> Any:
        def edit(parts: list[Any]) -> None:
            parts[part]["position"]["paid_fen"] += delta
        return edit

    entries, nodes = _log()
    ok = {c.name: c for c in audit_log(entries, nodes, _checkpoint(entries))[0]}["state_transition"]
    assert ok.passed and "4 events replayed" in ok.reason and "paid_fen 400" in ok.reason
    # The last state after, raised: continuity cannot see it (nothing follows), the arithmetic does.
    assert failed({3: paid(2, 1)}) == {
        "state_transition": "leaf 3: state after differs from applying its PaymentDisbursed to the state before:"
                            " position.paid_fen is 401, recomputed 400"}
    # An amount changed in the payload with the states left as they were.

    def amount(parts: list[Any]) -> None:
        parts[0]["amount_fen"] = 1
    assert set(failed({1: amount})) == {"state_transition"}
    # 50 more paid from leaf 2 on, every later state shifted to match (each before continues the previous
    # after): the continuity check passes, only the replay sees that no event paid those 50.
    shifted = {2: paid(2, 50), 3: lambda parts: (paid(1, 50)(parts), paid(2, 50)(parts))}
    assert set(failed(shifted)) == {"state_transition"}
    # A payload that is no event at all.
    assert "not an event" in failed({0: lambda parts: parts[0].pop("amount_fen")})["state_transition"]


def test_the_replay_compares_times_as_instants() -> None:
    """fund-tracker's stored rows come back in UTC while an event keeps its published offset."""

    def to_utc_z(parts: list[Any]) -> None:
        at = parts[2]["position"]["last_outflow_at"]
        parts[2]["position"]["last_outflow_at"] = datetime.fromisoformat(at).astimezone(UTC).isoformat()

    entries, nodes = _log(alter={3: to_utc_z})
    assert all(c.passed for c in audit_log(entries, nodes, _checkpoint(entries))[0])
