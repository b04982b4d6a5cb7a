"""The service layer: one batch of records → one worker transaction → produced results.

A raw batch is validated first (pure, `prepare_raw`), then runs as one unit of work
(`fundtrail_runtime.unit_of_work`: outputs acknowledged before the commit, retries) in four steps,
all holding the trail's advisory lock:
1. read: dedup ids, business keys, the ledger slice, parked events an allocation releases, the
   trail's size and chain heads (one pipeline, one round trip);
2. decide: the batch plan (pure) and the trail leaves of the accepted events;
3. append: the trail entries, the processed events (the idempotency keys) and payments: the writes a
   concurrent replica can make fail go first, so nothing leaves for a batch that is decided again;
4. write: enriched events and dead letters are handed to the producer (acks=all) and the trail
   nodes, ledger rows and parking written while the broker acknowledges them; every ack is awaited,
   then the transaction commits.
The caller acks the records (their offsets get committed) only after `handle_*` returned. A crash
before the commit leaves nothing behind but repeated outputs (consumers dedup by event id); a crash
after the commit makes the redelivered records duplicates that change nothing.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry.trace import Span, Status, StatusCode
from pydantic import ValidationError

from fundtrail_runtime.kafka_records import dead_letter
from fundtrail_runtime.unit_of_work import Transaction, UnitOfWork
from fundtrail_runtime.worker import BatchPhases
from fundtrail_schemas.decode import FieldError, ReasonCode, Rejection
from fundtrail_schemas.events import (
    CASE_EVENTS,
    FundAllocated,
    ViolationRaised,
    event_key,
    now_utc,
)
from fundtrail_schemas.headers import SOURCE_HEADERS, event_headers, trace_context, trace_headers
from fundtrail_schemas.ledger import Ledger, keys_of
from fundtrail_schemas.topics import HEADER_SOURCE_TOPIC, raw_topic_region
from fundtrail_verify.checkpoint import Checkpoint, sign_checkpoint
from fundtrail_verify.cosignatures import CheckpointCosigned
from fundtrail_verify.merkle import CompactRange
from fundtrail_verify.note import NoteError

from .adapters import postgres as pg
from .adapters.kafka import Inbound, Record, Sink
from .adapters.metrics import Metrics
from .adapters.tracing import context_headers, process_span, publish_span, span_trace_id
from .core.batch import BatchPlan, Candidate, Rejected, Snapshot, Source, plan_batch, waiting_key
from .core.outputs import SERVICE, enriched_json
from .core.provenance import check_provenance
from .core.trail import Heads, TrailDraft, case_item, event_item, subjects_of, violation_item
from .core.validation import Valid, business_key, decode_message, undecodable
from .topics import TrackerTopics

log = logging.getLogger(__name__)

# Violations and case actions are dated by the services that produce them, not by bureaus.
_NO_SKEW_LIMIT = timedelta(days=36500)
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


class Spans:
    """The processing span of each record of a batch (by its `Source`), all ended with the batch."""

    def __init__(self) -> None:
        self._by_source: dict[int, Span] = {}

    def start(self, src: Source) -> Span:
        span = self._by_source[id(src)] = process_span(src.topic, src.partition, src.offset, src.trace_headers)
        return span

    def of(self, src: Source) -> Span:
        """The record's span (a parked event's is started when it is decided)."""
        span = self._by_source.get(id(src))
        return self.start(src) if span is None else span

    def end(self) -> None:
        for span in self._by_source.values():
            span.end()


@dataclass
class PreparedBatch:
    """A validated batch waiting for its transaction."""

    messages: list[Inbound]
    now: datetime
    started: float
    candidates: list[Candidate] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    spans: Spans = field(default_factory=Spans)


@dataclass
class Reads:
    """What the read step found: the candidates to decide (fresh and released), what it refused,
    the database snapshot and the trail's size and chain heads."""

    direct: list[Candidate]
    released: dict[str, list[Candidate]]
    rejected: list[Rejected]
    snapshot: Snapshot
    tree_size: int
    heads: Heads


@dataclass
class Decision:
    """The batch plan, every rejection, the trail leaves of the accepted events (with their spans),
    and the ledger slice the plan changed (to write)."""

    plan: BatchPlan
    rejected: list[Rejected]
    leaves: list[TrailDraft]
    spans: list[Span]
    ledger: Ledger


@dataclass
class Appended:
    """The trail as the append step left it: its new frontier, the subtree hashes and enriched events to write."""

    frontier: CompactRange
    nodes: list[pg.TrailNode]
    enriched: list[Record]


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
# Each kind of work has a connection (and unit of work) of its own.
_ROLES = ("raw", "sweep", "trail", "checkpoint")


