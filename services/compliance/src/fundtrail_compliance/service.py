"""The compliance service: what the faust agents call for each batch.

Enriched events: decode → skip already evaluated ones → evaluate in order (pure engine) → in one
worker transaction (`fundtrail_runtime.unit_of_work`, pipelined) write dedup rows, violations,
resolutions and state, publish violations (all + department topic), resolutions (cases topic) and
dead letters, wait for the broker's acks, then commit. A batch that fails anywhere is rolled back,
the in-memory state is reloaded from the database, and the batch is retried from the start by the
caller (`until_done`; the unit of work's own retries are off: a fresh attempt needs the reloaded
state): the same events produce the same violations (deterministic ids and content), and the
database's unique keys absorb any repeat.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from fundtrail_runtime.kafka_records import dead_letter as dead_letter_record
from fundtrail_runtime.unit_of_work import Transaction, UnitOfWork
from fundtrail_runtime.worker import BatchPhases
from fundtrail_schemas import cases
from fundtrail_schemas.decode import ReasonCode, has_nul
from fundtrail_schemas.events import EVENT_TYPES, ViolationRaised, case_event_adapter, event_key, now_utc
from fundtrail_schemas.headers import event_headers, trace_context, trace_headers
from fundtrail_schemas.rulepack import RulePackError, parse_pack
from fundtrail_schemas.telemetry import (
    ATTR_BATCH_SIZE,
    ATTR_EVENT_ID,
    ATTR_EVENT_TYPE,
    ATTR_FUND,
    ATTR_RULE,
    ATTR_VIOLATION_ID,
    exporting,
    extract_context,
    inject_headers,
    propagating_span,
)
from fundtrail_schemas.topics import (
    CASES,
    ENRICHED_EVENTS,
    TOPICS_BY_NAME,
    VIOLATIONS,
    VIOLATIONS_DLQ,
    department_topic,
)

from .adapters.kafka import Inbound, Record, Sink, partition_of
from .adapters.metrics import PHASES, Metrics
from .adapters.postgres import ComplianceStore
from .core.engine import Engine, EngineState, Outcome
from .core.evaluator import PackSet
from .core.helpers import parse_time
from .packs import PackDoc, compile_docs, read_dir, set_version
from .windowing import routed_records

log = logging.getLogger(__name__)
SERVICE = "compliance"
tracer = trace.get_tracer("fundtrail.compliance")
_MESSAGING = {"messaging.system": "kafka", "messaging.destination.name": ENRICHED_EVENTS}


# next offset processed per partition -> (partitions assigned, those with nothing left to read)
PartitionStatus = Callable[[Mapping[int, int]], Awaitable[tuple[set[int], set[int]]]]


class BadEnriched(ValueError):
    """An enriched message that cannot be evaluated."""

    def __init__(self, reason: ReasonCode, message: str, event_id: uuid.UUID | None = None) -> None:
        super().__init__(message)
        self.reason, self.event_id = reason, event_id


def decode_enriched(value: bytes | None) -> dict[str, Any]:
    """The enriched document as plain data (the tracker validated it; check what the engine reads)."""
    if not value:
        raise BadEnriched(ReasonCode.EMPTY, "the record has no value (a null, tombstone or empty record)")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadEnriched(ReasonCode.MALFORMED_JSON, f"not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("event"), dict):
        raise BadEnriched(ReasonCode.NOT_AN_OBJECT, "an enriched event is an object with an `event` object")
    ev = doc["event"]
    try:
        event_id = uuid.UUID(str(ev["event_id"]))
    except (KeyError, ValueError) as exc:
        raise BadEnriched(ReasonCode.INVALID_FIELD, "event.event_id is missing or not a UUID") from exc
    if ev.get("event_type") not in EVENT_TYPES:
        raise BadEnriched(ReasonCode.UNKNOWN_TYPE, f"unknown event_type {ev.get('event_type')!r}", event_id)
    try:
        parse_time(str(ev["occurred_at"]))
    except (KeyError, ValueError) as exc:
        raise BadEnriched(
            ReasonCode.INVALID_FIELD, "event.occurred_at is missing or not a timestamp", event_id
        ) from exc
    for part in ("before", "after"):
        if not isinstance(doc.get(part), dict):
            raise BadEnriched(ReasonCode.INVALID_FIELD, f"`{part}` ledger state is missing", event_id)
    return doc


def dead_letter(inb: Inbound, reason: ReasonCode, message: str, event_id: uuid.UUID | None = None) -> Record:
    """A VIOLATIONS_DLQ record with the reason and the original bytes."""
    return dead_letter_record(VIOLATIONS_DLQ, inb, reason=reason, message=message[:4000], service=SERVICE,
                              at=now_utc(), event_id=event_id)


def violation_records(v: ViolationRaised, trace: list[tuple[str, bytes]]) -> list[Record]:
    """A violation goes to the all-violations topic and to its department's topic, keyed by fund."""
    value = v.model_dump_json().encode()
    key = event_key(v)
    headers = event_headers(v.event_type, v.schema_version, trace)
    return [Record(VIOLATIONS, key, value, headers), Record(department_topic(v.department), key, value, headers)]


