"""The full audit of a log (pure): recompute everything from the leaves and name what disagrees.

`fundtrail verify --audit` feeds it every leaf and every stored node the gateway serves, the signed
checkpoint, and what the reading endpoints show; each check below has a fixed name so a report can
be compared across runs (docs/verifying.md lists them).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from fundtrail_schemas.decode import parse_object
from fundtrail_schemas.events import Envelope, FundAllocated, FundReturned, FundTransferred, PaymentDisbursed
from fundtrail_schemas.leaf import SUBJECTS, Leaf, LeafError, decode_leaf
from fundtrail_schemas.ledger import Ledger
from fundtrail_verify import merkle
from fundtrail_verify.checkpoint import Checkpoint, CheckResult

from .entry import StoredEntry, check_entry

POSITION_FIELDS = ("received_fen", "passed_down_fen", "paid_fen", "returned_fen", "contracted_fen")
PositionKey = tuple[str, str, str]  # fund, level, region


@dataclass
class LogFacts:
    """What the leaves say, for comparing with what the API shows."""

    leaves: dict[int, Leaf] = field(default_factory=dict)
    data: dict[int, bytes] = field(default_factory=dict)
    by_entry_id: dict[str, int] = field(default_factory=dict)
    chains: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (subject kind, id) -> leaf indexes
    positions: dict[PositionKey, dict[str, int]] = field(default_factory=dict)  # latest committed state
    flows: dict[str, dict[str, int]] = field(default_factory=dict)  # fund -> money moved, from the payloads


_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")

# What each money event moves, summed per fund from the payloads alone (the audit reports them).
FLOW_OF: dict[type, str] = {FundAllocated: "allocated_fen", FundTransferred: "transferred_fen",
                            FundReturned: "returned_fen", PaymentDisbursed: "paid_fen"}


def _instant(value: Any) -> Any:
    """A JSON time as an instant: fund-tracker's stored rows come back in UTC, an event's own time keeps
    the offset it was published with, and both name the same instant."""
    if isinstance(value, str) and _TIME.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _differences(shown: Any, computed: Any, path: str = "") -> list[str]:
    """Paths where two JSON values differ (at most a few), e.g. `position.paid_fen`."""
    if isinstance(shown, dict) and isinstance(computed, dict):
        out: list[str] = []
        for key in sorted(shown.keys() | computed.keys()):
            out += _differences(shown.get(key), computed.get(key), f"{path}.{key}" if path else key)
        return out[:3]
    if isinstance(shown, list) and isinstance(computed, list) and len(shown) == len(computed):
        return [d for i, (a, b) in enumerate(zip(shown, computed, strict=True))
                for d in _differences(a, b, f"{path}[{i}]")][:3]
    same = shown == computed or _instant(shown) == _instant(computed)
    return [] if same else [f"{path or 'state'} is {shown!r}, recomputed {computed!r}"]


class Replay:
    """Every event leaf in log order through the ledger core fund-tracker applies (`fundtrail_schemas.ledger`).

    fund-tracker decides and appends under one lock, so log order is the order it applied events in: the
    replayed ledger must show each leaf's `before` exactly and, after applying the leaf's own payload, its
    `after`. An operator who edits a committed state (or an amount in a payload without fixing the states)
    cannot keep both equal without re-signing the log."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.problems: list[str] = []
        self.events = 0

    def step(self, seq: int, leaf: Leaf, flows: dict[str, dict[str, int]]) -> None:
        event = parse_object(leaf.payload)
        if not isinstance(event, Envelope):
            self.problems.append(f"leaf {seq}: its payload is not an event the ledger knows ({event.message})")
            return
        self.events += 1
        transition = self.ledger.apply(event)
        self.ledger.new_payments.clear()  # the payment rows are the adapter's; the replay needs none
        flow = FLOW_OF.get(type(event))
        if flow is not None and event.fund_doc_no:
            totals = flows.setdefault(event.fund_doc_no, dict.fromkeys(FLOW_OF.values(), 0))
            totals[flow] += getattr(event, "amount_fen", 0)
        for name, shown, computed in (("before", leaf.before, transition.before_json),
                                      ("after", leaf.after, transition.after_json)):
            diff = _differences(shown, orjson.loads(computed))
            if diff:
                what = ("the log's previous states" if name == "before"
                        else f"applying its {leaf.event_type} to the state before")
                self.problems.append(f"leaf {seq}: state {name} differs from {what}: {'; '.join(diff)}")


def _check(name: str, failures: Sequence[str], ok_reason: str) -> CheckResult:
    if not failures:
        return CheckResult(name=name, passed=True, reason=ok_reason)
    shown = "; ".join(failures[:5]) + (f"; … {len(failures) - 5} more" if len(failures) > 5 else "")
    return CheckResult(name=name, passed=False, reason=shown)


