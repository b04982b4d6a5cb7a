"""The service layer: one batch of records → one PostgreSQL transaction → produced results.

Order of work for a batch (at-least-once without loss or double counting):
1. validate every record (pure);
2. in one transaction, holding the trail's advisory lock: dedup, load the ledger slice, decide the
   batch (pure), append the trail, write the processed events (the idempotency keys);
3. still inside the transaction, produce enriched events and dead letters, write the ledger rows
   and parking while the broker acknowledges them (acks=all), wait for every ack; only then commit;
4. the caller acks the records (their offsets get committed) only after `handle_*` returned.
A crash before 3 finishes leaves nothing behind; a crash between 3 and the commit only repeats
outputs (consumers dedup by event id); a crash after the commit makes the redelivered records
duplicates that change nothing.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry.trace import Span, Status, StatusCode
from pydantic import ValidationError

from fundtrail_schemas.checkpoint import Checkpoint, sign_checkpoint
from fundtrail_schemas.cosignatures import CheckpointCosigned
from fundtrail_schemas.decode import FieldError, ReasonCode, Rejection
from fundtrail_schemas.events import (
    CASE_EVENTS,
    FundAllocated,
    ViolationRaised,
    event_key,
    now_utc,
)
from fundtrail_schemas.note import NoteError
from fundtrail_schemas.topics import HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION, HEADER_SOURCE_TOPIC, raw_topic_region
from fundtrail_schemas.worker import BatchPhases

from .adapters import postgres as pg
from .adapters.kafka import Inbound, Record, Sink, trace_headers
from .adapters.metrics import Metrics
from .adapters.tracing import context_headers, process_span, publish_span, span_trace_id
from .core.batch import Candidate, Rejected, Snapshot, Source, plan_batch, waiting_key
from .core.ledger import Ledger, keys_of
from .core.outputs import dead_letter_json, enriched_json
from .core.provenance import check_provenance
from .core.trail import TrailDraft, case_item, event_item, subjects_of, violation_item
from .core.validation import Valid, business_key, decode_message, undecodable
from .topics import TrackerTopics

log = logging.getLogger(__name__)
T = TypeVar("T")

# Violations and case actions are dated by the services that produce them, not by bureaus.
_NO_SKEW_LIMIT = timedelta(days=36500)
_RETRYABLE = (psycopg.OperationalError, psycopg.InterfaceError)
# A unique violation that survives this many fresh attempts is not a race but a bad event.
_UNIQUE_RETRIES = 3
# Every case action of the contract's lifecycle (fundtrail_schemas.cases) enters the trail as
# submitted, applied or not (REFUSED_ACTIONS_ENTER_TRAIL): compliance decides, after us.
_CaseEvent = CASE_EVENTS


@dataclass
class BatchResult:
    """What one batch did."""

    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    parked: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class PreparedBatch:
    """A validated batch waiting for its transaction."""

    messages: list[Inbound]
    now: datetime
    started: float
    candidates: list[Candidate] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    spans: dict[int, Span] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackerConfig:
    """The parts of the settings the service layer reads."""

    group: str = "fundtrail-tracker"
    max_future_skew: timedelta = timedelta(minutes=10)
    park_timeout: timedelta = timedelta(hours=24)
    sweep_limit: int = 1000
    log_id: str = "fundtrail/trail"
    topics: TrackerTopics = field(default_factory=TrackerTopics)


PHASES = ("decode", "read", "decide", "trail", "write", "produce", "commit")


class Phases(BatchPhases):
    """fund-tracker's batch phases, exported as `fundtrail_tracker_phase_{,cpu_}seconds_total`."""

    def __init__(self, metrics: Metrics | None) -> None:
        super().__init__(PHASES, *((metrics.phase_seconds, metrics.phase_cpu_seconds) if metrics else ()))


