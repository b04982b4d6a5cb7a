"""The `trail_node` table (the trail's completed subtree hashes) as a Merkle store, defined once for
the writer (fund-tracker's frontier, benchmarks) and the readers (the gateway's proofs)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fundtrail_verify.merkle import Range, node_id

# (level, idx) pairs in, their stored hashes out: one indexed lookup each, in one statement.
NODES_SQL = (
    "SELECT level, idx, hash FROM trail_node"
    " WHERE (level, idx) IN (SELECT * FROM unnest(%s::int[], %s::bigint[]))"
)

NodeId = tuple[int, int]
# Runs NODES_SQL (or its equivalent) for these levels and indexes: rows of (level, idx, hash).
NodeRows = Callable[[list[int], list[int]], Iterable[Sequence[Any]]]


class MissingNode(LookupError):
    """A subtree the trail writer should have stored is absent."""


def node_params(ids: Sequence[NodeId]) -> tuple[list[int], list[int]]:
    """NODES_SQL's parameters for `ids`."""
    return [lv for lv, _ in ids], [ix for _, ix in ids]


def hashes_in_order(ids: Sequence[NodeId], rows: Iterable[Sequence[Any]]) -> list[bytes]:
    """The hashes of `ids`, in order, from NODES_SQL's rows; MissingNode if one is not stored."""
    found = {(lv, ix): bytes(h) for lv, ix, h in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise MissingNode(f"trail nodes {missing} are not stored")
    return [found[i] for i in ids]


def psycopg_rows(conn: Any) -> NodeRows:
    """NodeRows over a synchronous psycopg connection."""
    return lambda levels, idxs: conn.execute(NODES_SQL, (levels, idxs)).fetchall()


class TrailNodeStore:
    """`fundtrail_verify.merkle.MultiGetMerkleStore` over trail_node: every proof is one query."""

    def __init__(self, rows: NodeRows) -> None:
        self._rows = rows

    def get_subtree_hash(self, start: int, end: int) -> bytes:
        """The hash of the complete aligned subtree [start, end)."""
        return self.get_subtree_hashes([(start, end)])[0]

    def get_subtree_hashes(self, ranges: Sequence[Range]) -> list[bytes]:
        """Hashes of `ranges`, in order, in one round trip; MissingNode if one is not stored."""
        ids = [node_id(s, e) for s, e in ranges]
        if not ids:
            return []
        return hashes_in_order(ids, self._rows(*node_params(ids)))