def _positions(state: Any) -> Iterable[tuple[PositionKey, dict[str, int]]]:
    if not isinstance(state, dict):
        return
    for part in ("position", "counterparty"):
        p = state.get(part)
        if isinstance(p, dict) and {"fund_doc_no", "level", "region_code"} <= p.keys():
            yield (p["fund_doc_no"], p["level"], p["region_code"]), {f: int(p.get(f) or 0) for f in POSITION_FIELDS}


def audit_log(entries: Sequence[StoredEntry], nodes: Mapping[tuple[int, int], bytes],
              checkpoint: Checkpoint, copies: Mapping[int, Mapping[str, Any]] | None = None,
              ) -> tuple[list[CheckResult], LogFacts]:
    """Checks of the log itself: leaves, columns, chains, nodes, the signed root and the ledger states.

    `copies` are the other tables' copies of each leaf's facts (payload, state_after), by leaf index."""
    facts = LogFacts()
    unparseable: list[str] = []
    hashes: list[str] = []
    columns: list[str] = []
    chain: list[str] = []
    ledger: list[str] = []
    heads: dict[tuple[str, str], int] = {}
    replay = Replay()
    tree = merkle.InMemoryTree()
    ordered = sorted(entries, key=lambda e: e.seq)
    missing = sorted(set(range(max(checkpoint.tree_size, len(ordered)))) - {e.seq for e in ordered})
    for e in ordered:
        leaf, computed, problems = check_entry(e)
        if e.seq == tree.size:
            tree.append_leaf_hash(computed)
        if "leaf_hash" in problems:
            hashes.append(f"leaf {e.seq}: its bytes hash to {computed.hex()[:16]}…, the log holds another hash")
        if "column_mismatch" in problems:
            columns.append(f"leaf {e.seq}: a stored column differs from the leaf")
        if leaf is None:
            unparseable.append(f"leaf {e.seq} is not a leaf of the contract's format")
            continue
        facts.leaves[e.seq], facts.data[e.seq] = leaf, e.leaf_data
        copy = (copies or {}).get(e.seq) or {}
        if ("payload" in copy and copy["payload"] != leaf.payload) or (
                "state_after" in copy and copy["state_after"] != leaf.after):
            columns.append(f"leaf {e.seq}: the {leaf.kind} row's copy differs from the leaf")
        facts.by_entry_id[leaf.entry_id] = e.seq
        for kind in SUBJECTS:
            value = leaf.subject(kind)
            if value is None:
                continue
            expected = heads.get((kind, value))
            if leaf.prev.get(kind) != expected:
                chain.append(f"leaf {e.seq}: prev {kind} is {leaf.prev.get(kind)}, the log's previous {kind} "
                             f"{value!r} entry is {expected}")
            heads[(kind, value)] = e.seq
            facts.chains.setdefault((kind, value), []).append(e.seq)
        for key, before in _positions(leaf.before):
            known = facts.positions.get(key, dict.fromkeys(POSITION_FIELDS, 0))
            if before != known:
                ledger.append(f"leaf {e.seq}: state before {key} is {before}, the log's last state is {known}")
        for key, after in _positions(leaf.after):
            facts.positions[key] = after
        if leaf.kind == "event":
            replay.step(e.seq, leaf, facts.flows)
    if missing:
        chain.append(f"leaf indexes missing from the log: {missing[:10]}")
    interior: list[str] = []
    for level in range(tree.size.bit_length()):
        absent = [i for i in range(tree.size >> level) if (level, i) not in nodes]
        if absent:
            interior.append(f"nodes of level {level} at {absent[:5]} are missing")
    for (level, index), stored in sorted(nodes.items()):
        start, end = merkle.node_range(level, index)
        if end > tree.size:
            interior.append(f"node ({level}, {index}) is stored but its leaves are not all in the log")
        elif tree.get_subtree_hash(start, end) != stored:
            interior.append(f"node ({level}, {index}) differs from the hash of leaves [{start}, {end})")
    root_ok = tree.size >= checkpoint.tree_size and tree.root(checkpoint.tree_size) == checkpoint.root
    return [
        _check("missing_leaf", [f"indexes {missing[:10]} are absent"] if missing else [],
               f"leaves 0..{tree.size - 1} are all present"),
        _check("leaf_unparseable", unparseable, "every leaf parses"),
        _check("leaf_hash", hashes, "every leaf's bytes hash to the log's leaf hash"),
        _check("column_mismatch", columns, "every stored column agrees with its leaf"),
        _check("chain_gap", chain, f"{len(facts.chains)} subject chains are complete"),
        _check("interior_node", interior, f"{len(nodes)} stored nodes equal the hashes of their leaves"),
        CheckResult(name="checkpoint_root", passed=root_ok,
                    reason=f"the leaves hash to the signed root of size {checkpoint.tree_size}" if root_ok else
                    f"the leaves do not hash to the signed root {checkpoint.root_hash[:16]}… of size "
                    f"{checkpoint.tree_size}"),
        _check("ledger_replay", ledger, "every event's state before is the log's state after the previous one"),
        _check("state_transition", replay.problems,
               f"{replay.events} events replayed through the ledger core give every state before and after; "
               f"{_flow_summary(facts.flows)}"),
    ], facts