class _Outputs:
    """Records produced inside a batch transaction; all awaited before the commit."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._queued: list[Record] = []
        self._pending: list[Awaitable[Any]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self._queued.append((topic, key, value, headers))

    async def flush(self) -> None:
        """Hand what is queued to the producer (record batches, in order); delivery is awaited later."""
        if self._queued:
            records, self._queued = self._queued, []
            self._pending += await self._sink.send_many(records)

    async def delivered(self) -> None:
        await self.flush()
        if self._pending:
            await asyncio.gather(*self._pending)


def _event_headers(event_type: str, schema_version: int) -> list[tuple[str, bytes]]:
    return [(HEADER_EVENT_TYPE, event_type.encode()), (HEADER_SCHEMA_VERSION, str(schema_version).encode())]


class Tracker:
    """fund-tracker's unit of work for raw events, trail inputs, parked events and checkpoints."""

    def __init__(
        self,
        database_url: str,
        sink: Sink,
        *,
        config: TrackerConfig,
        signing_key: Ed25519PrivateKey | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._url = database_url
        self._sink = sink
        self._config = config
        self._key = signing_key
        self._metrics = metrics
        self._clock = clock
        self._conns: dict[str, psycopg.AsyncConnection[Any]] = {}
        self._head = pg.TrailHead()
        self._topics = config.topics
        self.phases = Phases(metrics)

    # ------------------------------------------------------------------ plumbing

    async def close(self) -> None:
        """Close every database connection."""
        for conn in self._conns.values():
            await conn.close()
        self._conns.clear()

    async def _conn(self, role: str) -> psycopg.AsyncConnection[Any]:
        conn = self._conns.get(role)
        if conn is None or conn.closed:
            conn = self._conns[role] = await pg.connect(self._url)
        return conn

    async def _transaction(
        self, role: str, work: Callable[[psycopg.AsyncCursor[Any]], Awaitable[T]], *, pipelined: bool = False
    ) -> T:
        """Run `work` in one transaction; retry on lost connections, broker errors and concurrent dedup races.

        `pipelined`: the transaction runs in pipeline mode, so BEGIN travels with the first
        statements instead of costing a round trip of its own (`work` must fetch what it reads).
        """
        delay = 0.2
        unique_failures = 0
        while True:
            try:
                conn = await self._conn(role)
                async with conn.pipeline() if pipelined else nullcontext(), conn.transaction(), conn.cursor() as cur:
                    return await work(cur)
            except psycopg.errors.UniqueViolation as exc:
                # Another replica accepted one of these events first: decide the batch again.
                unique_failures += 1
                if unique_failures > _UNIQUE_RETRIES:
                    raise
                log.warning("concurrent write on %s, retrying the batch: %s", role, exc.diag.message_primary)
            except _RETRYABLE as exc:
                log.warning("database unavailable (%s), retrying in %.1fs", exc, delay)
                await self._drop(role)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception as exc:
                if _is_kafka_error(exc):
                    log.warning("broker did not acknowledge (%r), retrying the batch in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                raise

    async def _drop(self, role: str) -> None:
        conn = self._conns.pop(role, None)
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                log.debug("closing a broken connection failed", exc_info=True)

    def _count(self, topic: str, result: BatchResult, seconds: float, size: int) -> None:
        m = self._metrics
        if m is None:
            return
        for outcome in ("accepted", "rejected", "duplicates", "parked"):
            n = getattr(result, outcome)
            if n:
                m.events.labels(topic, outcome.rstrip("s")).inc(n)
        for reason, n in result.rejected_reasons.items():
            m.rejections.labels(topic, reason).inc(n)
        m.batch_seconds.labels(topic).observe(seconds)
        m.batch_size.labels(topic).observe(size)

    # ------------------------------------------------------------------ raw events

    async def handle_raw(self, messages: Sequence[Inbound]) -> BatchResult:
        """Validate, dedup, apply and record one batch of raw events; produce its outputs."""
        return await self.commit_raw(self.prepare_raw(messages))

    def prepare_raw(self, messages: Sequence[Inbound]) -> PreparedBatch:
        """The CPU-only first stage: spans, validation and trail leaves (needs no database)."""
        started, cpu = time.perf_counter(), time.thread_time()
        now = self._clock()
        batch = PreparedBatch(list(messages), now, started)
        for m in messages:
            headers = trace_headers(m.headers)
            source = Source(m.topic, m.partition, m.offset, m.key, m.value or b"", headers)
            span = batch.spans[id(source)] = process_span(m.topic, m.partition, m.offset, headers)
            try:
                result, hint = decode_message(m.value, now=now, max_future_skew=self._config.max_future_skew)
                if not isinstance(result, Rejection):
                    hint = result.event.event_id
                    result = check_provenance(result, raw_topic_region(m.topic, self._topics.prefix))
            except Exception as exc:  # one record that breaks decoding must not stop its partition
                log.exception("record %s[%d]@%d could not be decoded; dead-lettered", m.topic, m.partition, m.offset)
                result, hint = undecodable(exc), None
            if isinstance(result, Rejection):
                batch.rejected.append(Rejected(source, result, hint))
                span.set_status(Status(StatusCode.ERROR, result.reason.value))
            else:
                # The trail draft is made in the transaction: its leaf carries the ledger state around it.
                batch.candidates.append(Candidate(source, result))
        self.phases.add("decode", time.perf_counter() - started, time.thread_time() - cpu)
        return batch

    async def commit_raw(self, batch: PreparedBatch) -> BatchResult:
        """The second stage: one transaction, outputs produced and acknowledged, then commit."""
        self.phases.start()
        try:
            result = await self._raw_batch(batch)
        except (psycopg.DataError, psycopg.errors.IntegrityError) as exc:
            if len(batch.messages) == 1:
                result = await self._unstorable(batch.messages[0], exc, batch.now)
            else:
                # One event PostgreSQL refuses must not block the others: decide them one by one.
                log.warning("batch of %d refused by the database (%s); isolating", len(batch.messages), exc)
                result = BatchResult()
                for m in batch.messages:
                    _merge(result, await self.handle_raw([m]))
                return result
        finally:
            for span in batch.spans.values():
                span.end()
        self._count(self._topics.raw, result, time.perf_counter() - batch.started, len(batch.messages))
        return result

    async def _unstorable(self, message: Inbound, exc: Exception, now: datetime) -> BatchResult:
        rejection = Rejection(
            ReasonCode.INVALID_FIELD,
            f"the event cannot be stored: {exc}",
            (FieldError("(event)", "refused by the database"),),
        )
        source = Source(message.topic, message.partition, message.offset, message.key, message.value or b"",
                        trace_headers(message.headers))

        async def work(cur: psycopg.AsyncCursor[Any]) -> BatchResult:
            out = _Outputs(self._sink)
            await self._dead_letter(out, Rejected(source, rejection, None), now)
            await out.delivered()
            return BatchResult(rejected=1, rejected_reasons={rejection.reason.value: 1})

        return await self._transaction("raw", work)

    async def _raw_batch(self, batch: PreparedBatch) -> BatchResult:
        frontier_box: list[Any] = []

        async def work(cur: psycopg.AsyncCursor[Any]) -> BatchResult:
            frontier_box.clear()
            return await self._raw_tx(cur, batch.candidates, batch.rejected, batch.now, batch.spans, frontier_box,
                                      phases=self.phases)

        result = await self._transaction("raw", work, pipelined=True)
        self.phases.lap("commit")
        if frontier_box:
            self._head.adopt(frontier_box[0])
            if self._metrics is not None:
                self._metrics.trail_size.set(frontier_box[0].size)
        return result

    def _from_parking(self, row: pg.ParkedRow, now: datetime) -> Candidate | Rejected:
        headers = dict(row.trace_headers or {})
        topic = headers.pop(HEADER_SOURCE_TOPIC, self._topics.raw)  # parked with its headers (below)
        source = Source(
            topic, row.source_partition or 0, row.source_offset or 0, row.raw_key, row.raw, headers,
            parked_at=row.parked_at,
        )
        decoded, hint = decode_message(row.raw, now=now, max_future_skew=_NO_SKEW_LIMIT)
        if isinstance(decoded, Rejection):
            return Rejected(source, decoded, hint or row.event_id)
        return Candidate(source, decoded)

    async def _raw_tx(
        self,
        cur: psycopg.AsyncCursor[Any],
        candidates: list[Candidate],
        pre_rejected: list[Rejected],
        now: datetime,
        spans: dict[int, Span],
        frontier_box: list[Any],
        *,
        from_parking: list[pg.ParkedRow] | None = None,
        phases: Phases | None = None,
    ) -> BatchResult:
        phases = phases or Phases(None)
        rejected = list(pre_rejected)
        released: dict[str, list[Candidate]] = defaultdict(list)
        allocations = {waiting_key(c.valid.event.fund_doc_no) for c in candidates
                       if isinstance(c.valid.event, FundAllocated)}
        extra_parked: set[uuid.UUID] = set()
        direct: list[Candidate] = list(candidates)
        # Swept-up parked events are decided like fresh ones; parked events an allocation in this
        # batch releases are decided right after that allocation.
        for row in from_parking or []:
            extra_parked.add(row.event_id)
            c = self._from_parking(row, now)
            if isinstance(c, Rejected):
                rejected.append(c)
            else:
                direct.append(c)
        conn = cur.connection
        # Every read of the batch goes out in one pipeline (one round trip, not one per table),
        # behind the lock: each statement's snapshot is taken after the previous writer committed.
        async with conn.pipeline():
            await pg.lock_trail(cur)
            size = await pg.request_trail_size(conn)
            waiting = await pg.request_parked_waiting_for(conn, allocations)
            reads = await _request_reads(conn, direct)
            for row in await waiting():
                extra_parked.add(row.event_id)
                c = self._from_parking(row, now)
                if isinstance(c, Rejected):
                    rejected.append(c)
                else:
                    released[row.waiting_for.removeprefix("fund:")].append(c)
            if released:  # rare: the released events' own rows are needed too
                reads = await _request_reads(conn, direct + [c for cs in released.values() for c in cs])
            heads_read = await pg.request_trail_heads(conn, subjects_of(
                event_item(c.valid.event, c.valid.payload, None)
                for c in [*direct, *(c for cs in released.values() for c in cs)]
            ))
            processed, parked, known_keys, ledger = await reads()
            tree_size = await size()
            heads = await heads_read()
        snapshot = Snapshot(ledger=ledger, processed=processed, business_keys=known_keys, parked=parked | extra_parked)
        phases.lap("read")
        plan = plan_batch(direct, snapshot, now=now, park_timeout=self._config.park_timeout, released=released)
        rejected += plan.rejected
        for r in rejected:
            if r.source.from_parking and r.event_id is not None and r.event_id not in plan.unpark:
                plan.unpark.append(r.event_id)

        accepted_spans: list[Span] = []
        leaves: list[TrailDraft] = []
        for a in plan.accepted:
            src = a.candidate.source
            span = spans.get(id(src))
            if span is None:
                span = spans[id(src)] = process_span(src.topic, src.partition, src.offset, src.trace_headers)
            accepted_spans.append(span)
            leaves.append(event_item(a.candidate.valid.event, a.candidate.valid.payload, span_trace_id(span),
                                     a.transition.before_json, a.transition.after_json, src.publisher))

        phases.lap("decide")
        frontier = await self._head.load(cur, tree_size)
        rows: list[pg.ProcessedRow] = []
        enriched: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []
        # The writes a concurrent replica can make fail (unique event id, business key, payment id)
        # go first, in one pipeline (one round trip) with the trail entries: nothing leaves for a
        # batch that is decided again.
        async with cur.connection.pipeline():
            sealed, nodes = await pg.append_trail_entries(cur, frontier, leaves, now, heads)
            phases.lap("trail")
            for a, item, span in zip(plan.accepted, sealed, accepted_spans, strict=True):
                seq = item.seq
                ev = a.candidate.valid.event
                after = a.transition.after_json
                before = a.transition.before_json
                rows.append(pg.ProcessedRow(
                    event_id=ev.event_id, sequence=seq, event_type=ev.event_type, fund_doc_no=ev.fund_doc_no,
                    project_id=ev.project_id, region_code=ev.region_code, level=ev.level.value,
                    occurred_at=ev.occurred_at, accepted_at=now, payload=a.candidate.valid.payload.decode(),
                    state_after=after.decode(), trace_id=item.draft.trace_id,
                    source_partition=a.candidate.source.partition, source_offset=a.candidate.source.offset,
                    business_key=a.business_key,
                ))
                value = enriched_json(a.candidate.valid.payload, seq, now, before, after, item.draft.trace_id)
                headers = _event_headers(ev.event_type, ev.schema_version) + context_headers(span)
                headers.append((HEADER_SOURCE_TOPIC, a.candidate.source.topic.encode()))  # its provenance
                enriched.append((event_key(ev), value, headers))
            await pg.insert_processed(cur, rows)
            await pg.insert_payments(cur, snapshot.ledger)
        phases.lap("write")

        out = _Outputs(self._sink)
        span = publish_span(self._topics.enriched, len(enriched))
        try:
            for key, value, headers in enriched:
                await out.send(self._topics.enriched, key, value, headers)
            reasons: dict[str, int] = defaultdict(int)
            for r in rejected:
                await self._dead_letter(out, r, now)
                reasons[r.rejection.reason.value] += 1
            await out.flush()
            phases.lap("produce")
            # The broker replicates and acknowledges while the remaining writes run, all in one
            # pipeline (one round trip). If one of them fails, the retry recomputes the same outputs
            # from the same rows (same states, same sequence numbers), so what was already sent is
            # repeated identically and deduplicated.
            async with cur.connection.pipeline():
                await pg.write_trail_nodes(cur, nodes)
                await pg.write_ledger(cur, snapshot.ledger)
                await pg.park(cur, [
                    pg.ParkedRow(
                        p.candidate.event_id, p.waiting_for, p.candidate.source.value, p.candidate.source.key, now,
                        p.candidate.source.partition, p.candidate.source.offset,
                        {**p.candidate.source.trace_headers, HEADER_SOURCE_TOPIC: p.candidate.source.topic},
                    )
                    for p in plan.to_park
                ])
                await pg.unpark(cur, plan.unpark)
            phases.lap("write")
            await out.delivered()
        finally:
            span.end()
        phases.lap("produce")
        frontier_box.append(frontier)
        return BatchResult(
            accepted=len(plan.accepted), rejected=len(rejected), duplicates=plan.duplicates,
            parked=len(plan.to_park), rejected_reasons=dict(reasons),
        )

    async def _dead_letter(self, out: _Outputs, r: Rejected, now: datetime) -> None:
        src = r.source
        value = dead_letter_json(
            r.rejection, value=src.value, key=src.key, topic=src.topic, partition=src.partition,
            offset=src.offset, at=now, event_id=r.event_id,
        )
        headers = [(k, v.encode("latin-1")) for k, v in src.trace_headers.items()]
        await out.send(self._topics.dead_letters, src.key, value, headers)

    # ------------------------------------------------------------------ parked events

    async def sweep_parked(self) -> BatchResult:
        """Decide parked events that waited too long, or whose fund arrived meanwhile."""
        started = time.perf_counter()
        now = self._clock()
        frontier_box: list[Any] = []
        spans: dict[int, Span] = {}

        async def work(cur: psycopg.AsyncCursor[Any]) -> BatchResult:
            frontier_box.clear()
            due = await pg.parked_due(cur, now - self._config.park_timeout, self._config.sweep_limit)
            if not due:
                return BatchResult()
            return await self._raw_tx(cur, [], [], now, spans, frontier_box, from_parking=due)

        try:
            result = await self._transaction("sweep", work)
        finally:
            for span in spans.values():
                span.end()
        if frontier_box:
            self._head.adopt(frontier_box[0])
        if result.accepted or result.rejected:
            self._count(self._topics.raw, result, time.perf_counter() - started, result.accepted + result.rejected)
        return result

    # ------------------------------------------------------------------ violations and cases

    async def handle_trail(self, messages: Sequence[Inbound]) -> BatchResult:
        """Append violations and case actions to the trail (each entry once)."""
        started = time.perf_counter()
        now = self._clock()
        valid: list[tuple[Inbound, Valid, Span]] = []
        rejected: list[Rejected] = []
        spans: list[Span] = []
        for m in messages:
            headers = trace_headers(m.headers)
            span = process_span(m.topic, m.partition, m.offset, headers)
            spans.append(span)
            source = Source(m.topic, m.partition, m.offset, m.key, m.value or b"", headers)
            try:
                decoded, hint = decode_message(m.value, now=now, max_future_skew=_NO_SKEW_LIMIT, source_only=False)
                if not isinstance(decoded, Rejection):
                    decoded = self._fits_topic(m.topic, decoded)
            except Exception as exc:  # one record that breaks decoding must not stop its partition
                log.exception("record %s[%d]@%d could not be decoded; dead-lettered", m.topic, m.partition, m.offset)
                decoded, hint = undecodable(exc), None
            if isinstance(decoded, Rejection):
                rejected.append(Rejected(source, decoded, hint))
                span.set_status(Status(StatusCode.ERROR, decoded.reason.value))
            else:
                valid.append((m, decoded, span))
        frontier_box: list[Any] = []

        async def work(cur: psycopg.AsyncCursor[Any]) -> BatchResult:
            frontier_box.clear()
            await pg.lock_trail(cur)
            wanted: list[uuid.UUID] = []
            for _, v, _ in valid:
                ev = v.event
                if isinstance(ev, ViolationRaised):
                    wanted += [ev.violation_id, ev.triggering_event_id]
                elif isinstance(ev, _CaseEvent):
                    wanted += [ev.event_id, ev.violation_id]
            known = await pg.existing_entries(cur, wanted)
            items: list[TrailDraft] = []
            duplicates = 0
            for _, v, span in valid:
                ev = v.event
                trace_id = span_trace_id(span)
                if isinstance(ev, ViolationRaised):
                    if ev.violation_id in known:
                        duplicates += 1
                        continue
                    item = violation_item(ev, v.payload, trace_id, known.get(ev.triggering_event_id))
                elif isinstance(ev, _CaseEvent):
                    if ev.event_id in known:
                        duplicates += 1
                        continue
                    item = case_item(ev, ev.violation_id, v.payload, trace_id, known.get(ev.violation_id))
                else:
                    continue
                known[item.entry_id] = item.links
                items.append(item)
            heads = await (await pg.request_trail_heads(cur.connection, subjects_of(items)))()
            frontier = await self._head.load(cur)
            await pg.append_trail(cur, frontier, items, now, heads)
            out = _Outputs(self._sink)
            reasons: dict[str, int] = defaultdict(int)
            for r in rejected:
                await self._dead_letter(out, r, now)
                reasons[r.rejection.reason.value] += 1
            await out.delivered()
            frontier_box.append(frontier)
            return BatchResult(accepted=len(items), rejected=len(rejected), duplicates=duplicates,
                               rejected_reasons=dict(reasons))

        try:
            result = await self._transaction("trail", work, pipelined=True)
        finally:
            for span in spans:
                span.end()
        if frontier_box:
            self._head.adopt(frontier_box[0])
            if self._metrics is not None:
                self._metrics.trail_size.set(frontier_box[0].size)
        self._count(messages[0].topic if messages else self._topics.violations, result,
                    time.perf_counter() - started, len(messages))
        return result

    def _fits_topic(self, topic: str, valid: Valid) -> Valid | Rejection:
        ev = valid.event
        if topic == self._topics.violations and isinstance(ev, ViolationRaised):
            return valid
        if topic == self._topics.cases and isinstance(ev, _CaseEvent):
            return valid
        return Rejection(
            ReasonCode.NOT_ALLOWED_HERE,
            f"{ev.event_type} does not belong on {topic}",
            (FieldError("event_type", f"not a {topic} event"),),
        )

    # ------------------------------------------------------------------ checkpoints

    async def checkpoint(self) -> Checkpoint | None:
        """Sign the current tree head unless it is already signed; None when there is nothing new."""
        if self._key is None:
            raise RuntimeError("no signing key configured")
        key = self._key

        async def work(cur: psycopg.AsyncCursor[Any]) -> Checkpoint | None:
            size = await pg.trail_size(cur)
            if size == 0 or await pg.latest_checkpoint_size(cur) == size:
                return None
            frontier = await pg.trail_frontier(cur, size)
            cp = sign_checkpoint(key, self._config.log_id, size, frontier.root(), self._clock())
            stored = await pg.insert_checkpoint(
                cur, tree_size=cp.tree_size, root_hash=cp.root_hash, signed_at=cp.timestamp, log_id=cp.log_id,
                **_note_columns(cp),
            )
            return cp if stored else None

        cp = await self._transaction("checkpoint", work)
        if self._metrics is not None:
            # Signed now or already signed: the head is covered (the checkpoint-age alert reads this).
            self._metrics.last_checkpoint.set(time.time())
            if cp is not None:
                self._metrics.checkpoints.inc()
        return cp

    async def resign_legacy_checkpoints(self) -> int:
        """Sign, as C2SP notes, the checkpoints stored before migration 0006; returns how many.

        Each stored root is first recomputed from the Merkle nodes: the key only ever signs a root
        the log itself holds. A mismatch is logged and that row is left without a note (not served).
        """
        if self._key is None:
            raise RuntimeError("no signing key configured")
        key = self._key

        async def work(cur: psycopg.AsyncCursor[Any]) -> int:
            done = 0
            for size, root_hash, old_log_id in await pg.checkpoints_without_note(cur):
                root = (await pg.trail_frontier(cur, size)).root()
                if root.hex() != root_hash:
                    log.error("checkpoint %d (log %s) stores root %s but the nodes give %s: not re-signed",
                              size, old_log_id, root_hash, root.hex())
                    continue
                cp = sign_checkpoint(key, self._config.log_id, size, root, self._clock())
                await pg.set_checkpoint_note(cur, tree_size=size, log_id=cp.log_id, **_note_columns(cp))
                done += 1
            return done

        return await self._transaction("checkpoint", work)

    async def store_cosignatures(self, records: Sequence[bytes]) -> int:
        """Store witness cosignature records (published by the gateway); malformed ones are logged and skipped."""
        parsed: list[CheckpointCosigned] = []
        for raw in records:
            try:
                record = CheckpointCosigned.model_validate_json(raw)
                record.signature()
            except (ValidationError, NoteError) as exc:
                log.error("skipping a malformed cosignature record: %s", exc)
                continue
            parsed.append(record)
        if not parsed:
            return 0
        now = self._clock()

        async def work(cur: psycopg.AsyncCursor[Any]) -> int:
            stored = 0
            for r in parsed:
                stored += await pg.insert_cosignature(
                    cur, tree_size=r.tree_size, witness_name=r.witness_name, key_hash=r.key_hash,
                    cosigned_at=r.cosigned_at, line=r.line, recorded_at=now,
                )
            return stored

        return await self._transaction("checkpoint", work)


def _note_columns(cp: Checkpoint) -> dict[str, str]:
    """The note and, for the old columns, its log signature's key hash and base64 signature."""
    sig = cp.parsed_note().signatures[0]
    return {
        "key_id": f"{sig.key_hash:08x}",
        "signature": base64.b64encode(sig.signature).decode("ascii"),
        "note": cp.note,
    }


async def _request_reads(
    conn: psycopg.AsyncConnection[Any], candidates: Sequence[Candidate]
) -> Callable[[], Awaitable[tuple[set[uuid.UUID], set[uuid.UUID], dict[str, uuid.UUID], Ledger]]]:
    """Send what deciding `candidates` reads: seen ids, recorded business keys, the ledger slice."""
    bks = [bk[0] for c in candidates if (bk := business_key(c.valid.event)) is not None]
    seen = await pg.request_seen_ids(conn, [c.event_id for c in candidates])
    keys = await pg.request_business_keys(conn, bks)
    # Rows of events that turn out to be duplicates are read too: cheaper than a second round trip.
    ledger = await pg.request_ledger(conn, keys_of(c.valid.event for c in candidates))

    async def result() -> tuple[set[uuid.UUID], set[uuid.UUID], dict[str, uuid.UUID], Ledger]:
        processed, parked = await seen()
        return processed, parked, await keys(), await ledger()

    return result


def _merge(into: BatchResult, part: BatchResult) -> None:
    into.accepted += part.accepted
    into.rejected += part.rejected
    into.duplicates += part.duplicates
    into.parked += part.parked
    for k, v in part.rejected_reasons.items():
        into.rejected_reasons[k] = into.rejected_reasons.get(k, 0) + v


def _is_kafka_error(exc: BaseException) -> bool:
    from aiokafka.errors import KafkaError

    return isinstance(exc, KafkaError)
