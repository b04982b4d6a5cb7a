"""PostgreSQL adapter: the dedup table, violations, case history, engine state and rule history.

One transaction per batch, pipelined; a batch's rows go in one statement per table over arrays
(`unnest_insert`), not one execution per row.
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

from fundtrail_runtime.db import array_literal, columns, connect_worker, unnest_insert
from fundtrail_runtime.db import conninfo as conninfo  # re-exported: callers import it from here
from fundtrail_schemas.events import ViolationRaised
from fundtrail_schemas.eventspec import message_key
from fundtrail_schemas.rulepack import Rule

from ..core.engine import EngineState, Judged, Refutable
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
        """Dedup rows, violations and every state change of a batch (inside the caller's transaction)."""
        windows = state.windows.drain()
        timers = state.timers.drain()
        refs = state.reference.drain()
        added, closed = state.drain_refutables()
        judged, judged_kept_from = state.drain_judged()
        if processed:
            await cur.execute(
                "INSERT INTO compliance_processed (event_id, pack_version, evaluated_at, violations)"
                " SELECT e, %b, %b::timestamptz, n FROM unnest(%b::uuid[], %b::int[]) AS u(e, n)"
                " ON CONFLICT (event_id, pack_version) DO NOTHING",
                (pack_version, now, [eid for eid, _ in processed], [n for _, n in processed]),
            )
        if violations:
            await cur.execute(_INSERT_VIOLATIONS, columns(_violation_row(v, now, pack_version) for v in violations))
        if windows:
            await cur.execute(_INSERT_WINDOW_ENTRIES, (
                [rid for rid, _, _ in windows],
                [json.dumps(list(key), ensure_ascii=False) for _, key, _ in windows],
                [uuid.UUID(e.event_id) for _, _, e in windows],
                [e.at for _, _, e in windows],
                [e.amount_fen for _, _, e in windows],
            ))
        if timers:  # drained by id: no timer twice in the statement (ON CONFLICT would refuse it)
            await cur.execute(_UPSERT_TIMERS, columns(_timer_row(t) for t in timers))
        if refs:
            await cur.execute(_INSERT_REFERENCE, columns(
                (uuid.UUID(str(e["event_id"])), kind, e["vendor_id"], parse_time(e["occurred_at"]), _json(e))
                for kind, e in refs
            ))
        if added:
            await cur.execute(_INSERT_REFUTABLES, columns(
                (r.violation_id, r.rule_ref, r.fund_doc_no, r.occurred_at, r.deadline, _json(r.values))
                for r in added
            ))
        if closed:
            await cur.execute("DELETE FROM compliance_refutable WHERE violation_id = ANY(%b::uuid[])", (closed,))
        if judged:
            await cur.execute(_UPSERT_JUDGED, columns(
                (uuid.UUID(eid), vendor, on, j.at, j.doc if isinstance(j.doc, bytes) else orjson.dumps(j.doc),
                 array_literal(j.raised))
                for vendor, on, eid, j in judged
            ))
        if judged_kept_from is not None:
            await cur.execute("DELETE FROM compliance_judged WHERE day < %b", (judged_kept_from,))
        # Only the partitions' clocks: a watermark saved by each replica would be a maximum over them.
        clocks = [(f"{PARTITION_CLOCK}{p}", at) for p, at in sorted(state.clock.drain().items())]
        if clocks:
            await cur.execute(_UPSERT_CLOCKS, columns(clocks))

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


_INSERT_VIOLATIONS = unnest_insert("violation", (
    ("violation_id", "uuid"), ("rule_id", "text"), ("rule_version", "int"), ("department", "text"),
    ("severity", "text"), ("status", "text"), ("triggering_event_id", "uuid"), ("fund_doc_no", "text"),
    ("project_id", "text"), ("region_code", "text"), ("occurred_at", "timestamptz"), ("raised_at", "timestamptz"),
    ("status_changed_at", "timestamptz"), ("explanation_zh", "text"), ("explanation_en", "text"),
    ("legal_basis", "text"), ("evidence", "jsonb"), ("payload", "jsonb"), ("trace_id", "text"),
    ("pack_version", "text"),
)) + " ON CONFLICT (violation_id) DO NOTHING"
_INSERT_WINDOW_ENTRIES = unnest_insert("compliance_window_entry", (
    ("rule_id", "text"), ("window_key", "text"), ("event_id", "uuid"), ("at", "timestamptz"), ("amount_fen", "bigint"),
)) + " ON CONFLICT DO NOTHING"
_UPSERT_TIMERS = unnest_insert("compliance_timer", (
    ("timer_id", "uuid"), ("rule_id", "text"), ("rule_ref", "text"), ("subject", "text"), ("fund_doc_no", "text"),
    ("level", "text"), ("region_code", "text"), ("trigger_event_id", "uuid"), ("started_at", "timestamptz"),
    ("due_at", "timestamptz"), ("days", "int"), ("snapshot", "jsonb"), ("trace_id", "text"), ("status", "text"),
)) + (
    " ON CONFLICT (timer_id) DO UPDATE SET snapshot = EXCLUDED.snapshot,"
    " status = CASE WHEN compliance_timer.status = 'fired' THEN 'fired' ELSE EXCLUDED.status END"
)
_INSERT_REFERENCE = unnest_insert("compliance_reference", (
    ("event_id", "uuid"), ("kind", "text"), ("vendor_id", "text"), ("occurred_at", "timestamptz"), ("record", "jsonb"),
)) + " ON CONFLICT (event_id) DO NOTHING"
_INSERT_REFUTABLES = unnest_insert("compliance_refutable", (
    ("violation_id", "uuid"), ("rule_ref", "text"), ("fund_doc_no", "text"), ("occurred_at", "timestamptz"),
    ("deadline", "timestamptz"), ("evidence", "jsonb"),
)) + " ON CONFLICT (violation_id) DO NOTHING"
# A judged event is written when first judged and again when a late re-judging raised more on it.
_UPSERT_JUDGED = unnest_insert("compliance_judged", (
    ("event_id", "uuid"), ("vendor_id", "text"), ("day", "date"), ("occurred_at", "timestamptz"),
    ("record", "bytea"), ("raised", "uuid[]"),
)) + " ON CONFLICT (event_id) DO UPDATE SET raised = EXCLUDED.raised"
# The oldest transaction still running: every one below it has committed or rolled back.
_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


def enriched_key(event: Mapping[str, Any]) -> str:
    """The message key of an enriched event (as `fundtrail_schemas.events.event_key` gives it)."""
    return message_key(event)


# A partition's clock and the watermark only move forward, whatever order batches commit in.
_UPSERT_CLOCKS = unnest_insert("compliance_watermark", (("name", "text"), ("at", "timestamptz"))) + (
    " ON CONFLICT (name) DO UPDATE SET at = GREATEST(compliance_watermark.at, EXCLUDED.at)"
)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _violation_row(v: ViolationRaised, now: datetime, pack_version: str) -> tuple[Any, ...]:
    return (
        v.violation_id, v.rule_id, v.rule_version, v.department.value, v.severity.value, "raised",
        v.triggering_event_id, v.fund_doc_no, v.project_id, v.region_code, v.occurred_at, now, now,
        v.explanation_zh, v.explanation_en, v.legal_basis, v.evidence.model_dump_json(), v.model_dump_json(),
        v.trace_id, pack_version or None,
    )


def _timer_row(t: Timer) -> tuple[Any, ...]:
    return (
        t.timer_id, t.rule_id, t.rule_ref, t.subject, t.fund_doc_no, t.level, t.region_code, t.trigger_event_id,
        t.started_at, t.due_at, t.days, _json(t.snapshot), t.trace_id, t.status,
    )
