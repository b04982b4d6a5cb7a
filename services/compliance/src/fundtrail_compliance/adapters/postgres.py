"""PostgreSQL adapter: the dedup table, violations, case history, engine state and rule history.

One transaction per batch, pipelined; a batch's writes go in one statement fed by one JSON document
and one binary array of the kept records (`write_batch`), not one statement per table or row.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from fundtrail_runtime.db import connect_worker
from fundtrail_runtime.db import conninfo as conninfo  # re-exported: callers import it from here
from fundtrail_schemas.events import ViolationRaised
from fundtrail_schemas.eventspec import message_key
from fundtrail_schemas.rulepack import Rule

from ..core.engine import LATE_REASON, EngineState, Judged, Refutable
from ..core.helpers import parse_time
from ..core.timers import Timer
from ..core.windows import WindowEntry

# One row per partition of the enriched topic: its latest event time (see core/timers.py).
PARTITION_CLOCK = "partition/"
# Window entries older than this before the watermark are not loaded (no window is that long).
WINDOW_HORIZON = timedelta(days=400)


def rule_sha256(rule: Rule) -> str:
    """Content hash of one rule version: everything but `effective_until`, which may be set once to
    close a version when the next one starts."""
    content = rule.model_dump(mode="json", exclude={"effective_until"})
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """A violation as recorded (what replay compares against)."""

    violation_id: uuid.UUID
    rule_id: str
    rule_version: int
    triggering_event_id: uuid.UUID
    severity: str
    status: str
    occurred_at: datetime
    evidence: dict[str, Any]


class ComplianceStore:
    """Async access to the compliance tables over one connection."""

    # Reference rows of transactions from this id on may not have been read yet (see reference_since).
    reference_horizon: int = 0

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def open(self) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = await connect_worker(self._url, "fundtrail-compliance")

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def connection(self) -> psycopg.AsyncConnection[Any]:
        """The store's connection, opened again if it was closed (units of work run on it)."""
        await self.open()
        assert self._conn is not None
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncCursor[Any]]:
        """One transaction; rolled back if the block raises."""
        await self.open()
        assert self._conn is not None
        async with self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    @asynccontextmanager
    async def pipelined_transaction(self) -> AsyncIterator[tuple[psycopg.AsyncCursor[Any], psycopg.AsyncPipeline]]:
        """One transaction in pipeline mode: statements are sent without waiting for their results,
        so BEGIN, the writes and COMMIT cost a round trip at each `sync()` or fetch, not one each."""
        await self.open()
        assert self._conn is not None
        async with self._conn.pipeline() as pipeline, self._conn.transaction(), self._conn.cursor() as cur:
            yield cur, pipeline

    # --- state --------------------------------------------------------------------------------

    async def load_state(
        self, state: EngineState, owned: Collection[int] | None = None, owns: Callable[[str], bool] | None = None
    ) -> None:
        """Fill an empty engine state from the database (start-up, a new assignment, a failed batch).

        With `owned` (the enriched-topic partitions this worker holds) only their clocks are read and
        the watermark is their minimum; with `owns` (is this fund on an owned partition) only those
        funds' timers and refutable violations: another replica fires and refutes the others.
        """
        async with self.transaction() as cur:
            await cur.execute("SELECT name, at FROM compliance_watermark WHERE name LIKE %s", (PARTITION_CLOCK + "%",))
            clocks = {int(name[len(PARTITION_CLOCK):]): at for name, at in await cur.fetchall()}
            state.clock.restore(None, {p: at for p, at in clocks.items() if owned is None or p in owned})
            state.clock.assign(owned)  # the minimum over those partitions, never a maximum over replicas
            await cur.execute(
                "SELECT timer_id, rule_id, rule_ref, subject, fund_doc_no, level, region_code, trigger_event_id,"
                " started_at, due_at, days, snapshot, trace_id, status FROM compliance_timer WHERE status = 'pending'"
            )
            state.timers.load(Timer(*r) for r in await cur.fetchall() if owns is None or owns(r[4]))
            since = (state.clock.watermark - WINDOW_HORIZON) if state.clock.watermark else None
            await cur.execute(
                "SELECT rule_id, window_key, event_id, at, amount_fen FROM compliance_window_entry"
                " WHERE %s::timestamptz IS NULL OR at >= %s",
                (since, since),
            )
            state.windows.load(
                (rule_id, tuple(json.loads(key)), WindowEntry(str(eid), at, amount))
                for rule_id, key, eid, at, amount in await cur.fetchall()
            )
            # The horizon first: every transaction below it has ended, so what it wrote is read now.
            await cur.execute(_HORIZON)
            horizon = (await cur.fetchone() or (0,))[0]
            await cur.execute("SELECT record FROM compliance_reference ORDER BY occurred_at, event_id")
            for (record,) in await cur.fetchall():
                state.reference.apply(record, record=False)
            self.reference_horizon = horizon
            await cur.execute(
                "SELECT violation_id, rule_ref, fund_doc_no, occurred_at, deadline, evidence FROM compliance_refutable"
            )
            for r in await cur.fetchall():
                if owns is None or owns(r[2]):
                    state.add_refutable(Refutable(*r), record=False)
            # After the reference data: each day's view is rebuilt from it (the view a judged event
            # was last judged on is the one committed with it).
            await cur.execute("SELECT vendor_id, day, event_id, occurred_at, record, raised FROM compliance_judged")
            for vendor, on, eid, at, record, raised in await cur.fetchall():
                # Only the owner of an event's partition judges it again (and publishes what that raises).
                if owns is None or owns(enriched_key(orjson.loads(record)["event"])):
                    state.note_judged(vendor, on, str(eid), Judged(at, record, set(raised)), record=False)

    async def load_books(self, owns: Callable[[str], bool] | None = None) -> tuple[
        dict[str, Any], list[tuple[str, str, datetime, datetime, bool, bytes]], dict[str, tuple[set[str], set[str]]]
    ]:
        """What `Engine.restore_books` rebuilds the owned funds' books from: their snapshots, their
        stored events in arrival order, and per event the rule refs raised on it and those resolved
        by late evidence (the engine's own resolutions)."""
        async with self.transaction() as cur:
            await cur.execute("SELECT fund_doc_no, state FROM compliance_book_fund")
            snaps = {f: s for f, s in await cur.fetchall() if owns is None or owns(f)}
            await cur.execute(
                "SELECT fund_doc_no, event_id, occurred_at, keep_at, folded, record FROM compliance_book_event"
                " ORDER BY seq"
            )
            records = [(f, str(e), a, k, fo, bytes(r)) for f, e, a, k, fo, r in await cur.fetchall()
                       if owns is None or owns(f)]
            await cur.execute(
                "SELECT v.triggering_event_id, v.rule_id || '@' || v.rule_version, EXISTS (SELECT 1 FROM case_action c"
                "  WHERE c.violation_id = v.violation_id AND c.outcome = 'applied' AND c.payload->>'reason' = %s)"
                " FROM violation v JOIN compliance_book_event b ON b.event_id = v.triggering_event_id",
                (LATE_REASON,),
            )
            verdicts: dict[str, tuple[set[str], set[str]]] = {}
            for eid, ref, resolved in await cur.fetchall():
                raised, gone = verdicts.setdefault(str(eid), (set(), set()))
                (gone if resolved else raised).add(ref)
        return snaps, records, verdicts

    async def reference_since(self) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
        """Send (inside the open transaction) the read of reference data written by transactions that
        may have committed since the last look: other replicas', and our own, which apply again as no
        change. Await the returned function for the records.

        In pipeline mode both statements go with the batch's first round trip. The horizon is taken
        first, so nothing that commits between the two statements is skipped next time."""
        assert self._conn is not None
        horizon_cur, rows_cur = self._conn.cursor(), self._conn.cursor()
        await horizon_cur.execute(_HORIZON)
        await rows_cur.execute(
            "SELECT record FROM compliance_reference WHERE txid >= %s ORDER BY occurred_at, event_id",
            (self.reference_horizon,),
        )

        async def result() -> list[dict[str, Any]]:
            try:
                row = await horizon_cur.fetchone()
                rows = await rows_cur.fetchall()
            finally:
                await horizon_cur.close()
                await rows_cur.close()
            if row is not None:
                self.reference_horizon = row[0]
            return [r[0] for r in rows]

        return result

    async def processed(
        self, cur: psycopg.AsyncCursor[Any], event_ids: Sequence[uuid.UUID], pack_version: str
    ) -> set[uuid.UUID]:
        """Which of these events were evaluated already under this rule-pack set."""
        if not event_ids:
            return set()
        await cur.execute(
            "SELECT event_id FROM compliance_processed WHERE event_id = ANY(%s) AND pack_version = %s",
            (list(event_ids), pack_version),
        )
        return {r[0] for r in await cur.fetchall()}

    async def write_batch(
        self,
        cur: psycopg.AsyncCursor[Any],
        processed: Sequence[tuple[uuid.UUID, int]],
        violations: Sequence[ViolationRaised],
        state: EngineState,
        now: datetime,
        pack_version: str = "",
    ) -> None:
        """Dedup rows, violations and every state change of a batch (inside the caller's transaction), in
        ONE statement (`_WRITE_BATCH`): its rows travel as one JSON document (serialized in C by orjson,
        where psycopg adapted each element of a dozen arrays in the client) and the kept records as one
        binary bytea array."""
        windows = state.windows.drain()
        timers = state.timers.drain()
        refs = state.reference.drain()
        added, closed = state.drain_refutables()
        judged, judged_kept_from = state.drain_judged()
        book_added, book_swept, book_dropped = state.drain_books()
        # Only the partitions' clocks: a watermark saved by each replica would be a maximum over them.
        clocks = sorted(state.clock.drain().items())
        if not (processed or violations or windows or timers or refs or added or closed or judged
                or judged_kept_from is not None or clocks or book_added or book_swept or book_dropped):
            return
        # One statement's sub-statements all see the snapshot before it: what a later step removed
        # (a refutable closed, a judged day dropped) is left out of the inserts instead.
        gone = set(closed)
        if judged_kept_from is not None:
            judged = [j for j in judged if j[1] >= judged_kept_from]
        doc = {
            "now": now, "pv": pack_version, "pvn": pack_version or None,
            "p": [{"e": eid, "n": n} for eid, n in processed],
            "v": [_violation_doc(v) for v in violations],
            "w": [{"r": rid, "k": json.dumps(list(key), ensure_ascii=False), "e": e.event_id, "a": e.at,
                   "f": e.amount_fen} for rid, key, e in windows],
            "t": [_timer_doc(t) for t in timers],
            "x": [{"e": str(e["event_id"]), "k": kind, "vd": e["vendor_id"], "a": parse_time(e["occurred_at"]),
                   "r": e} for kind, e in refs],
            "ra": [{"v": r.violation_id, "r": r.rule_ref, "f": r.fund_doc_no, "a": r.occurred_at, "d": r.deadline,
                    "ev": r.values} for r in added if r.violation_id not in gone],
            "rc": closed,
            "j": [{"e": eid, "vd": vendor, "d": on, "a": j.at, "raised": sorted(j.raised)}
                  for vendor, on, eid, j in judged],
            "jk": judged_kept_from,
            "c": [{"n": f"{PARTITION_CLOCK}{p}", "a": at} for p, at in clocks],
            "b": [{"e": r.event_id, "f": r.fund, "a": r.at, "k": r.keep_at, "fo": r.folded, "n": len(judged) + i + 1}
                  for i, r in enumerate(book_added)],
            # Each swept fund's snapshot, and what its horizon and fold let go of the rows already stored.
            "bf": [{"f": f, "s": state.books[f].snapshot()} for f in book_swept if f in state.books],
            "bx": [{"f": f, "h": h, "fo": fo} for f, (h, fo) in book_swept.items()],
            "bd": sorted(book_dropped - set(book_swept)),
        }
        records = [j.doc if isinstance(j.doc, bytes) else orjson.dumps(j.doc) for _, _, _, j in judged]
        records += [r.doc if isinstance(r.doc, bytes) else orjson.dumps(r.doc) for r in book_added]
        await cur.execute(_WRITE_BATCH, (orjson.dumps(doc, default=_jsonable).decode(), records))

    # --- cases --------------------------------------------------------------------------------

    async def case_actions_known(self, cur: psycopg.AsyncCursor[Any], ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        await cur.execute("SELECT event_id FROM case_action WHERE event_id = ANY(%s)", (list(ids),))
        return {r[0] for r in await cur.fetchall()}

    async def lock_statuses(self, cur: psycopg.AsyncCursor[Any], ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        await cur.execute(
            "SELECT violation_id, status FROM violation WHERE violation_id = ANY(%s) FOR UPDATE", (list(set(ids)),)
        )
        return {r[0]: r[1] for r in await cur.fetchall()}

    async def record_case(
        self,
        cur: psycopg.AsyncCursor[Any],
        event: Any,
        action: str,
        outcome: str,
        from_status: str | None,
        to_status: str | None,
        reason: str | None,
        now: datetime,
        trace_id: str | None,
    ) -> None:
        await cur.execute(
            "INSERT INTO case_action (event_id, violation_id, action, actor, at, payload, trace_id, outcome,"
            " from_status, to_status, reason, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (event_id) DO NOTHING",
            (event.event_id, event.violation_id, action, event.actor, event.occurred_at,
             Jsonb(event.model_dump(mode="json")), trace_id, outcome, from_status, to_status, reason, now),
        )
        if outcome != "applied":
            return
        # Assignee and due date come with an assignment, or optionally with an acknowledgement.
        assignee, due = getattr(event, "assignee", None), getattr(event, "due_date", None)
        await cur.execute(
            "UPDATE violation SET status_changed_at = CASE WHEN status = %s THEN status_changed_at ELSE %s END,"
            " status = %s, assignee = COALESCE(%s, assignee), due_date = COALESCE(%s, due_date)"
            " WHERE violation_id = %s",
            (to_status, event.occurred_at, to_status, assignee, due, event.violation_id),
        )

    # --- rule history -------------------------------------------------------------------------

    async def changed_versions(self, rules: Sequence[Rule]) -> list[str]:
        """Rule versions whose recorded content differs from these (history must not be rewritten)."""
        if not rules:
            return []
        async with self.transaction() as cur:
            await cur.execute(
                "SELECT rule_id, version, content_sha256, effective_until FROM rule_version WHERE rule_id = ANY(%s)",
                (list({r.id for r in rules}),),
            )
            recorded = {(r[0], r[1]): (r[2], r[3]) for r in await cur.fetchall()}
        changed = []
        for r in rules:
            if (r.id, r.version) not in recorded:
                continue
            sha, until = recorded[(r.id, r.version)]
            if sha != rule_sha256(r) or (until is not None and until != r.effective_until):
                changed.append(r.ref)
        return changed

    async def record_pack_load(
        self,
        *,
        department: str | None,
        pack_version: int | None,
        source: str,
        text: str,
        status: str,
        error: str | None,
        rules: Sequence[Rule],
        now: datetime,
    ) -> None:
        """Keep every load attempt, and every newly seen rule version."""
        async with self.transaction() as cur:
            await cur.execute(
                "INSERT INTO rule_pack_load (department, pack_version, source, sha256, status, error, loaded_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (department, pack_version, source[:500], hashlib.sha256(text.encode()).hexdigest(), status, error,
                 now),
            )
            if status == "accepted" and rules:
                await cur.executemany(
                    "INSERT INTO rule_version (rule_id, version, department, content_sha256, content, effective_from,"
                    " effective_until, first_loaded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (rule_id, version) DO UPDATE SET effective_until = EXCLUDED.effective_until,"
                    " content = EXCLUDED.content WHERE rule_version.effective_until IS NULL",
                    [(r.id, r.version, r.id.split(".", 1)[0], rule_sha256(r), Jsonb(r.model_dump(mode="json")),
                      r.effective_from, r.effective_until, now) for r in rules],
                )

    # --- replay -------------------------------------------------------------------------------

    async def verdicts(self, start: datetime | None, end: datetime | None) -> list[Verdict]:
        """Violations recorded for triggering events that occurred in [start, end)."""
        async with self.transaction() as cur:
            await cur.execute(
                "SELECT violation_id, rule_id, rule_version, triggering_event_id, severity, status, occurred_at,"
                " evidence FROM violation WHERE (%s::timestamptz IS NULL OR occurred_at >= %s)"
                " AND (%s::timestamptz IS NULL OR occurred_at < %s)",
                (start, start, end, end),
            )
            return [Verdict(*r) for r in await cur.fetchall()]


# A batch's writes in one statement: the first parameter is the JSON document `write_batch` builds, the second
# parameter the kept records (bytea, in the order of "j"). Sub-statements see one snapshot, so none
# reads another's rows; each table's rules (ON CONFLICT) are those the per-table statements had.
_WRITE_BATCH = """
WITH d AS (SELECT %b::text::jsonb AS j, %b::bytea[] AS recs),
processed AS (
  INSERT INTO compliance_processed (event_id, pack_version, evaluated_at, violations)
  SELECT r.e, d.j->>'pv', (d.j->>'now')::timestamptz, r.n FROM d, jsonb_to_recordset(d.j->'p') AS r(e uuid, n int)
  ON CONFLICT (event_id, pack_version) DO NOTHING),
violations AS (
  INSERT INTO violation (violation_id, rule_id, rule_version, department, severity, status, triggering_event_id,
    fund_doc_no, project_id, region_code, occurred_at, raised_at, status_changed_at, explanation_zh,
    explanation_en, legal_basis, evidence, payload, trace_id, pack_version)
  SELECT (r.payload->>'violation_id')::uuid, r.payload->>'rule_id', (r.payload->>'rule_version')::int,
    r.payload->>'department', r.payload->>'severity', 'raised', (r.payload->>'triggering_event_id')::uuid,
    r.payload->>'fund_doc_no', r.payload->>'project_id', r.payload->>'region_code',
    (r.payload->>'occurred_at')::timestamptz, (d.j->>'now')::timestamptz, (d.j->>'now')::timestamptz,
    r.payload->>'explanation_zh', r.payload->>'explanation_en', r.payload->>'legal_basis', r.payload->'evidence',
    r.payload, r.payload->>'trace_id', d.j->>'pvn'
  FROM d, jsonb_to_recordset(d.j->'v') AS r(payload jsonb)
  ON CONFLICT (violation_id) DO NOTHING),
windows AS (
  INSERT INTO compliance_window_entry (rule_id, window_key, event_id, at, amount_fen)
  SELECT r.r, r.k, r.e, r.a, r.f
  FROM d, jsonb_to_recordset(d.j->'w') AS r(r text, k text, e uuid, a timestamptz, f bigint)
  ON CONFLICT DO NOTHING),
timers AS (
  INSERT INTO compliance_timer (timer_id, rule_id, rule_ref, subject, fund_doc_no, level, region_code,
    trigger_event_id, started_at, due_at, days, snapshot, trace_id, status)
  SELECT r.i, r.r, r.rr, r.s, r.f, r.l, r.rc, r.te, r.sa, r.da, r.dy, r.sn, r.tr, r.st
  FROM d, jsonb_to_recordset(d.j->'t') AS r(i uuid, r text, rr text, s text, f text, l text, rc text, te uuid,
    sa timestamptz, da timestamptz, dy int, sn jsonb, tr text, st text)
  ON CONFLICT (timer_id) DO UPDATE SET snapshot = EXCLUDED.snapshot,
    status = CASE WHEN compliance_timer.status = 'fired' THEN 'fired' ELSE EXCLUDED.status END),
refs AS (
  INSERT INTO compliance_reference (event_id, kind, vendor_id, occurred_at, record)
  SELECT r.e, r.k, r.vd, r.a, r.r
  FROM d, jsonb_to_recordset(d.j->'x') AS r(e uuid, k text, vd text, a timestamptz, r jsonb)
  ON CONFLICT (event_id) DO NOTHING),
refutables AS (
  INSERT INTO compliance_refutable (violation_id, rule_ref, fund_doc_no, occurred_at, deadline, evidence)
  SELECT r.v, r.r, r.f, r.a, r.d, r.ev
  FROM d, jsonb_to_recordset(d.j->'ra') AS r(v uuid, r text, f text, a timestamptz, d timestamptz, ev jsonb)
  ON CONFLICT (violation_id) DO NOTHING),
closed AS (
  DELETE FROM compliance_refutable WHERE violation_id IN (
    SELECT x::uuid FROM d, jsonb_array_elements_text(d.j->'rc') AS x)),
judged AS (
  INSERT INTO compliance_judged (event_id, vendor_id, day, occurred_at, record, raised)
  SELECT r.e, r.vd, r.d, r.a, d.recs[r.n],
    ARRAY(SELECT x::uuid FROM jsonb_array_elements_text(r.raised) AS x)
  FROM d, ROWS FROM (jsonb_to_recordset(d.j->'j') AS (e uuid, vd text, d date, a timestamptz, raised jsonb))
    WITH ORDINALITY AS r(e, vd, d, a, raised, n)
  ON CONFLICT (event_id) DO UPDATE SET raised = EXCLUDED.raised),
dropped AS (
  DELETE FROM compliance_judged WHERE day < (SELECT (d.j->>'jk')::date FROM d)),
book_events AS (
  INSERT INTO compliance_book_event (event_id, fund_doc_no, occurred_at, keep_at, folded, record)
  SELECT r.e, r.f, r.a, r.k, r.fo, d.recs[r.n]
  FROM d, jsonb_to_recordset(d.j->'b') AS r(e uuid, f text, a timestamptz, k timestamptz, fo boolean, n int)
  ORDER BY r.n  -- `seq`, the arrival order the book is replayed in
  ON CONFLICT (event_id) DO NOTHING),
book_funds AS (
  INSERT INTO compliance_book_fund (fund_doc_no, state)
  SELECT r.f, r.s FROM d, jsonb_to_recordset(d.j->'bf') AS r(f text, s jsonb)
  ON CONFLICT (fund_doc_no) DO UPDATE SET state = EXCLUDED.state),
book_forgotten AS (
  DELETE FROM compliance_book_event b USING d, jsonb_to_recordset(d.j->'bx') AS r(f text, h timestamptz, fo timestamptz)
  WHERE b.fund_doc_no = r.f AND b.occurred_at < r.fo AND b.keep_at < r.h),
book_folded AS (
  UPDATE compliance_book_event b SET folded = true
  FROM d, jsonb_to_recordset(d.j->'bx') AS r(f text, h timestamptz, fo timestamptz)
  WHERE b.fund_doc_no = r.f AND b.occurred_at < r.fo AND b.keep_at >= r.h AND NOT b.folded),
book_dropped_events AS (
  DELETE FROM compliance_book_event WHERE fund_doc_no IN (
    SELECT x FROM d, jsonb_array_elements_text(d.j->'bd') AS x)),
book_dropped_funds AS (
  DELETE FROM compliance_book_fund WHERE fund_doc_no IN (
    SELECT x FROM d, jsonb_array_elements_text(d.j->'bd') AS x)),
clocks AS (
  INSERT INTO compliance_watermark (name, at)
  SELECT r.n, r.a FROM d, jsonb_to_recordset(d.j->'c') AS r(n text, a timestamptz)
  ON CONFLICT (name) DO UPDATE SET at = GREATEST(compliance_watermark.at, EXCLUDED.at))
SELECT 1
"""


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _violation_doc(v: ViolationRaised) -> dict[str, Any]:
    # The published payload as it is (already serialized); the columns are read from it in SQL.
    return {"payload": orjson.Fragment(v.model_dump_json())}


def _timer_doc(t: Timer) -> dict[str, Any]:
    return {"i": t.timer_id, "r": t.rule_id, "rr": t.rule_ref, "s": t.subject, "f": t.fund_doc_no, "l": t.level,
            "rc": t.region_code, "te": t.trigger_event_id, "sa": t.started_at, "da": t.due_at, "dy": t.days,
            "sn": t.snapshot, "tr": t.trace_id, "st": t.status}


# The oldest transaction still running: every one below it has committed or rolled back.
_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


def enriched_key(event: Mapping[str, Any]) -> str:
    """The message key of an enriched event (as `fundtrail_schemas.events.event_key` gives it)."""
    return message_key(event)
