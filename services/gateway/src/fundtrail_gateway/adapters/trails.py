"""The trail read path: a plain psycopg pool and one prepared statement per subject and scope.

Every item is built from its leaf bytes (`core.leafview`): the columns beside the leaf are only
indexes to find it, and are checked against it. The SQLAlchemy layers cost three times the client CPU
of plain psycopg for the same rows, hence the plain pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from fundtrail_runtime.db import conninfo as conninfo  # re-exported: callers import it from here

from ..core.leafview import StoredEntry, render_item
from ..core.regions import like_pattern
from ..core.scoping import EvidenceRules, redact_violation
from ..settings import GatewaySettings

# What a trail is "of": the indexed trail_entry column to filter on (ix_trail_fund, ix_trail_project, ...).
SUBJECT_COLUMNS = {"fund": "fund_doc_no", "project": "project_id", "payment": "payment_id", "vendor": "vendor_id"}
_COLUMNS = ("entry_kind", "entry_id", "event_type", "fund_doc_no", "project_id", "payment_id", "contract_id",
            "vendor_id", "violation_id", "region_code", "occurred_at", "appended_at", "trace_id")

# The page is picked from trail_entry alone (index on the subject column and seq, LIMIT size + 1), then
# joined to the log's level-0 node of each leaf and, for violations, to their current case status. The
# page comes back as one row of arrays: one message, which libpq reads in one go (a result of many rows
# arrives 16 KB at a time, and under load every read waits a full turn of the event loop).
_TRAIL_SQL = """\
SELECT array_agg(te.seq ORDER BY te.seq), array_agg(te.leaf_data ORDER BY te.seq),
       array_agg(te.leaf_hash ORDER BY te.seq), array_agg(n.hash ORDER BY te.seq),
       array_agg(vi.status ORDER BY te.seq), {columns}{withheld}