def _flow_summary(flows: Mapping[str, Mapping[str, int]]) -> str:
    total = {name: sum(f[name] for f in flows.values()) for name in FLOW_OF.values()}
    return f"{len(flows)} funds moved " + ", ".join(f"{name} {value}" for name, value in total.items())


def served_positions_problems(fund_doc_no: str, served: Iterable[Mapping[str, Any]],
                              facts: LogFacts) -> list[str]:
    """Differences between the positions the API shows for a fund and the last states the log commits."""
    problems = []
    committed = {(lv, r): v for (f, lv, r), v in facts.positions.items() if f == fund_doc_no}
    seen = set()
    for p in served:
        key = (p["level"], p["region_code"])
        seen.add(key)
        shown = {f: p[f] for f in POSITION_FIELDS}
        if committed.get(key) != shown:
            problems.append(f"{fund_doc_no} {key}: shown {shown}, the log commits {committed.get(key)}")
    for key in committed.keys() - seen:
        problems.append(f"{fund_doc_no} {key}: committed in the log but not shown")
    return problems


def served_item_problems(item: Mapping[str, Any], facts: LogFacts) -> list[str]:
    """Differences between one served trail item and the leaf of the same index."""
    index = item.get("leaf_index")
    leaf = facts.leaves.get(index) if isinstance(index, int) else None
    if leaf is None:
        return [f"served leaf {index} is not a readable leaf of the log"]
    problems = []
    try:
        served_leaf = decode_leaf(base64.b64decode(item.get("leaf_data") or ""))
    except (LeafError, ValueError):
        served_leaf = None
    if served_leaf != leaf:
        problems.append(f"leaf {index}: the served bytes differ from the log's")
    for name, value in (("event", leaf.payload), ("state_after", leaf.after), ("state_before", leaf.before),
                        ("fund_doc_no", leaf.fund_doc_no), ("region_code", leaf.region_code),
                        ("event_type", leaf.event_type), ("trace_id", leaf.trace_id),
                        ("entry_id", leaf.entry_id), ("occurred_at", leaf.occurred_at),
                        ("publisher", leaf.publisher)):
        if name in item and item[name] != value:
            problems.append(f"leaf {index}: served {name} differs from the leaf")
    verification = item.get("verification")
    if isinstance(verification, dict) and not verification.get("ok", True):
        problems.append(f"leaf {index}: the gateway flags {verification.get('problems')}")
    return problems


# The status a case action's event type leaves a violation in (the rectification loop, fundtrail_schemas.cases).
STATUS_AFTER = {"ViolationAcknowledged": "acknowledged", "ViolationRectified": "rectified",
                "ViolationDismissed": "dismissed", "ViolationResolved": "resolved"}


def case_statuses(facts: LogFacts) -> dict[str, str]:
    """Each violation's status as its violation and case entries in the log make it, by violation id."""
    statuses: dict[str, str] = {}
    for _, leaf in sorted(facts.leaves.items()):
        if leaf.violation_id is None:
            continue
        if leaf.kind == "violation":
            statuses.setdefault(leaf.violation_id, "raised")
        elif leaf.kind == "case" and leaf.event_type in STATUS_AFTER:
            statuses[leaf.violation_id] = STATUS_AFTER[leaf.event_type]
    return statuses


def trail_chain_problems(items: Sequence[Mapping[str, Any]], subject: str) -> list[str]:
    """What a reader can check of a trail it downloaded whole (all pages, in order), regional or not.

    Every item's `prev` of `subject` must name the item shown before it, or, in a regional view, the last
    entry it declares withheld (`withheld_before`, ascending and after the item shown before); the first
    item's chain starts at null or at its withheld entries. A regional reader cannot read withheld entries,
    so it cannot follow their own `prev`; an auditor's full view checks those (`chain_gap`)."""
    problems: list[str] = []
    previous: int | None = None
    for item in items:
        index = item.get("leaf_index")
        if not isinstance(index, int):
            problems.append(f"an item has no leaf index ({index!r})")
            continue
        withheld = item.get("withheld_before") or []
        if any(not isinstance(w, int) or w >= index for w in withheld) or withheld != sorted(set(withheld)) or (
                previous is not None and withheld and withheld[0] <= previous):
            problems.append(f"leaf {index}: withheld entries {withheld} do not lie between the item shown before "
                            f"({previous}) and it")
        expected = withheld[-1] if withheld else previous
        named = (item.get("prev") or {}).get(subject)
        if named != expected:
            what = "the last withheld entry it declares" if withheld else "the item shown before it"
            problems.append(f"leaf {index}: prev {subject} is {named}, {what} is {expected}: an entry is missing")
        previous = index
    return problems
