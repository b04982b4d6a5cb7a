"""PostgreSQL adapter: load the slice of the ledger a batch needs, write a batch plan, append the trail.

Every statement is set-based and none is COPY, so statements can share pipelines: a batch costs a
fixed number of round trips whatever its size. Reads take `= ANY(array)` or `unnest` keys; writes
take each table's rows as ONE JSON parameter (`json_insert`: orjson writes the batch in native code,
`json_to_recordset` types it on the server), not one array per column: psycopg's per-element work
for ~80 arrays a batch was the largest CPU cost of a batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg.types.json import Json

from fundtrail_runtime.db import bytea_text, connect_worker, json_insert, upsert_suffix
from fundtrail_runtime.db import conninfo as conninfo  # re-exported: callers import it from here
from fundtrail_runtime.trail_nodes import NODES_SQL, hashes_in_order, node_params
from fundtrail_schemas.leaf import SUBJECTS
from fundtrail_schemas.ledger import (
    ContractRecord,
    FundRecord,
    Ledger,
    LedgerKeys,
    ProjectRecord,
)
from fundtrail_schemas.ledger_state import Contract, Fund, Position, Project, Vendor, dumps, from_json
from fundtrail_schemas.types import Category, Level
from fundtrail_verify.merkle import CompactRange, node_id, range_decomposition

from ..core.trail import Heads, Links, TrailDraft, TrailItem, seal_all

T = TypeVar("T")

# pg_advisory_xact_lock key of the trail's single writer ("fundtrl" in ASCII).
TRAIL_LOCK_KEY = 0x66756E647472616C & 0x7FFFFFFFFFFFFFFF


async def connect(database_url: str) -> psycopg.AsyncConnection[Any]:
    """A new connection (not autocommit: every batch is one explicit transaction)."""
    return await connect_worker(database_url, "fundtrail-tracker")


@dataclass(frozen=True, slots=True)
class ParkedRow:
    event_id: uuid.UUID
    waiting_for: str
    raw: bytes
    raw_key: bytes | None
    parked_at: datetime
    source_partition: int | None
    source_offset: int | None
    trace_headers: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class ProcessedRow:
    event_id: uuid.UUID
    sequence: int
    event_type: str
    fund_doc_no: str | None
    project_id: str | None
    region_code: str
    level: str
    occurred_at: datetime
    accepted_at: datetime
    payload: str
    state_after: str
    trace_id: str | None
    source_partition: int | None
    source_offset: int | None
    business_key: str | None


_TRAIL_ENTRY_COLUMNS = (
    ("seq", "bigint"), ("entry_kind", "text"), ("entry_id", "uuid"), ("event_type", "text"),
    ("fund_doc_no", "text"), ("project_id", "text"), ("payment_id", "text"), ("contract_id", "text"),
    ("vendor_id", "text"), ("violation_id", "uuid"), ("region_code", "text"), ("occurred_at", "timestamptz"),
    ("appended_at", "timestamptz"), ("leaf_data", "bytea"), ("leaf_hash", "bytea"), ("trace_id", "text"),
)
_INSERT_TRAIL_ENTRIES = json_insert("trail_entry", _TRAIL_ENTRY_COLUMNS)
_INSERT_PAYMENTS = json_insert("payment", (
    ("payment_id", "text"), ("event_id", "uuid"), ("fund_doc_no", "text"), ("project_id", "text"),
    ("contract_id", "text"), ("payee_vendor_id", "text"), ("invoice_no", "text"), ("amount_fen", "bigint"),
    ("region_code", "text"), ("paid_at", "timestamptz"),
))
_INSERT_PROCESSED = json_insert("processed_event", (
    ("event_id", "uuid"), ("sequence", "bigint"), ("event_type", "text"), ("fund_doc_no", "text"),
    ("project_id", "text"), ("region_code", "text"), ("level", "text"), ("occurred_at", "timestamptz"),
    ("accepted_at", "timestamptz"), ("payload", "json"), ("state_after", "json"), ("trace_id", "text"),
    ("source_partition", "int"), ("source_offset", "bigint"), ("business_key", "text"),
))
_INSERT_TRAIL_NODES = json_insert("trail_node", (("level", "int"), ("idx", "bigint"), ("hash", "bytea")))
_PARKED_COLUMNS = (
    ("event_id", "uuid"), ("waiting_for", "text"), ("raw", "bytea"), ("raw_key", "bytea"),
    ("parked_at", "timestamptz"), ("source_partition", "int"), ("source_offset", "bigint"),
    ("trace_headers", "jsonb"),
)
_INSERT_PARKED = json_insert("parked_event", _PARKED_COLUMNS, "ON CONFLICT (event_id) DO NOTHING")


def json_param(rows: Any) -> Json:
    """One JSON parameter for `json_insert`, written by `state.dumps` (orjson: dataclasses, UUIDs,
    datetimes as RFC 3339, enums natively), so states nested in it are stored as they are sent. The
    bytes go to psycopg as they are (a str would cost a decode and an encode of ~1 MB a batch)."""
    return Json(rows, dumps=dumps)


# One index lookup per invoice, whatever the statistics say: invoice_no is not unique, so before
# the first ANALYZE the planner guesses 0.5 % of the table per value and scans all of it (16 ms a
# batch at 50,000 payments, growing with the table). OFFSET 0 keeps the lateral subquery from being
# flattened into a hash join with that same scan.
INVOICE_PAYMENTS_SQL = (
    "SELECT p.invoice_no, p.payment_id FROM unnest(%b::text[]) AS k(invoice_no) CROSS JOIN LATERAL"
    " (SELECT invoice_no, payment_id FROM payment WHERE invoice_no = k.invoice_no OFFSET 0) AS p"
    " ORDER BY p.payment_id"
)


Result = Callable[[], Awaitable[T]]


async def _request(
    conn: psycopg.AsyncConnection[Any], sql: str, params: Sequence[Any], parse: Callable[[list[Any]], T]
) -> Result[T]:
    """Send a query now, read its rows later: inside `conn.pipeline()` many reads share one round trip."""
    cur = conn.cursor()
    await cur.execute(sql, params)

    async def result() -> T:
        try:
            return parse(await cur.fetchall())
        finally:
            await cur.close()

    return result


def _ready(value: T) -> Result[T]:
    async def result() -> T:
        return value

    return result


_PARKED_COLS = "event_id, waiting_for, raw, raw_key, parked_at, source_partition, source_offset, trace_headers"


class TrailHead:
    """The writer's in-memory frontier, trusted only while the stored tree size matches it."""

    def __init__(self) -> None:
        self._range: CompactRange | None = None

    async def load(self, cur: psycopg.AsyncCursor[Any], size: int | None = None) -> CompactRange:
        """A private copy of the frontier at the current tree size (call under the trail lock).

        `size` is the tree size when the caller has already read it (under the same lock).
        """
        if size is None:
            size = await trail_size(cur)
        cached = self._range
        if cached is not None and cached.size == size:
            return CompactRange.from_frontier(size, cached.frontier)
        return await trail_frontier(cur, size)

    def adopt(self, frontier: CompactRange) -> None:
        """Remember the frontier after its transaction committed."""
        self._range = frontier