FROM (
  SELECT * FROM trail_entry
  WHERE {column} = %(key)s AND seq > %(after)s{region}
  ORDER BY seq
  LIMIT %(size)s + 1
) te
LEFT JOIN trail_node n ON n.level = 0 AND n.idx = te.seq
LEFT JOIN violation vi ON te.entry_kind = 'violation' AND vi.violation_id = te.violation_id"""

# A regional page also declares the subject's entries outside the region up to its last row (leaf indexes
# only): each shown entry's `prev` must then name the entry shown before it or a declared one.
_WITHHELD_SQL = """,
       (SELECT array_agg(h.seq ORDER BY h.seq) FROM trail_entry h
        WHERE h.{column} = %(key)s AND h.seq > %(after)s AND h.seq < max(te.seq)
          AND h.region_code NOT LIKE %(pattern)s)"""

TRAIL_QUERIES = {
    (subject, regional): _TRAIL_SQL.format(
        column=column,
        region=" AND region_code LIKE %(pattern)s" if regional else "",
        withheld=_WITHHELD_SQL.format(column=column) if regional else "",
        columns=", ".join(f"array_agg(te.{c} ORDER BY te.seq)" for c in _COLUMNS),
    ).encode()
    for subject, column in SUBJECT_COLUMNS.items()
    for regional in (False, True)
}


@dataclass(frozen=True, slots=True)
class TrailChunk:
    """Up to `size` rendered entries of a trail, in log order."""

    items: bytes  # the entries' JSON objects separated by commas (no brackets); empty for no entries
    count: int  # entries in `items`
    more: bool  # an entry follows the last one
    last_seq: int | None  # leaf index of the last entry
    settled: bool  # nothing on it can change any more (no violation status) and every entry verified


def render_chunk(rows: list[Any], subject: str, prefix: str | None, after_seq: int, size: int, base: str,
                 withheld: Sequence[int] = (), rules: EvidenceRules | None = None) -> TrailChunk:
    """Items from rows of `TRAIL_QUERIES` for readers of region `prefix` (None: everything; pure: no I/O).

    A regional reader sees ledger states redacted and no leaf bytes holding more (core.leafview), and
    each item declares the subject's entries outside the region since the item shown before it
    (`withheld_before`, ascending leaf indexes of `withheld`): the item's `prev` must name the last of
    them, or the item shown before when there are none, else it is a `chain_gap`."""
    # The region whose code prefix this is (core.regions.region_prefix, reversed): codes have six digits.
    region = None if prefix is None else prefix.ljust(6, "0")
    shown = rows[:size]
    parts: list[bytes] = []
    previous: int | None = after_seq if after_seq >= 0 else None
    settled = True
    for row in shown:
        seq, data, stored_hash, node_hash, status = row[:5]
        columns = dict(zip(_COLUMNS, row[5:], strict=True))
        entry = StoredEntry(seq, bytes(data), bytes(stored_hash) if stored_hash is not None else None,
                            bytes(node_hash) if node_hash is not None else None, columns)
        violation_id = columns["violation_id"]
        hidden = [h for h in withheld if (previous is None or h > previous) and h < seq]
        item = render_item(
            entry, subject=subject, previous=hidden[-1] if hidden else previous, violation_status=status,
            proof_url=f"{base}/v1/proofs/entries/{seq}",
            violation_url=f"{base}/v1/violations/{violation_id}" if violation_id is not None else None,
            region=region,
        )
        item["withheld_before"] = hidden if region is not None else None
        if region is not None and item["entry_kind"] == "violation":
            # Evidence as the region may see it (core.scoping); the signed leaf holding more is not served.
            redacted = redact_violation(item["event"], region, rules or {})
            if redacted is not item["event"]:
                item.update(event=redacted, leaf_data=None, leaf_withheld=True)
        settled = settled and item["verification"]["ok"] and item["entry_kind"] != "violation"
        previous = seq
        parts.append(orjson.dumps(item))
    return TrailChunk(b",".join(parts), len(shown), len(rows) > size, shown[-1][0] if shown else None, settled)


# Whether a trail goes on after a leaf: what a cached last page needs to know (ix_trail_* on column, seq).
AFTER_QUERIES = {
    subject: f"SELECT EXISTS (SELECT 1 FROM trail_entry WHERE {column} = %(key)s AND seq > %(after)s)".encode()
    for subject, column in SUBJECT_COLUMNS.items()
}

# Deleted, updated or truncated rows of the tables a trail page is rendered from (statistics lag by
# at most the stats flush interval; the page cache probes it, see core.pagecache).
_CHANGES_SQL = (
    b"SELECT coalesce(sum(n_tup_upd + n_tup_del), 0) + coalesce(sum(pg_relation_filenode(relid)::bigint), 0)"
    b" FROM pg_stat_user_tables WHERE relname IN ('trail_entry', 'trail_node')"
)


class TrailStoreUnavailable(RuntimeError):
    """PostgreSQL did not answer (no connection in time, or the connection broke)."""


class TrailStore:
    """Reads trail pages through its own pool of autocommit, read-only connections."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._prepare = settings.db_prepared_statements
        self._timeout = settings.db_pool_timeout_seconds
        self._base = settings.public_base_url
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]] = AsyncConnectionPool(
            conninfo(settings.database_url),
            min_size=settings.db_pool_size,
            max_size=settings.db_pool_size,
            open=False,
            name="fundtrail-gateway-trail",
            timeout=settings.db_pool_timeout_seconds,
            max_lifetime=1800,
            kwargs={
                "autocommit": True,
                "application_name": "fundtrail-gateway",
                "options": "-c default_transaction_read_only=on",
            },
        )

    async def open(self) -> None:
        """Start connecting in the background: the gateway starts (and answers /health) without PostgreSQL."""
        await self.pool.open(wait=False)

    async def close(self) -> None:
        """Close every connection."""
        await self.pool.close()

    async def page(self, subject: str, key: str, prefix: str | None, after_seq: int, size: int,
                   rules: EvidenceRules | None = None) -> TrailChunk:
        """The first `size` entries of one fund/project/payment/vendor after leaf `after_seq`, in its region
        (`rules`: the rules' evidence expressions, for redacting violation evidence)."""
        params: dict[str, Any] = {"key": key, "after": after_seq, "size": size, "base": self._base}
        if prefix is not None:
            params["pattern"] = like_pattern(prefix)
        query = TRAIL_QUERIES[(subject, prefix is not None)]
        try:
            async with self.pool.connection(self._timeout) as conn:
                # Binary results: the rendered items arrive as bytes, with no decode and re-encode.
                cur = await conn.execute(query, params, prepare=self._prepare, binary=True)
                row = await cur.fetchone()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise TrailStoreUnavailable(str(exc)) from exc
        # An aggregate: always one row; its arrays are null when no entry matched.
        width = 5 + len(_COLUMNS)
        rows = [] if row is None or row[0] is None else list(zip(*row[:width], strict=True))
        withheld = (row[width] or []) if row is not None and len(row) > width else []
        return render_chunk(rows, subject, prefix, after_seq, size, self._base, withheld, rules)

    async def continues_after(self, subject: str, key: str, seq: int) -> bool:
        """Whether any entry of the trail (in any region) follows leaf `seq`."""
        try:
            async with self.pool.connection(self._timeout) as conn:
                cur = await conn.execute(AFTER_QUERIES[subject], {"key": key, "after": seq}, prepare=self._prepare)
                row = await cur.fetchone()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise TrailStoreUnavailable(str(exc)) from exc
        return bool(row and row[0])

    async def change_count(self) -> int | None:
        """Rows updated or deleted (or tables truncated) in the trail tables so far, per PostgreSQL's statistics.

        The tables are append-only, so a change here means the rows pages were rendered from have changed."""
        try:
            async with self.pool.connection(self._timeout) as conn:
                cur = await conn.execute(_CHANGES_SQL, prepare=self._prepare)
                row = await cur.fetchone()
        except (PoolTimeout, psycopg.OperationalError):
            return None
        return None if row is None else int(row[0])

    async def ping(self, within: float) -> None:
        """`select 1` on a pooled connection; TrailStoreUnavailable when PostgreSQL does not answer."""
        try:
            async with self.pool.connection(within) as conn:
                await conn.execute(b"select 1")
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise TrailStoreUnavailable(str(exc)) from exc
