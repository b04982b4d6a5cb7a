"""One worker transaction: a PostgreSQL transaction whose Kafka outputs are acknowledged before it commits.

Both workers process a batch the same way (at-least-once without loss or double counting):
1. in one transaction (in pipeline mode when asked: BEGIN travels with the first statements),
   read, decide and write;
2. queue the records the batch produces in the transaction's `Outbox`; `flush` hands them to the
   producer (acks=all) so the broker replicates them while the remaining writes run;
3. when the work returns, every queued record is awaited until the broker acknowledged it, and only
   then does the transaction commit;
4. the caller acks the consumed records (their offsets get committed) only after `run` returned.
A crash or error before 3 finishes rolls everything back (what was sent is repeated by the retry and
deduplicated by event id downstream); a crash after the commit makes the redelivered records
duplicates that the sinks' unique keys absorb.

`UnitOfWork.run` retries an attempt that failed for a reason a fresh attempt can cure: a lost
database connection, a broker that did not acknowledge, or a unique key another replica wrote first
(a few times: one that survives is not a race but a bad event). Workers whose decisions live in memory
(compliance's engine state) turn retries off and retry from the start after reloading that state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import nullcontext
from typing import Any, TypeVar

import psycopg
from aiokafka.errors import KafkaError

from .kafka_sink import Record, Sink
from .worker import BatchPhases

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_DB_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)
UNIQUE_RETRIES = 3
FIRST_DELAY_SECONDS = 0.2
MAX_DELAY_SECONDS = 5.0
# The phases every unit of work charges (a worker's BatchPhases must know them).
PRODUCE, COMMIT = "produce", "commit"


class Outbox:
    """Records produced inside one transaction attempt: queued, handed to the producer, awaited."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._queued: list[Record] = []
        self._pending: list[Awaitable[Any]] = []

    def add(self, record: Record) -> None:
        """Queue one record (produced, in order, at the next `flush`)."""
        self._queued.append(record)

    def extend(self, records: Iterable[Record]) -> None:
        """Queue records in order."""
        self._queued.extend(records)

    async def flush(self) -> None:
        """Hand what is queued to the producer (record batches, in order); delivery is awaited later."""
        if self._queued:
            records, self._queued = self._queued, []
            self._pending += await self._sink.send_many(records)

    async def delivered(self) -> None:
        """Flush, then wait until the broker acknowledged every record handed over so far."""
        await self.flush()
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)


class Transaction:
    """One attempt of a unit of work: its cursor, its outbox and the batch's phase clock."""

    def __init__(
        self, cur: psycopg.AsyncCursor[Any], outbox: Outbox, phases: BatchPhases | None,
        pipeline: psycopg.AsyncPipeline | None,
    ) -> None:
        self.cur = cur
        self.outbox = outbox
        self._phases = phases
        self._pipeline = pipeline

    @property
    def conn(self) -> psycopg.AsyncConnection[Any]:
        return self.cur.connection

    def lap(self, phase: str) -> None:
        """Charge the time since the last mark to `phase` (nothing when the work is not timed)."""
        if self._phases is not None:
            self._phases.lap(phase)

    def send(self, records: Iterable[Record]) -> None:
        """Queue records to produce with this transaction."""
        self.outbox.extend(records)

    async def sync(self) -> None:
        """In pipeline mode: send what is pending and wait for its results (a database error raises here)."""
        if self._pipeline is not None:
            await self._pipeline.sync()

    async def delivered(self) -> None:
        """Wait for the broker's acknowledgement of everything queued so far."""
        await self.outbox.delivered()


class UnitOfWork:
    """Runs work in one transaction on a connection of its own; outputs acked before the commit; retries."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        sink: Sink,
        *,
        name: str,
        retry: bool = True,
        unique_retries: int = UNIQUE_RETRIES,
    ) -> None:
        self._connect = connect
        self._sink = sink
        self._name = name
        self._retry = retry
        self._unique_retries = unique_retries
        self._conn: psycopg.AsyncConnection[Any] | None = None
        # A connection carries one transaction at a time: concurrent callers (a timer and an agent)
        # would otherwise nest theirs as savepoints and commit out of order.
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        """Close the connection (a later `run` opens another). Not under the lock: shutdown must not
        wait for a transaction stuck on a broker that is gone."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def run(
        self, work: Callable[[Transaction], Awaitable[T]], *, pipelined: bool = False,
        phases: BatchPhases | None = None,
    ) -> T:
        """Run `work` in one transaction, await every record it queued, commit; its result.

        `pipelined`: the transaction runs in pipeline mode (`work` must fetch what it reads).
        `phases`: charge the acknowledgements to "produce" and the commit to "commit".
        """
        delay = FIRST_DELAY_SECONDS
        unique_failures = 0
        while True:
            try:
                return await self._attempt(work, pipelined, phases)
            except psycopg.errors.UniqueViolation as exc:
                # Another replica accepted one of these events first: decide the batch again.
                unique_failures += 1
                if not self._retry or unique_failures > self._unique_retries:
                    raise
                log.warning("concurrent write on %s, retrying the batch: %s", self._name, exc.diag.message_primary)
                continue
            except RETRYABLE_DB_ERRORS as exc:
                if not self._retry:
                    raise
                log.warning("database unavailable (%s), retrying in %.1fs", exc, delay)
            except KafkaError as exc:
                if not self._retry:
                    raise
                log.warning("broker did not acknowledge (%r), retrying the batch in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_SECONDS)

    async def _attempt(
        self, work: Callable[[Transaction], Awaitable[T]], pipelined: bool, phases: BatchPhases | None
    ) -> T:
        async with self._lock:
            conn = await self._connection()
            try:
                async with conn.pipeline() if pipelined else nullcontext() as pipeline, conn.transaction(), \
                        conn.cursor() as cur:
                    tx = Transaction(cur, Outbox(self._sink), phases, pipeline)
                    result = await work(tx)
                    await tx.delivered()  # every output acknowledged before the commit
                    tx.lap(PRODUCE)
            except RETRYABLE_DB_ERRORS:
                if self._retry:  # the next attempt opens a new connection
                    await self._drop()
                raise
            tx.lap(COMMIT)
            return result

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await self._connect()
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                log.debug("closing a broken connection failed", exc_info=True)