async def lock_trail(cur: psycopg.AsyncCursor[Any]) -> None:
    """Become the single trail writer until the transaction ends."""
    await cur.execute("SELECT pg_advisory_xact_lock(%s)", (TRAIL_LOCK_KEY,))


async def append_trail(
    cur: psycopg.AsyncCursor[Any], frontier: CompactRange, drafts: Sequence[TrailDraft], appended_at: datetime,
    heads: Heads,
) -> list[TrailItem]:
    """Append entries and their completed subtree hashes; return the sealed entries."""
    async with cur.connection.pipeline():
        items, nodes = await append_trail_entries(cur, frontier, drafts, appended_at, heads)
        await write_trail_nodes(cur, nodes)
    return items


TrailNode = tuple[int, int, bytes]


async def append_trail_entries(
    cur: psycopg.AsyncCursor[Any], frontier: CompactRange, drafts: Sequence[TrailDraft], appended_at: datetime,
    heads: Heads,
) -> tuple[list[TrailItem], list[TrailNode]]:
    """Seal and append entries (one statement); the sealed entries, and the subtree hashes they complete,
    to be written with `write_trail_nodes` in the same transaction.

    `heads` holds the latest leaf index of every chain the drafts belong to (`request_trail_heads`)."""
    items = seal_all(drafts, frontier.size, appended_at, heads)
    nodes: list[TrailNode] = []
    for item in items:
        nodes.extend(frontier.append(item.leaf_hash))
    if items:
        await cur.execute(_INSERT_TRAIL_ENTRIES, (json_param([
            {"seq": it.seq, "entry_kind": d.kind, "entry_id": d.entry_id, "event_type": d.event_type,
             "fund_doc_no": d.fund_doc_no, "project_id": d.project_id, "payment_id": d.payment_id,
             "contract_id": d.contract_id, "vendor_id": d.vendor_id, "violation_id": d.violation_id,
             "region_code": d.region_code, "occurred_at": d.occurred_at, "appended_at": appended_at,
             "leaf_data": bytea_text(it.leaf_data), "leaf_hash": bytea_text(it.leaf_hash), "trace_id": d.trace_id}
            for it in items
            for d in (it.draft,)
        ]),))
    return items, nodes


