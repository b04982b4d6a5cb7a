"""One stored trail entry checked against its own leaf: the hash of its bytes, its parse, its copied columns.

The gateway shows a fact only from the leaf bytes (and names what did not agree); the auditor's
`fundtrail verify --audit` runs the same check over every entry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fundtrail_schemas.leaf import COPIED_COLUMNS, Leaf, LeafError, decode_leaf, parse_time

from . import merkle

LEAF_UNPARSEABLE = "leaf_unparseable"
LEAF_HASH = "leaf_hash"
COLUMN_MISMATCH = "column_mismatch"
CHAIN_GAP = "chain_gap"


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """A trail_entry row with the log's level-0 node of the same index."""

    seq: int
    leaf_data: bytes
    stored_hash: bytes | None
    node_hash: bytes | None
    columns: dict[str, Any]  # trail_entry columns, by name (entry_kind and the COPIED_COLUMNS)


def _same(column: str, stored: Any, leaf: Leaf) -> bool:
    value = getattr(leaf, column)
    if stored is None or value is None:
        return stored is None and value is None
    if isinstance(stored, datetime):
        try:
            return parse_time(value) == stored
        except LeafError:
            return False
    if isinstance(stored, uuid.UUID):
        return str(stored) == value
    return bool(stored == value)


def check_entry(entry: StoredEntry) -> tuple[Leaf | None, bytes, list[str]]:
    """The parsed leaf (None when unparseable), the hash of its bytes, and the problems found."""
    computed = merkle.leaf_hash(entry.leaf_data)
    problems: list[str] = []
    if computed != entry.node_hash or (entry.stored_hash is not None and computed != entry.stored_hash):
        problems.append(LEAF_HASH)
    try:
        leaf: Leaf | None = decode_leaf(entry.leaf_data)
    except LeafError:
        leaf = None
        problems.append(LEAF_UNPARSEABLE)
    if leaf is not None:
        kind = entry.columns.get("entry_kind", leaf.kind)
        if kind != leaf.kind or not all(
            _same(c, entry.columns[c], leaf) for c in COPIED_COLUMNS if c in entry.columns
        ):
            problems.append(COLUMN_MISMATCH)
    return leaf, computed, problems
