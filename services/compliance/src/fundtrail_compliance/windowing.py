"""Cross-fund windows on one replica each: the repartition hop (docs/scaling.md §1).

A window rule's state crosses funds (an owner's awards to a vendor, a payee's payments), and funds
are spread over the enriched topic's partitions and so over replicas. The replica that judges an
enriched event does not judge its window rules: it sends the event, as it judged it, to
`fundtrail.compliance.windows` keyed by the rule id and the window key (`Outcome.routed`, produced
in the same transaction as the rest of its batch). That topic is read by a second consumer group
(`<app id>-windows`): the replica owning a key's partition holds the window, judges the event in
event time (`Engine.judge_window`) and writes the window entry and the violations in one
transaction, then commits the offsets. State follows ownership: on a new assignment the window
entries of the owned partitions are read again from PostgreSQL. A redelivered record finds its
entry and changes nothing; violation ids are deterministic, so a repeat is absorbed downstream.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from fundtrail_runtime.kafka_sink import Headers, Record
from fundtrail_runtime.unit_of_work import Transaction, UnitOfWork
from fundtrail_schemas.decode import ReasonCode
from fundtrail_schemas.events import now_utc
from fundtrail_schemas.headers import trace_headers
from fundtrail_schemas.topics import COMPLIANCE_WINDOWS, TOPICS_BY_NAME

from .adapters.kafka import Inbound, partition_of
from .adapters.metrics import Metrics
from .adapters.postgres import ComplianceStore
from .core.engine import Engine, EngineState, Routed
from .core.windows import WindowEntry

log = logging.getLogger(__name__)


def window_key(rule_id: str, key: Sequence[object]) -> bytes:
    """The repartition topic's key: the rule id and the window key (one window, one partition)."""
    return json.dumps([rule_id, *key], ensure_ascii=False, separators=(",", ":")).encode()


def routed_records(routed: Sequence[Routed], trace: Headers) -> list[Record]:
    """The records that take windowed events to their window's owner."""
    return [
        Record(COMPLIANCE_WINDOWS, window_key(r.rule_id, r.key),
                 orjson.dumps({"rule_id": r.rule_id, "key": list(r.key), "amount_fen": r.amount_fen, "doc": r.doc}),
                 trace)
        for r in routed
    ]


def decode_routed(value: bytes | None) -> tuple[Routed, bytes]:
    """A routed record, and the document's JSON to keep; ValueError when it is not one."""
    if not value:
        raise ValueError("the record has no value")
    try:
        rec = orjson.loads(value)
        doc = rec["doc"]
        routed = Routed(str(rec["rule_id"]), tuple(rec["key"]), int(rec["amount_fen"]), doc)
        missing = [f for f in ("event_id", "occurred_at", "event_type") if f not in doc["event"]]
        if missing:
            raise KeyError(", ".join(missing))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a routed window record: {exc!r}") from exc
    return routed, orjson.dumps(doc)


class WindowOwner:
    """Judges the windows of the repartition topic's partitions this replica owns."""

    def __init__(
        self, database_url: str, sink: Any, main: Any, metrics: Metrics,
        assigned: Callable[[], tuple[frozenset[int], int] | None],
    ) -> None:
        # `main` is the ComplianceService: its packs (and pack-set version) and its readiness.
        self.store = ComplianceStore(database_url)
        self.sink = sink
        self.main = main
        self.metrics = metrics
        self._assigned = assigned
        self._owned: frozenset[int] | None = None
        self._assignment: tuple[frozenset[int], int] | None = None
        self.engine = Engine(main.engine.packs, grace=main.engine.grace, owns_windows=True)
        # Retries off: the windows live in memory, so a failed batch reloads them and is redelivered.
        self._uow = UnitOfWork(self.store.connection, sink, name="windows", retry=False)

    async def close(self) -> None:
        await self._uow.close()
        await self.store.close()

    async def reset_state(self) -> None:
        """Drop the windows and read those of the owned partitions from PostgreSQL."""
        state = EngineState()
        owned = self._owned
        n = TOPICS_BY_NAME[COMPLIANCE_WINDOWS].partitions
        async with self.store.transaction() as cur:
            await cur.execute(
                "SELECT rule_id, window_key, event_id, at, amount_fen FROM compliance_window_entry"
                " WHERE at >= (SELECT max(at) FROM compliance_window_entry) - interval '400 days'"
            )
            rows = await cur.fetchall()
        for rule_id, key, eid, at, amount in rows:
            k = tuple(json.loads(key))
            if owned is None or partition_of(window_key(rule_id, k), n) in owned:
                state.windows.add(rule_id, k, WindowEntry(str(eid), at, amount), record=False)
        self.engine.state = state

    async def handle(self, batch: Sequence[Inbound]) -> None:
        """Judge one batch in one transaction; on failure reload the windows and re-raise (retried)."""
        await self.main.ready.wait()
        try:
            await self._handle(batch)
        except BaseException:
            await self.reset_state()
            raise

    async def _handle(self, batch: Sequence[Inbound]) -> None:
        from .service import dead_letter, violation_records

        assignment = self._assigned()
        if assignment is not None and assignment != self._assignment:
            # A rebalance: the windows follow the partitions (and what their last owner committed).
            self._assignment = assignment
            self._owned = owned = assignment[0]
            started = time.perf_counter()
            await self.reset_state()
            log.info("window partitions %s owned; windows reloaded in %.2f s", sorted(owned),
                     time.perf_counter() - started)
        if self.engine.packs is not self.main.engine.packs:
            self.engine.replace_packs(self.main.engine.packs)
        out: list[Record] = []
        violations = []
        for inb in batch:
            try:
                routed, raw = decode_routed(inb.value)
            except ValueError as exc:
                out.append(dead_letter(inb, ReasonCode.INVALID_FIELD, str(exc)))
                continue
            try:
                outcome = self.engine.judge_window(routed, raw)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning("routed window record %s[%d]@%d cannot be judged: %r", inb.topic, inb.partition,
                            inb.offset, exc)
                out.append(dead_letter(inb, ReasonCode.INVALID_FIELD, f"cannot evaluate: {exc!r}"))
                continue
            carry = trace_headers(inb.headers)
            for v in outcome.violations:
                violations.append(v)
                out.extend(violation_records(v, carry))
            for err in outcome.errors:
                self.metrics.evaluation_errors.labels(err.rule_ref).inc()
                out.append(dead_letter(inb, ReasonCode.EVALUATION_ERROR, str(err)))
        self.engine.state.clock.drain()  # its clock is its own, never saved over the partitions' clocks
        if not out and not self.engine.state.windows.added:
            return
        async def work(tx: Transaction) -> None:
            await self.store.write_batch(tx.cur, [], violations, self.engine.state, now_utc(), self.main.pack_version)
            tx.send(out)  # every output acknowledged before the window entries commit (the unit of work)
            await tx.outbox.flush()
            await tx.sync()

        await self._uow.run(work, pipelined=True)
        for v in violations:
            self.metrics.violations.labels(v.rule_id, v.department.value).inc()