# The latest leaf of each chain: one backward index scan per subject (ix_trail_fund, ix_trail_project, ...).
_HEADS_SQL = " UNION ALL ".join(
    f"SELECT '{kind}', k, (SELECT max(seq) FROM trail_entry WHERE {column} = k)"
    f" FROM unnest(%b::text[]) AS u(k)"
    for kind, column in SUBJECTS.items()
)


async def request_trail_heads(conn: psycopg.AsyncConnection[Any], subjects: Iterable[tuple[str, str]]) -> Result[Heads]:
    """The leaf index of the latest entry of each chain (absent: no entry yet); sent now, read later."""
    wanted: dict[str, list[str]] = {kind: [] for kind in SUBJECTS}
    for kind, value in set(subjects):
        wanted[kind].append(value)
    if not any(wanted.values()):
        return _ready({})
    return await _request(
        conn, _HEADS_SQL, [wanted[kind] for kind in SUBJECTS],
        lambda rows: {(kind, key): seq for kind, key, seq in rows if seq is not None},
    )


async def write_trail_nodes(cur: psycopg.AsyncCursor[Any], nodes: Sequence[TrailNode]) -> None:
    """Completed subtree hashes (one statement, so it can share a pipeline with other writes)."""
    if nodes:
        await cur.execute(_INSERT_TRAIL_NODES, (json_param([
            {"level": level, "idx": idx, "hash": bytea_text(h)} for level, idx, h in nodes
        ]),))


async def existing_entries(cur: psycopg.AsyncCursor[Any], entry_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Links]:
    """Trail entries by entry id, with the query columns entries referring to them inherit."""
    ids = list(set(entry_ids))
    if not ids:
        return {}
    await cur.execute(
        "SELECT entry_id, fund_doc_no, project_id, payment_id, contract_id, vendor_id, region_code"
        " FROM trail_entry WHERE entry_id = ANY(%s)",
        (ids,),
    )
    return {r[0]: Links(*r[1:]) for r in await cur.fetchall()}


async def trail_frontier(cur: psycopg.AsyncCursor[Any], size: int) -> CompactRange:
    """The frontier of the first `size` leaves, read from trail_node (at most log2(size)+1 rows)."""
    ids = [node_id(s, e) for s, e in range_decomposition(0, size)]
    if not ids:
        return CompactRange()
    await cur.execute(NODES_SQL, node_params(ids))
    return CompactRange.from_frontier(size, hashes_in_order(ids, await cur.fetchall()))


# ----------------------------------------------------------------------------- dedup and parking