class Phases(BatchPhases):
    """fund-tracker's batch phases, exported as `fundtrail_tracker_phase_{,cpu_}seconds_total`."""

    def __init__(self, metrics: Metrics | None) -> None:
        super().__init__(PHASES, *((metrics.phase_seconds, metrics.phase_cpu_seconds) if metrics else ()))


class Tracker:
    """fund-tracker's work on raw events, trail inputs, parked events and checkpoints."""

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
        self._config = config
        self._key = signing_key
        self._metrics = metrics
        self._clock = clock
        self._units = {
            role: UnitOfWork(lambda: pg.connect(database_url), sink, name=role) for role in _ROLES
        }
        self._head = pg.TrailHead()
        self._topics = config.topics
        self.phases = Phases(metrics)

    # ------------------------------------------------------------------ plumbing

    async def close(self) -> None:
        """Close every database connection."""
        for unit in self._units.values():
            await unit.close()

    def _adopt(self, frontier: CompactRange | None) -> None:
        """After a commit: the trail's frontier is the one the transaction left."""
        if frontier is None:
            return
        self._head.adopt(frontier)
        if self._metrics is not None:
            self._metrics.trail_size.set(frontier.size)

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

    def _dead_letters(self, rejected: Iterable[Rejected], now: datetime) -> list[Record]:
        return [dead_letter_of(r, self._topics.dead_letters, now) for r in rejected]

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
            source = Source(m.topic, m.partition, m.offset, m.key, m.value or b"",
                            trace_context(m.headers, keep=SOURCE_HEADERS))
            span = batch.spans.start(source)
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
        """The second stage: one unit of work, outputs produced and acknowledged, then commit."""
        self.phases.start()
        try:
            result, frontier = await self._units["raw"].run(
                lambda tx: self._raw_tx(tx, batch), pipelined=True, phases=self.phases
            )
            self._adopt(frontier)
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
            batch.spans.end()
        self._count(self._topics.raw, result, time.perf_counter() - batch.started, len(batch.messages))
        return result

    async def _unstorable(self, message: Inbound, exc: Exception, now: datetime) -> BatchResult:
        rejection = Rejection(
            ReasonCode.INVALID_FIELD,
            f"the event cannot be stored: {exc}",
            (FieldError("(event)", "refused by the database"),),
        )
        source = Source(message.topic, message.partition, message.offset, message.key, message.value or b"",
                        trace_context(message.headers, keep=SOURCE_HEADERS))

        async def work(tx: Transaction) -> BatchResult:
            tx.send(self._dead_letters([Rejected(source, rejection, None)], now))
            return BatchResult(rejected=1, rejected_reasons={rejection.reason.value: 1})

        return await self._units["raw"].run(work)

    def _from_parking(self, row: pg.ParkedRow, now: datetime) -> Candidate | Rejected:
        headers = dict(row.trace_headers or {})
        topic = headers.pop(HEADER_SOURCE_TOPIC, self._topics.raw)  # parked with its headers (see _write)
        source = Source(
            topic, row.source_partition or 0, row.source_offset or 0, row.raw_key, row.raw, headers,
            parked_at=row.parked_at,
        )
        decoded, hint = decode_message(row.raw, now=now, max_future_skew=_NO_SKEW_LIMIT)
        if isinstance(decoded, Rejection):
            return Rejected(source, decoded, hint or row.event_id)
        return Candidate(source, decoded)

    async def _raw_tx(
        self, tx: Transaction, batch: PreparedBatch, swept: Sequence[pg.ParkedRow] = ()
    ) -> tuple[BatchResult, CompactRange]:
        """One attempt at a batch (fresh records, or `swept` parked events): read, decide, append, write."""
        reads = await self._read(tx, batch, swept)
        tx.lap("read")
        decision = self._decide(reads, batch)
        tx.lap("decide")
        appended = await self._append(tx, reads, decision, batch.now)
        tx.lap("write")
        await self._write(tx, decision, appended, batch.now)
        plan = decision.plan
        return BatchResult(
            accepted=len(plan.accepted), rejected=len(decision.rejected), duplicates=plan.duplicates,
            parked=len(plan.to_park), rejected_reasons=_reasons(decision.rejected),
        ), appended.frontier

    async def _read(self, tx: Transaction, batch: PreparedBatch, swept: Sequence[pg.ParkedRow]) -> Reads:
        """Everything deciding the batch reads, behind the trail's lock, in one pipeline (one round trip,
        not one per table): each statement's snapshot is taken after the previous writer committed."""
        now = batch.now
        rejected = list(batch.rejected)
        released: dict[str, list[Candidate]] = defaultdict(list)
        direct: list[Candidate] = list(batch.candidates)
        allocations = {waiting_key(c.valid.event.fund_doc_no) for c in direct
                       if isinstance(c.valid.event, FundAllocated)}
        extra_parked: set[uuid.UUID] = set()
        # Swept-up parked events are decided like fresh ones; parked events an allocation in this
        # batch releases are decided right after that allocation.
        for row in swept:
            extra_parked.add(row.event_id)
            c = self._from_parking(row, now)
            if isinstance(c, Rejected):
                rejected.append(c)
            else:
                direct.append(c)
        conn = tx.conn
        async with conn.pipeline():
            await pg.lock_trail(tx.cur)
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
        return Reads(direct, released, rejected, snapshot, tree_size, heads)

    def _decide(self, reads: Reads, batch: PreparedBatch) -> Decision:
        """The batch plan (pure) and the trail leaves of what it accepts."""
        plan = plan_batch(reads.direct, reads.snapshot, now=batch.now, park_timeout=self._config.park_timeout,
                          released=reads.released)
        rejected = reads.rejected + plan.rejected
        for r in rejected:
            if r.source.from_parking and r.event_id is not None and r.event_id not in plan.unpark:
                plan.unpark.append(r.event_id)
        spans: list[Span] = []
        leaves: list[TrailDraft] = []
        for a in plan.accepted:
            span = batch.spans.of(a.candidate.source)
            spans.append(span)
            leaves.append(event_item(a.candidate.valid.event, a.candidate.valid.payload, span_trace_id(span),
                                     a.transition.before_json, a.transition.after_json,
                                     a.candidate.source.publisher))
        return Decision(plan, rejected, leaves, spans, reads.snapshot.ledger)

    async def _append(self, tx: Transaction, reads: Reads, decision: Decision, now: datetime) -> Appended:
        """The writes a concurrent replica can make fail (unique event id, business key, payment id),
        in one pipeline (one round trip) with the trail entries: nothing leaves for a batch that is
        decided again. Returns the enriched events to produce."""
        cur = tx.cur
        frontier = await self._head.load(cur, reads.tree_size)
        rows: list[pg.ProcessedRow] = []
        enriched: list[Record] = []
        async with tx.conn.pipeline():
            sealed, nodes = await pg.append_trail_entries(cur, frontier, decision.leaves, now, reads.heads)
            tx.lap("trail")
            for a, item, span in zip(decision.plan.accepted, sealed, decision.spans, strict=True):
                ev = a.candidate.valid.event
                src = a.candidate.source
                after, before = a.transition.after_json, a.transition.before_json
                rows.append(pg.ProcessedRow(
                    event_id=ev.event_id, sequence=item.seq, event_type=ev.event_type, fund_doc_no=ev.fund_doc_no,
                    project_id=ev.project_id, region_code=ev.region_code, level=ev.level.value,
                    occurred_at=ev.occurred_at, accepted_at=now, payload=a.candidate.valid.payload.decode(),
                    state_after=after.decode(), trace_id=item.draft.trace_id,
                    source_partition=src.partition, source_offset=src.offset, business_key=a.business_key,
                ))
                value = enriched_json(a.candidate.valid.payload, item.seq, now, before, after, item.draft.trace_id)
                headers = event_headers(ev.event_type, ev.schema_version, context_headers(span))
                headers.append((HEADER_SOURCE_TOPIC, src.topic.encode()))  # its provenance
                enriched.append(Record(self._topics.enriched, event_key(ev), value, headers))
            await pg.insert_processed(cur, rows)
            await pg.insert_payments(cur, decision.ledger)
        return Appended(frontier, nodes, enriched)

    async def _write(self, tx: Transaction, decision: Decision, appended: Appended, now: datetime) -> None:
        """Hand the outputs to the producer, then write the rest while the broker acknowledges them.

        The remaining writes share one pipeline (one round trip). If one of them fails, the retry
        recomputes the same outputs from the same rows (same states, same sequence numbers), so what
        was already sent is repeated identically and deduplicated."""
        plan = decision.plan
        span = publish_span(self._topics.enriched, len(appended.enriched))
        try:
            tx.send(appended.enriched)
            tx.send(self._dead_letters(decision.rejected, now))
            await tx.outbox.flush()
            tx.lap("produce")
            async with tx.conn.pipeline():
                await pg.write_trail_nodes(tx.cur, appended.nodes)
                await pg.write_ledger(tx.cur, decision.ledger)
                await pg.park(tx.cur, [
                    pg.ParkedRow(
                        p.candidate.event_id, p.waiting_for, p.candidate.source.value, p.candidate.source.key, now,
                        p.candidate.source.partition, p.candidate.source.offset,
                        {**p.candidate.source.trace_headers, HEADER_SOURCE_TOPIC: p.candidate.source.topic},
                    )
                    for p in plan.to_park
                ])
                await pg.unpark(tx.cur, plan.unpark)
            tx.lap("write")
            await tx.delivered()
        finally:
            span.end()

    # ------------------------------------------------------------------ parked events

    async def sweep_parked(self) -> BatchResult:
        """Decide parked events that waited too long, or whose fund arrived meanwhile."""
        started = time.perf_counter()
        batch = PreparedBatch([], self._clock(), started)

        async def work(tx: Transaction) -> tuple[BatchResult, CompactRange | None]:
            due = await pg.parked_due(tx.cur, batch.now - self._config.park_timeout, self._config.sweep_limit)
            if not due:
                return BatchResult(), None
            return await self._raw_tx(tx, batch, due)

        try:
            result, frontier = await self._units["sweep"].run(work)
        finally:
            batch.spans.end()
        self._adopt(frontier)
        if result.accepted or result.rejected:
            self._count(self._topics.raw, result, time.perf_counter() - started, result.accepted + result.rejected)
        return result

    # ------------------------------------------------------------------ violations and cases

    async def handle_trail(self, messages: Sequence[Inbound]) -> BatchResult:
        """Append violations and case actions to the trail (each entry once)."""
        started = time.perf_counter()
        now = self._clock()
        valid: list[tuple[Valid, Span]] = []
        rejected: list[Rejected] = []
        spans: list[Span] = []
        for m in messages:
            headers = trace_context(m.headers, keep=SOURCE_HEADERS)
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
                valid.append((decoded, span))

        async def work(tx: Transaction) -> tuple[BatchResult, CompactRange]:
            await pg.lock_trail(tx.cur)
            items, duplicates = await self._trail_items(tx.cur, valid)
            heads = await (await pg.request_trail_heads(tx.conn, subjects_of(items)))()
            frontier = await self._head.load(tx.cur)
            await pg.append_trail(tx.cur, frontier, items, now, heads)
            tx.send(self._dead_letters(rejected, now))
            return BatchResult(accepted=len(items), rejected=len(rejected), duplicates=duplicates,
                               rejected_reasons=_reasons(rejected)), frontier

        try:
            result, frontier = await self._units["trail"].run(work, pipelined=True)
        finally:
            for span in spans:
                span.end()
        self._adopt(frontier)
        self._count(messages[0].topic if messages else self._topics.violations, result,
                    time.perf_counter() - started, len(messages))
        return result

    async def _trail_items(
        self, cur: psycopg.AsyncCursor[Any], valid: Sequence[tuple[Valid, Span]]
    ) -> tuple[list[TrailDraft], int]:
        """The trail entries of violations and case actions not in the trail yet; how many were."""
        wanted: list[uuid.UUID] = []
        for v, _ in valid:
            ev = v.event
            if isinstance(ev, ViolationRaised):
                wanted += [ev.violation_id, ev.triggering_event_id]
            elif isinstance(ev, _CaseEvent):
                wanted += [ev.event_id, ev.violation_id]
        known = await pg.existing_entries(cur, wanted)
        items: list[TrailDraft] = []
        duplicates = 0
        for v, span in valid:
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
        return items, duplicates

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

        async def work(tx: Transaction) -> Checkpoint | None:
            cur = tx.cur
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

        cp = await self._units["checkpoint"].run(work)
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

        async def work(tx: Transaction) -> int:
            cur = tx.cur
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

        return await self._units["checkpoint"].run(work)

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

        async def work(tx: Transaction) -> int:
            cur = tx.cur
            stored = 0
            for r in parsed:
                stored += await pg.insert_cosignature(
                    cur, tree_size=r.tree_size, witness_name=r.witness_name, key_hash=r.key_hash,
                    cosigned_at=r.cosigned_at, line=r.line, recorded_at=now,
                )
            return stored

        return await self._units["checkpoint"].run(work)


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


def dead_letter_of(r: Rejected, topic: str, at: datetime) -> Record:
    """The dead letter of a refused record: its original bytes, position, reasons and trace."""
    src = r.source
    refused = Inbound(src.topic, src.partition, src.offset, src.key, src.value, tuple(trace_headers(src.trace_headers)))
    return dead_letter(
        topic, refused,
        reason=r.rejection.reason, message=r.rejection.message, service=SERVICE, at=at,
        errors=[e.as_dict() for e in r.rejection.errors], event_id=r.event_id,
    )


def _reasons(rejected: Iterable[Rejected]) -> dict[str, int]:
    reasons: dict[str, int] = defaultdict(int)
    for r in rejected:
        reasons[r.rejection.reason.value] += 1
    return dict(reasons)


def _merge(into: BatchResult, part: BatchResult) -> None:
    into.accepted += part.accepted
    into.rejected += part.rejected
    into.duplicates += part.duplicates
    into.parked += part.parked
    for k, v in part.rejected_reasons.items():
        into.rejected_reasons[k] = into.rejected_reasons.get(k, 0) + v