def _pack_source(inb: Inbound) -> tuple[str, str]:
    return f"{inb.topic}/{inb.partition}@{inb.offset}", (inb.value or b"").decode("utf-8", errors="replace")


class ComplianceService:
    """Evaluates enriched events, keeps the case loop, and swaps rule packs safely."""

    def __init__(
        self,
        database_url: str,
        sink: Sink,
        docs: Mapping[str, PackDoc],
        packs: PackSet,
        *,
        grace: Any,
        metrics: Metrics,
        partitions: PartitionStatus | None = None,
        route_windows: bool = False,
    ) -> None:
        self.store = ComplianceStore(database_url)
        # Which enriched-topic partitions this worker reads and which of them have nothing left to read
        # (None: not known, every partition seen counts); asked with the next offset processed per partition.
        self._partitions = partitions
        self._next_offset: dict[int, int] = {}
        # The enriched-topic partitions whose funds' state (clocks, timers, refutable violations) is
        # loaded: none until the consumer's first assignment is known (None: every fund, no consumer).
        self._owned: frozenset[int] | None = None if partitions is None else frozenset()
        self.case_store = ComplianceStore(database_url)
        # Batches and case actions each run as units of work on their store's connection.
        self._batches = UnitOfWork(self.store.connection, sink, name="enriched", retry=False)
        self._cases = UnitOfWork(self.case_store.connection, sink, name="cases", retry=False)
        # Rule-pack checks and records run beside batches and ticks (which hold `store` under the
        # lock): a connection of their own, never one in the middle of another's pipeline.
        self.pack_store = ComplianceStore(database_url)
        self.sink = sink
        self.docs = dict(docs)
        # route_windows: window rules are judged by the window's owner (windowing.py), not here.
        self.engine = Engine(packs, grace=grace, route_windows=route_windows)
        # Verdicts record the pack set they were judged with; an event is judged once per set.
        self.pack_version = set_version(packs)
        self.metrics = metrics
        self.phases = BatchPhases(PHASES, metrics.phase_seconds, metrics.phase_cpu_seconds)
        self._lock = asyncio.Lock()
        self._pack_lock = asyncio.Lock()
        self.ready = asyncio.Event()

    async def start(self, topic_docs: Sequence[Inbound] = ()) -> None:
        """Load state; lay the latest pack documents of the rule-packs topic over the directory's;
        check the result against the recorded rule history and record it; then agents may run."""
        await self.store.open()
        await self.reset_state()
        for inb in topic_docs:
            source, text = _pack_source(inb)
            try:
                pack = parse_pack(text, source)
                docs = {**self.docs, pack.department.value: PackDoc(pack, source, text)}
                packs = compile_docs(docs)
            except RulePackError as exc:
                log.error("rule pack %s refused at start-up: %s", source, exc)
                await self._record_refused(source, exc, text)
                continue
            self.docs = docs
            self._replace_packs(packs)
        await self._check_history(self.docs)  # a set that rewrites history stops start-up, loudly
        for doc in self.docs.values():
            await self._record_load(doc, "accepted", None)
        self.ready.set()
        log.info("compliance ready: %d rule versions (set version %s), watermark %s", len(self.engine.packs.rules),
                 self.pack_version, self.engine.state.clock.watermark)

    async def close(self) -> None:
        await self.store.close()
        await self.case_store.close()
        await self.pack_store.close()

    async def reset_state(self) -> None:
        """Throw the in-memory state away and reload it from the database: per-fund state only for
        the funds on the partitions this worker owns (another replica fires the others' timers)."""
        state = EngineState()
        owned = self._owned
        owns = None
        if owned is None:
            await self.store.load_state(state)
        else:
            n = TOPICS_BY_NAME[ENRICHED_EVENTS].partitions
            owns = lambda fund: partition_of(fund.encode(), n) in owned  # noqa: E731
            await self.store.load_state(state, owned, owns)
        self.engine.state = state
        # The owned funds' event-time books, as the replica that processed their events had them.
        self.engine.restore_books(*await self.store.load_books(owns))

    # --- enriched events ------------------------------------------------------------------------

    async def handle_enriched(self, batch: Sequence[Inbound]) -> None:
        """Evaluate one batch; on any failure roll back, reload state and re-raise (the caller retries)."""
        await self.ready.wait()
        async with self._lock:
            try:
                await self._handle_enriched(batch)
            except BaseException:
                await self.reset_state()
                raise

    async def _handle_enriched(self, batch: Sequence[Inbound]) -> None:
        with tracer.start_as_current_span(
            f"{ENRICHED_EVENTS} process batch", kind=SpanKind.CONSUMER,
            attributes={**_MESSAGING, ATTR_BATCH_SIZE: len(batch)},
        ):
            await self._handle_enriched_batch(batch)

    async def tick(self) -> None:
        """Periodically: partitions gone idle stop holding the event-time clock back; what that makes
        due fires and is published like a batch's violations."""
        await self.ready.wait()
        async with self._lock:
            try:
                await self._handle_enriched_batch([])
            except BaseException:
                await self.reset_state()
                raise

    async def _refresh_partitions(self) -> Any:
        """Tell the engine which partitions are read and which are idle (records of this batch are
        not processed yet, so their partitions are not); the Outcome of what became due."""
        if self._partitions is None:
            return None
        try:
            assigned, idle = await self._partitions(self._next_offset)
        except Exception:  # the consumer is between assignments: keep the clock as it is
            log.warning("partition status unavailable; the event-time clock stays", exc_info=True)
            return None
        if frozenset(assigned) != self._owned:
            # A rebalance: state follows partition ownership. Revoked funds' state is dropped and
            # assigned funds' state (and what other replicas wrote meanwhile) is read again.
            self._owned = frozenset(assigned)
            started = time.perf_counter()
            await self.reset_state()
            self._next_offset = {p: o for p, o in self._next_offset.items() if p in assigned}
            log.info("partitions %s owned; state reloaded in %.2f s", sorted(assigned), time.perf_counter() - started)
        return self.engine.assign(assigned, idle)

    async def _handle_enriched_batch(self, batch: Sequence[Inbound]) -> None:
        started = time.perf_counter()
        phases = self.phases
        phases.start()
        pre = await self._refresh_partitions()
        st = self.engine.state
        if not batch and (pre is None or not (pre.violations or pre.resolutions or pre.errors)) and not (
            st.timers.dirty or st.clock.changed or (st.judged and self._owned)
        ):
            return  # an idle tick: nothing to write, and no judged event another replica's data could concern
        phases.lap("partitions")
        out: list[Record] = []
        decoded: list[tuple[Inbound, dict[str, Any], uuid.UUID]] = []
        for inb in batch:
            try:
                doc = decode_enriched(inb.value)
                decoded.append((inb, doc, uuid.UUID(str(doc["event"]["event_id"]))))
            except BadEnriched as exc:
                out.append(dead_letter(inb, exc.reason, str(exc), exc.event_id))
                self.metrics.events.labels("dead_letter").inc()
            except Exception as exc:  # one record that breaks decoding must not stop its partition
                log.exception("enriched record %s[%d]@%d could not be decoded", inb.topic, inb.partition, inb.offset)
                out.append(dead_letter(inb, ReasonCode.UNDECODABLE, f"decoding the record failed: {exc!r}"))
                self.metrics.events.labels("dead_letter").inc()
        phases.lap("decode")

        # One pipelined unit of work: the dedup read with BEGIN, the writes with the outputs' sends
        # (their results are awaited together), the acknowledgements, then COMMIT.
        async def work(tx: Transaction) -> list[ViolationRaised]:
            # Reference data other replicas committed is taken in before this batch is judged.
            shared = await self.store.reference_since()
            done = await self.store.processed(tx.cur, [eid for _, _, eid in decoded], self.pack_version)
            caught_up = self._catch_up(await shared())
            tx.lap("read")
            processed, violations, resolutions = self._evaluate(decoded, done, pre, out, caught_up)
            tx.lap("evaluate")
            now = now_utc()
            await self.store.write_batch(tx.cur, processed, violations, self.engine.state, now, self.pack_version)
            if resolutions:
                out.extend(await self._apply_resolutions(tx.cur, resolutions, now))
            tx.lap("write")
            tx.send(out)
            await tx.outbox.flush()
            tx.lap("produce")
            await tx.sync()
            tx.lap("write")
            return violations

        violations = await self._batches.run(work, pipelined=True, phases=phases)
        for inb in batch:
            if inb.offset >= self._next_offset.get(inb.partition, 0):
                self._next_offset[inb.partition] = inb.offset + 1
        for v in violations:
            self.metrics.violations.labels(v.rule_id, v.department.value).inc()
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def _catch_up(self, records: list[dict[str, Any]]) -> Outcome | None:
        """Reference data read from the store: what re-judging the events judged here raised."""
        if not records:
            return None
        out = Outcome()
        for rec in records:
            got = self.engine.apply_reference(rec)
            out.violations += got.violations
            out.errors += got.errors
        return out

    def _evaluate(
        self, decoded: list[tuple[Inbound, dict[str, Any], uuid.UUID]], done: set[uuid.UUID], pre: Any,
        out: list[Record], caught_up: Outcome | None = None,
    ) -> tuple[list[tuple[uuid.UUID, int]], list[ViolationRaised], list[tuple[Any, list[tuple[str, bytes]]]]]:
        """Evaluate a batch in order (pure core): the dedup rows, violations and resolutions to write;
        what to publish is appended to `out`."""
        processed: list[tuple[uuid.UUID, int]] = []
        violations: list[ViolationRaised] = []
        resolutions: list[tuple[Any, list[tuple[str, bytes]]]] = []
        # Checks made due by idle partitions and events judged again on shared reference data: no
        # record of this batch caused them, no trace to carry.
        for early in (pre, caught_up):
            if early is None:
                continue
            for v in early.violations:
                violations.append(v)
                out.extend(violation_records(v, []))
            resolutions.extend((r, []) for r in early.resolutions)
            for err in early.errors:
                self.metrics.evaluation_errors.labels(err.rule_ref).inc()
                log.warning("check without a record failed: %s", err)
        for inb, doc, eid in decoded:
            if eid in done:
                self.metrics.events.labels("duplicate").inc()
                continue
            done.add(eid)
            carry = trace_headers(inb.headers)
            t0 = time.perf_counter()
            try:
                outcome = self.engine.process(doc, inb.partition, raw=inb.value)
            except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as exc:
                # A document the engine cannot read: dead-letter it, count it processed, go on.
                log.warning("enriched event %s cannot be evaluated: %r", eid, exc)
                out.append(dead_letter(inb, ReasonCode.INVALID_FIELD, f"cannot evaluate: {exc!r}", eid))
                processed.append((eid, 0))
                self.metrics.events.labels("dead_letter").inc()
                continue
            self.metrics.evaluation_seconds.observe(time.perf_counter() - t0)
            self.metrics.events.labels("evaluated").inc()
            processed.append((eid, len(outcome.violations)))
            if outcome.violations or outcome.resolutions:
                # Only events with consequences get a span: what they cause continues their trace.
                carry = self._trace_outcome(inb, doc, outcome)
            for v in outcome.violations:
                violations.append(v)
                out.extend(violation_records(v, carry))
            for r in outcome.resolutions:
                resolutions.append((r, carry))
            if outcome.routed:  # to the windows' owners, with this batch's outputs
                out.extend(routed_records(outcome.routed, carry))
            for err in outcome.errors:
                self.metrics.evaluation_errors.labels(err.rule_ref).inc()
                out.append(dead_letter(inb, ReasonCode.EVALUATION_ERROR, str(err), eid))
        return processed, violations, resolutions

    def _trace_outcome(self, inb: Inbound, doc: dict[str, Any], outcome: Any) -> list[tuple[str, bytes]]:
        if not exporting():
            # Nothing would record the span: only a new span id in the same trace is carried on,
            # as fund-tracker does (a recorded span with its events cost ~3 % of this worker).
            return inject_headers(trace.set_span_in_context(propagating_span(trace_context(inb.headers))))
        ev = doc["event"]
        with tracer.start_as_current_span(
            f"{ENRICHED_EVENTS} process", context=extract_context(inb.headers), kind=SpanKind.CONSUMER,
            attributes={**_MESSAGING, ATTR_EVENT_ID: str(ev["event_id"]), ATTR_EVENT_TYPE: ev["event_type"],
                        ATTR_FUND: ev.get("fund_doc_no") or ""},
        ) as span:
            for v in outcome.violations:
                span.add_event("violation", {ATTR_RULE: f"{v.rule_id}@{v.rule_version}",
                                             ATTR_VIOLATION_ID: str(v.violation_id)})
            return inject_headers()

    async def _apply_resolutions(self, cur: Any, resolutions: list[Any], now: datetime) -> list[Record]:
        """Our own ViolationResolved: applied here, atomically with the evaluation that produced it."""
        out: list[Record] = []
        statuses = await self.store.lock_statuses(cur, [r.violation_id for r, _ in resolutions])
        for r, carry in resolutions:
            d = cases.decide(statuses.get(r.violation_id), r.event_type, r.actor_role)
            outcome = "applied" if d.applied else "rejected"
            await self.store.record_case(cur, r, cases.RECORDED_AS[r.event_type], outcome, d.from_status,
                                         d.to_status, d.reason, now, None)
            self.metrics.case_actions.labels("resolved", outcome).inc()
            value = r.model_dump_json().encode()
            if d.applied:
                statuses[r.violation_id] = d.to_status or ""
                self.metrics.resolutions.inc()
                out.append(Record(CASES, event_key(r), value, event_headers(r.event_type, r.schema_version, carry)))
            else:  # e.g. the case was closed meanwhile: recorded as rejected, never applied
                own = Inbound(CASES, -1, -1, event_key(r), value, tuple(carry))
                out.append(dead_letter(own, ReasonCode(d.reason or "invalid_transition"), d.message or "", r.event_id))
        return out

    # --- case actions ---------------------------------------------------------------------------

    async def handle_cases(self, batch: Sequence[Inbound]) -> None:
        """Apply case actions idempotently; invalid steps are recorded as rejected and dead-lettered."""
        await self.ready.wait()
        out: list[Record] = []
        events = []
        for inb in batch:
            if not inb.value:
                out.append(dead_letter(inb, ReasonCode.EMPTY, "the record has no value (a null or empty record)"))
                continue
            if has_nul(inb.value):  # PostgreSQL cannot store it: the insert would fail on every retry
                out.append(dead_letter(inb, ReasonCode.INVALID_FIELD, "the case action contains U+0000"))
                continue
            try:
                events.append((inb, case_event_adapter.validate_json(inb.value)))
            except ValidationError as exc:
                out.append(dead_letter(inb, ReasonCode.INVALID_FIELD, f"not a case action: {exc.errors()[0]['msg']}"))
            except Exception as exc:  # one record that breaks decoding must not stop the agent
                log.exception("case record %s[%d]@%d could not be decoded", inb.topic, inb.partition, inb.offset)
                out.append(dead_letter(inb, ReasonCode.UNDECODABLE, f"decoding the record failed: {exc!r}"))
        now = now_utc()

        async def work(tx: Transaction) -> None:
            cur = tx.cur
            known = await self.case_store.case_actions_known(cur, [e.event_id for _, e in events])
            statuses = await self.case_store.lock_statuses(cur, [e.violation_id for _, e in events])
            for inb, e in events:
                if e.event_id in known:
                    continue
                known.add(e.event_id)
                if e.event_type == "ViolationResolved" and e.actor == cases.SYSTEM_ACTOR \
                        and e.actor_role == cases.CaseRole.SYSTEM:
                    continue  # applied where it was produced, with the evaluation (see _apply_resolutions)
                # The contract's table decides, the same one the gateway refused or accepted it by.
                d = cases.decide(statuses.get(e.violation_id), e.event_type, e.actor_role)
                outcome = "applied" if d.applied else "rejected"
                action = cases.RECORDED_AS[e.event_type]
                await self.case_store.record_case(
                    cur, e, action, outcome, d.from_status, d.to_status, d.reason, now, None
                )
                self.metrics.case_actions.labels(action, outcome).inc()
                if d.applied:
                    statuses[e.violation_id] = d.to_status or ""
                else:
                    coded = d.reason is not None and d.reason in ReasonCode._value2member_map_
                    reason = ReasonCode(d.reason) if coded and d.reason else ReasonCode.INVALID_TRANSITION
                    out.append(dead_letter(inb, reason, d.message or "rejected", e.event_id))
            tx.send(out)

        await self._cases.run(work)

    # --- rule packs -------------------------------------------------------------------------------

    async def reload_dir(self, directory: Path) -> bool:
        """Re-read the pack directory; swap it in only if it is valid (else keep the running packs)."""
        await self.ready.wait()
        async with self._pack_lock:  # one pack change at a time (directory and topic), on pack_store
            return await self._reload_dir(directory)

    async def _reload_dir(self, directory: Path) -> bool:
        try:
            docs = read_dir(directory)
            packs = compile_docs(docs)
            await self._check_history(docs)
        except RulePackError as exc:
            log.error("rule packs in %s refused, the running packs stay: %s", directory, exc)
            self.metrics.pack_loads.labels("refused").inc()
            await self._record_refused(str(exc.path), exc)
            return False
        await self._go_live(docs, packs)
        return True

    async def handle_rule_pack(self, inb: Inbound) -> bool:
        """A pack document from the rule-packs topic: validated, then it replaces its department's pack."""
        await self.ready.wait()
        async with self._pack_lock:
            return await self._handle_rule_pack(inb)

    async def _handle_rule_pack(self, inb: Inbound) -> bool:
        source, text = _pack_source(inb)
        if inb.value is None:
            # A tombstone would delete a department's pack; packs are only replaced, never removed.
            log.warning("rule-pack tombstone %s ignored; the running packs stay", source)
            self.metrics.pack_loads.labels("refused").inc()
            return False
        try:
            try:
                pack = parse_pack(text, source)
            except RulePackError:
                raise
            except Exception as exc:  # e.g. YAML nested past the parser's recursion limit
                raise RulePackError(source, f"unreadable pack document: {exc!r}"[:2000]) from exc
            docs = {**self.docs, pack.department.value: PackDoc(pack, source, text)}
            packs = compile_docs(docs)
            await self._check_history(docs)
        except RulePackError as exc:
            log.error("rule pack %s refused, the running packs stay: %s", source, exc)
            self.metrics.pack_loads.labels("refused").inc()
            await self._record_refused(source, exc, text)
            return False
        await self._go_live(docs, packs)
        return True

    async def _check_history(self, docs: Mapping[str, PackDoc]) -> None:
        for doc in docs.values():
            changed = await self.pack_store.changed_versions(doc.pack.rules)
            if changed:
                raise RulePackError(
                    doc.source, f"published versions cannot change, add a new version instead: {', '.join(changed)}",
                    changed[0],
                )

    async def _go_live(self, docs: dict[str, PackDoc], packs: PackSet) -> None:
        async with self._lock:
            changed = [d for k, d in docs.items() if self.docs.get(k) is None or self.docs[k].text != d.text]
            self.docs = docs
            self._replace_packs(packs)
        for d in changed:
            await self._record_load(d, "accepted", None)
        self.metrics.pack_loads.labels("accepted").inc()
        log.info("rule packs live: %d rule versions (%d pack(s) changed), set version %s", len(packs.rules),
                 len(changed), self.pack_version)

    def _replace_packs(self, packs: PackSet) -> None:
        self.engine.replace_packs(packs)
        self.pack_version = set_version(packs)

    async def _record_load(self, doc: PackDoc, status: str, error: str | None) -> None:
        await self.pack_store.record_pack_load(
            department=doc.pack.department.value, pack_version=doc.pack.pack_version, source=doc.source,
            text=doc.text, status=status, error=error, rules=doc.pack.rules, now=now_utc(),
        )

    async def _record_refused(self, source: str, exc: RulePackError, text: str = "") -> None:
        await self.pack_store.record_pack_load(
            department=None, pack_version=None, source=source, text=text, status="refused", error=str(exc), rules=[],
            now=now_utc(),
        )