async def request_seen_ids(
    conn: psycopg.AsyncConnection[Any], ids: Iterable[uuid.UUID]
) -> Result[tuple[set[uuid.UUID], set[uuid.UUID]]]:
    """Which of these event ids were already accepted, and which are parked (sent now, read later)."""
    wanted = list(set(ids))
    if not wanted:
        return _ready((set(), set()))

    def parse(rows: list[Any]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
        processed: set[uuid.UUID] = set()
        parked: set[uuid.UUID] = set()
        for is_processed, eid in rows:
            (processed if is_processed else parked).add(eid)
        return processed, parked

    return await _request(
        conn,
        "WITH ids(id) AS (SELECT unnest(%b::uuid[]))"
        " SELECT true, id FROM ids JOIN processed_event p ON p.event_id = ids.id"
        " UNION ALL SELECT false, id FROM ids JOIN parked_event k ON k.event_id = ids.id",
        (wanted,),
        parse,
    )


async def request_business_keys(
    conn: psycopg.AsyncConnection[Any], keys: Iterable[str]
) -> Result[dict[str, uuid.UUID]]:
    """Business keys already recorded, and the event that recorded each (sent now, read later)."""
    wanted = list(set(keys))
    if not wanted:
        return _ready({})
    return await _request(
        conn, "SELECT business_key, event_id FROM processed_event WHERE business_key = ANY(%s)", (wanted,),
        lambda rows: {r[0]: r[1] for r in rows},
    )


def _parked(rows: Iterable[tuple[Any, ...]]) -> list[ParkedRow]:
    return [
        ParkedRow(r[0], r[1], bytes(r[2]), bytes(r[3]) if r[3] is not None else None, r[4], r[5], r[6], r[7])
        for r in rows
    ]


async def request_parked_waiting_for(
    conn: psycopg.AsyncConnection[Any], waiting: Iterable[str]
) -> Result[list[ParkedRow]]:
    """Parked events waiting for any of these references, oldest first (sent now, read later)."""
    wanted = list(set(waiting))
    if not wanted:
        return _ready([])
    return await _request(
        conn,
        f"SELECT {_PARKED_COLS} FROM parked_event WHERE waiting_for = ANY(%s) ORDER BY parked_at, event_id",
        (wanted,),
        _parked,
    )


async def parked_due(cur: psycopg.AsyncCursor[Any], cutoff: datetime, limit: int) -> list[ParkedRow]:
    """Parked events that waited past the cutoff, or whose fund has meanwhile become known."""
    await cur.execute(
        f"SELECT {_PARKED_COLS} FROM parked_event p WHERE p.parked_at <= %s"
        " OR EXISTS (SELECT 1 FROM fund f WHERE 'fund:' || f.fund_doc_no = p.waiting_for)"
        " ORDER BY p.parked_at, p.event_id LIMIT %s",
        (cutoff, limit),
    )
    return _parked(await cur.fetchall())


async def park(cur: psycopg.AsyncCursor[Any], rows: Sequence[ParkedRow]) -> None:
    """Park events (a redelivered one is already there: nothing changes)."""
    if rows:
        await cur.execute(_INSERT_PARKED, (json_param([
            {"event_id": r.event_id, "waiting_for": r.waiting_for, "raw": bytea_text(r.raw),
             "raw_key": bytea_text(r.raw_key), "parked_at": r.parked_at, "source_partition": r.source_partition,
             "source_offset": r.source_offset, "trace_headers": r.trace_headers}
            for r in rows
        ]),))


async def unpark(cur: psycopg.AsyncCursor[Any], ids: Sequence[uuid.UUID]) -> None:
    """Remove parked events that were decided (accepted or rejected)."""
    if ids:
        await cur.execute("DELETE FROM parked_event WHERE event_id = ANY(%s)", (list(ids),))


# ----------------------------------------------------------------------------- the ledger


async def request_ledger(conn: psycopg.AsyncConnection[Any], keys: LedgerKeys) -> Result[Ledger]:
    """The rows a batch touches, as a `Ledger` slice (one query per table, sent now, read later)."""
    ledger = Ledger()
    parts: list[Result[None]] = []

    def funds(rows: list[Any]) -> None:
        for fund, title, purpose, allocated, deadline, allocated_at, region, prov in rows:
            state = Fund(fund, True, Category(purpose) if purpose else None, allocated, deadline, allocated_at)
            ledger.funds[fund] = FundRecord(state, title, region, dict(prov or {}))

    def positions(rows: list[Any]) -> None:
        for r in rows:
            ledger.positions[(r[0], r[1], r[2])] = Position(r[0], Level(r[1]), *r[2:])

    def projects(rows: list[Any]) -> None:
        for pid, fund, state, settlement, prov in rows:
            ledger.projects[pid] = ProjectRecord(from_json(Project, state), fund, settlement, dict(prov or {}))

    def contracts(rows: list[Any]) -> None:
        for cid, pid, fund, state in rows:
            ledger.contracts[cid] = ContractRecord(from_json(Contract, state), pid, fund)

    def vendors(rows: list[Any]) -> None:
        for vid, count, awarded, paid in rows:
            ledger.vendors[vid] = Vendor(vid, count, awarded, paid)

    def invoices(rows: list[Any]) -> None:
        for invoice, payment in rows:
            ledger.invoices.setdefault(invoice, []).append(payment)

    if keys.funds:
        parts.append(await _request(
            conn,
            "SELECT fund_doc_no, title, purpose_category, allocated_fen, deadline, allocated_at, region_code,"
            " provenance FROM fund WHERE fund_doc_no = ANY(%s)",
            (list(keys.funds),), funds,
        ))
    if keys.positions:
        cols = list(zip(*keys.positions, strict=True))
        parts.append(await _request(
            conn,
            "SELECT fund_doc_no, level, region_code, received_fen, passed_down_fen, paid_fen, returned_fen,"
            " contracted_fen, first_received_at, last_outflow_at FROM fund_position"
            " WHERE (fund_doc_no, level, region_code) IN (SELECT * FROM unnest(%b::text[], %b::text[], %b::text[]))",
            (list(cols[0]), list(cols[1]), list(cols[2])), positions,
        ))
    if keys.projects:
        parts.append(await _request(
            conn,
            "SELECT project_id, fund_doc_no, state, settlement_amount_fen, provenance FROM project"
            " WHERE project_id = ANY(%s)",
            (list(keys.projects),), projects,
        ))
    if keys.contracts:
        parts.append(await _request(
            conn,
            "SELECT contract_id, project_id, fund_doc_no, state FROM contract WHERE contract_id = ANY(%s)",
            (list(keys.contracts),), contracts,
        ))
    if keys.vendors:
        parts.append(await _request(
            conn,
            "SELECT vendor_id, awards_count, awarded_fen, paid_fen FROM vendor_stats WHERE vendor_id = ANY(%s)",
            (list(keys.vendors),), vendors,
        ))
    if keys.invoices:
        parts.append(await _request(conn, INVOICE_PAYMENTS_SQL, (list(keys.invoices),), invoices))

    async def result() -> Ledger:
        for part in parts:
            await part()
        return ledger

    return result


_FUND_COLUMNS = (
    ("fund_doc_no", "text"), ("title", "text"), ("purpose_category", "text"), ("allocated_fen", "bigint"),
    ("deadline", "date"), ("allocated_at", "timestamptz"), ("region_code", "text"), ("provenance", "jsonb"),
)
_POSITION_COLUMNS = (
    ("fund_doc_no", "text"), ("level", "text"), ("region_code", "text"), ("received_fen", "bigint"),
    ("passed_down_fen", "bigint"), ("paid_fen", "bigint"), ("returned_fen", "bigint"), ("contracted_fen", "bigint"),
    ("first_received_at", "timestamptz"), ("last_outflow_at", "timestamptz"),
)
_PROJECT_COLUMNS = (
    ("project_id", "text"), ("fund_doc_no", "text"), ("state", "jsonb"), ("region_code", "text"),
    ("settlement_amount_fen", "bigint"), ("provenance", "jsonb"),
)
_CONTRACT_COLUMNS = (
    ("contract_id", "text"), ("project_id", "text"), ("fund_doc_no", "text"), ("vendor_id", "text"),
    ("state", "jsonb"),
)
_VENDOR_COLUMNS = (("vendor_id", "text"), ("awards_count", "int"), ("awarded_fen", "bigint"), ("paid_fen", "bigint"))
# Every changed ledger row in ONE statement (one parameter, one Bind/Execute): a data-modifying CTE
# per table, each reading its part of the JSON document. The tables have no foreign keys between
# them, so the parts are independent.
_LEDGER_TABLES = (
    ("fund", ("fund_doc_no",), _FUND_COLUMNS),
    ("fund_position", ("fund_doc_no", "level", "region_code"), _POSITION_COLUMNS),
    ("project", ("project_id",), _PROJECT_COLUMNS),
    ("contract", ("contract_id",), _CONTRACT_COLUMNS),
    ("vendor_stats", ("vendor_id",), _VENDOR_COLUMNS),
)


def _ledger_sql() -> str:
    parts = []
    for table, key, cols in _LEDGER_TABLES:
        names = ", ".join(name for name, _ in cols)
        typed = ", ".join(f"{name} {t}" for name, t in cols)
        parts.append(
            f"w_{table} AS (INSERT INTO {table} ({names}) SELECT {names}"
            f" FROM json_to_recordset((SELECT j -> '{table}' FROM doc)) AS r({typed}) {upsert_suffix(key, cols)})"
        )
    return f"WITH doc(j) AS (SELECT %s::json), {', '.join(parts)} SELECT 1"


_WRITE_LEDGER = _ledger_sql()


async def write_ledger(cur: psycopg.AsyncCursor[Any], ledger: Ledger) -> None:
    """Upsert every changed row with its new absolute values (the trail lock serializes writers), all
    tables in one statement. States go as the dataclasses themselves: orjson writes them exactly as
    `state.dumps` does, nested in the document, never as JSON text inside JSON.

    New payments are not written here but by `insert_payments`."""
    doc: dict[str, list[Any]] = {}  # rows: dicts, or dataclasses whose fields are the columns
    if ledger.dirty_funds:
        doc["fund"] = [
            {"fund_doc_no": r.state.fund_doc_no, "title": r.title, "purpose_category": r.state.purpose_category,
             "allocated_fen": r.state.allocated_fen, "deadline": r.state.deadline,
             "allocated_at": r.state.allocated_at, "region_code": r.region_code, "provenance": r.provenance}
            for f in sorted(ledger.dirty_funds)
            for r in (ledger.funds[f],)
        ]
    if ledger.dirty_positions:
        # Position's fields are the columns, named alike: the dataclass is the row.
        doc["fund_position"] = [ledger.positions[k] for k in sorted(ledger.dirty_positions)]
    if ledger.dirty_projects:
        doc["project"] = [
            {"project_id": p, "fund_doc_no": r.fund_doc_no, "state": r.state, "region_code": r.state.region_code,
             "settlement_amount_fen": r.settlement_amount_fen, "provenance": r.provenance}
            for p in sorted(ledger.dirty_projects)
            for r in (ledger.projects[p],)
        ]
    if ledger.dirty_contracts:
        doc["contract"] = [
            {"contract_id": c, "project_id": r.project_id, "fund_doc_no": r.fund_doc_no,
             "vendor_id": r.state.vendor_id, "state": r.state}
            for c in sorted(ledger.dirty_contracts)
            for r in (ledger.contracts[c],)
        ]
    if ledger.dirty_vendors:
        doc["vendor_stats"] = [ledger.vendors[v] for v in sorted(ledger.dirty_vendors)]
    if doc:
        await cur.execute(_WRITE_LEDGER, (json_param(doc),))


async def insert_payments(cur: psycopg.AsyncCursor[Any], ledger: Ledger) -> None:
    """The batch's new payments (apart from `write_ledger`: a duplicate payment id must fail before
    any output leaves)."""
    if ledger.new_payments:
        # A Payment's fields are the payment table's columns, named alike.
        await cur.execute(_INSERT_PAYMENTS, (json_param(ledger.new_payments),))


async def insert_processed(cur: psycopg.AsyncCursor[Any], rows: Sequence[ProcessedRow]) -> None:
    """Record accepted events; a concurrent duplicate fails the transaction (UniqueViolation)."""
    if rows:
        await cur.execute(_INSERT_PROCESSED, (json_param([
            {"event_id": r.event_id, "sequence": r.sequence, "event_type": r.event_type,
             "fund_doc_no": r.fund_doc_no, "project_id": r.project_id, "region_code": r.region_code,
             "level": r.level, "occurred_at": r.occurred_at, "accepted_at": r.accepted_at,
             # Already JSON: nested as it is, stored as it is (json keeps the text).
             "payload": orjson.Fragment(r.payload), "state_after": orjson.Fragment(r.state_after),
             "trace_id": r.trace_id, "source_partition": r.source_partition, "source_offset": r.source_offset,
             "business_key": r.business_key}
            for r in rows
        ]),))


async def insert_checkpoint(
    cur: psycopg.AsyncCursor[Any], *, tree_size: int, root_hash: str, signed_at: datetime, log_id: str,
    key_id: str, signature: str, note: str,
) -> bool:
    """Store a signed tree head; False when one for this size exists already."""
    await cur.execute(
        "INSERT INTO trail_checkpoint (tree_size, root_hash, signed_at, log_id, key_id, signature, note)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tree_size) DO NOTHING",
        (tree_size, root_hash, signed_at, log_id, key_id, signature, note),
    )
    return cur.rowcount == 1


async def checkpoints_without_note(cur: psycopg.AsyncCursor[Any]) -> list[tuple[int, str, str]]:
    """(tree_size, root_hash, log_id) of checkpoints stored before migration 0006 (no signed note)."""
    await cur.execute("SELECT tree_size, root_hash, log_id FROM trail_checkpoint WHERE note IS NULL ORDER BY 1")
    return [(int(r[0]), str(r[1]), str(r[2])) for r in await cur.fetchall()]


async def set_checkpoint_note(
    cur: psycopg.AsyncCursor[Any], *, tree_size: int, log_id: str, key_id: str, signature: str, note: str
) -> None:
    """Attach the signed note to a checkpoint stored in the old format."""
    await cur.execute(
        "UPDATE trail_checkpoint SET log_id = %s, key_id = %s, signature = %s, note = %s"
        " WHERE tree_size = %s AND note IS NULL",
        (log_id, key_id, signature, note, tree_size),
    )


async def insert_cosignature(
    cur: psycopg.AsyncCursor[Any], *, tree_size: int, witness_name: str, key_hash: str, cosigned_at: datetime,
    line: str, recorded_at: datetime,
) -> bool:
    """Store a witness cosignature; a newer one from the same witness replaces an older one."""
    await cur.execute(
        "INSERT INTO trail_cosignature (tree_size, witness_name, key_hash, cosigned_at, line, recorded_at)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tree_size, witness_name, key_hash) DO UPDATE"
        " SET cosigned_at = EXCLUDED.cosigned_at, line = EXCLUDED.line, recorded_at = EXCLUDED.recorded_at"
        " WHERE trail_cosignature.cosigned_at < EXCLUDED.cosigned_at",
        (tree_size, witness_name, key_hash, cosigned_at, line, recorded_at),
    )
    return cur.rowcount == 1


async def latest_checkpoint_size(cur: psycopg.AsyncCursor[Any]) -> int | None:
    """Tree size of the newest checkpoint."""
    await cur.execute("SELECT max(tree_size) FROM trail_checkpoint")
    row = await cur.fetchone()
    return row[0] if row else None


async def trail_size(cur: psycopg.AsyncCursor[Any]) -> int:
    """Number of committed trail entries."""
    return await (await request_trail_size(cur.connection))()


async def request_trail_size(conn: psycopg.AsyncConnection[Any]) -> Result[int]:
    """`trail_size`, sent now and read later."""
    return await _request(
        conn, "SELECT seq FROM trail_entry ORDER BY seq DESC LIMIT 1", (),
        lambda rows: 0 if not rows else rows[0][0] + 1,
    )
