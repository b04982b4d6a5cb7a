"""The trail read path: a plain psycopg pool and one prepared statement per subject and scope.

The trail is the gateway's hottest read, and profiling it under load showed where the time goes:

* the SQLAlchemy session and execution layers cost three times the client CPU of plain psycopg for the
  same rows, and its asyncio queue pool lets waiting requests be overtaken (second-long tails);
* a page of 50 entries is ~65 KB, and libpq reads a result of many rows 16 KB at a time: every read
  is one more wait on the event loop, and under load each wait costs a full turn of the loop (all
  other ready requests run first). A page took eight turns.

So PostgreSQL renders the entries (JSON, byte for byte what `TrailEntryOut` documents) and sends the
page as one value: libpq sizes its buffer to the message and reads it in one go, the request waits
once or twice, and Python neither builds a dict per row nor serialises it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from fundtrail_schemas.db import conninfo as conninfo  # re-exported: callers import it from here

from ..core.regions import like_pattern
from ..settings import GatewaySettings

# What a trail is "of": the indexed trail_entry column to filter on (ix_trail_fund, ix_trail_project, ...).
SUBJECT_COLUMNS = {"fund": "fund_doc_no", "project": "project_id", "payment": "payment_id", "vendor": "vendor_id"}

# The same text orjson writes for an aware UTC datetime: microseconds only when there are any.
_ISO_UTC = (
    "(to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN extract(microseconds FROM {c})::int %% 1000000 = 0 THEN ''"
    " ELSE to_char({c} AT TIME ZONE 'UTC', '.US') END || '+00:00')"
)

# The page is picked from trail_entry alone (index on the subject column and seq, LIMIT size + 1), then
# joined by primary key to the rows it records. Stored JSON goes out as PostgreSQL prints it as jsonb
# (processed_event stores json, cheaper to write, so it is cast here), exactly as the per-row path
# embedded it. Besides the rendered items: how many rows were found (size + 1 means there is a next
# page), the last leaf index, and whether anything on the page can still change (a violation's
# status, or an entry whose event, violation or case row is not there yet).
_TRAIL_SQL = """\
WITH page AS MATERIALIZED (
  SELECT * FROM trail_entry
  WHERE {column} = %(key)s AND seq > %(after)s{region}
  ORDER BY seq
  LIMIT %(size)s + 1
), entries AS (
  SELECT row_number() OVER (ORDER BY te.seq) AS n, te.seq, te.entry_kind,
         (pe.event_id IS NOT NULL OR ca.payload IS NOT NULL OR vi.payload IS NOT NULL) AS recorded,
         (SELECT row_to_json(e) FROM (SELECT
            te.seq AS leaf_index, encode(te.leaf_hash, 'hex') AS leaf_hash, te.entry_kind, te.entry_id,
            te.event_type, te.fund_doc_no, te.project_id, te.payment_id, te.contract_id, te.vendor_id,
            te.violation_id, vi.status AS violation_status, te.region_code,
            {occurred_at} AS occurred_at, {appended_at} AS appended_at, te.trace_id,
            coalesce(pe.payload::jsonb, ca.payload, vi.payload) AS event, {state_after} AS state_after,
            (SELECT row_to_json(l) FROM (SELECT
               %(base)s || '/v1/proofs/entries/' || te.seq AS proof,
               %(base)s || '/v1/violations/' || te.violation_id AS violation) l) AS links
          ) e)::text AS item
  FROM page te
  LEFT JOIN processed_event pe ON te.entry_kind = 'event' AND pe.event_id = te.entry_id
  LEFT JOIN case_action ca ON te.entry_kind = 'case' AND ca.event_id = te.entry_id
  LEFT JOIN violation vi ON te.entry_kind = 'violation' AND vi.violation_id = te.violation_id
)
SELECT count(*),
       max(seq) FILTER (WHERE n <= %(size)s),
       coalesce(bool_and(entry_kind <> 'violation' AND recorded) FILTER (WHERE n <= %(size)s), true),
       convert_to(coalesce(string_agg(item, ',' ORDER BY seq) FILTER (WHERE n <= %(size)s), ''), 'UTF8')
FROM entries"""

# core.scoping.redact_state in SQL, for regional readers: positions outside the region keep who they
# are, vendor totals are withheld (jsonb prints keys in its own order either way, so an unredacted
# state renders byte for byte as before).
REDACTED_STATE_SQL = """\
CASE WHEN pe.state_after IS NULL OR jsonb_typeof(pe.state_after::jsonb) <> 'object' THEN pe.state_after::jsonb
ELSE coalesce((SELECT jsonb_object_agg(s.k, CASE
    WHEN s.k IN ('position', 'counterparty') AND jsonb_typeof(s.v) = 'object'
         AND coalesce(s.v->>'region_code', '') NOT LIKE %(pattern)s
      THEN jsonb_build_object('fund_doc_no', s.v->'fund_doc_no', 'level', s.v->'level',
                              'region_code', s.v->'region_code', 'redacted', true)
    WHEN s.k = 'vendor' AND jsonb_typeof(s.v) = 'object'
      THEN jsonb_build_object('vendor_id', s.v->'vendor_id', 'redacted', true)
    ELSE s.v END) FROM jsonb_each(pe.state_after::jsonb) AS s(k, v)), '{}'::jsonb) END"""

TRAIL_QUERIES = {
    (subject, regional): _TRAIL_SQL.format(
        column=column,
        region=" AND region_code LIKE %(pattern)s" if regional else "",
        state_after=REDACTED_STATE_SQL if regional else "pe.state_after::jsonb",
        occurred_at=_ISO_UTC.format(c="te.occurred_at"),
        appended_at=_ISO_UTC.format(c="te.appended_at"),
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
    settled: bool  # nothing on it can change any more (no violation status, every recorded row present)


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

    async def page(self, subject: str, key: str, prefix: str | None, after_seq: int, size: int) -> TrailChunk:
        """The first `size` entries of one fund/project/payment/vendor after leaf `after_seq`, in its region."""
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
        assert row is not None  # an aggregate: always one row
        found, last_seq, settled, items = row
        return TrailChunk(bytes(items), min(found, size), found > size, last_seq, settled)

    async def ping(self, within: float) -> None:
        """`select 1` on a pooled connection; TrailStoreUnavailable when PostgreSQL does not answer."""
        try:
            async with self.pool.connection(within) as conn:
                await conn.execute(b"select 1")
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise TrailStoreUnavailable(str(exc)) from exc
