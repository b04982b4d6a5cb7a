"""A `fundtrail_verify.merkle` store over the `trail_node` table (proofs in O(log n) lookups)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from fundtrail_verify.merkle import Range, node_id


class PgTrailStore:
    """Implements `MultiGetMerkleStore`: every proof is one indexed query on (level, idx)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def get_subtree_hash(self, start: int, end: int) -> bytes:
        """The hash of the complete aligned subtree [start, end)."""
        return self.get_subtree_hashes([(start, end)])[0]

    def get_subtree_hashes(self, ranges: Sequence[Range]) -> list[bytes]:
        """Hashes of several subtrees, in order; KeyError if one is not stored."""
        ids = [node_id(s, e) for s, e in ranges]
        rows = self._conn.execute(
            "SELECT level, idx, hash FROM trail_node"
            " WHERE (level, idx) IN (SELECT * FROM unnest(%s::int[], %s::bigint[]))",
            ([lv for lv, _ in ids], [ix for _, ix in ids]),
        ).fetchall()
        found = {(lv, ix): bytes(h) for lv, ix, h in rows}
        missing = [r for r, i in zip(ranges, ids, strict=True) if i not in found]
        if missing:
            raise KeyError(f"trail_node has no hash for subtrees {missing}")
        return [found[i] for i in ids]
