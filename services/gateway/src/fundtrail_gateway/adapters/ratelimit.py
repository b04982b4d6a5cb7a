"""Rate limits shared by every gateway replica: one counter per caller and fixed window in PostgreSQL.

Each request is counted by an upsert that returns the window's count, on a small pool of its own (the
read pools are read-only by design). A process runs one such statement per key at a time: the hits of
a key that arrive meanwhile wait for the next one, which adds them all at once (`hits + n`) and numbers
them in arrival order, so each is decided exactly as if it had its own statement, and a busy caller
costs PostgreSQL one row lock a round trip rather than one a request. Windows are numbered by
PostgreSQL's clock, so replicas with skewed clocks still share them. The table is UNLOGGED (counters
need no crash safety) and is created by the gateway on first use; old windows are deleted about once a
minute. If PostgreSQL is unreachable (or the table cannot be created) the in-process token bucket
decides instead for the next few seconds, so a database outage limits per replica rather than refusing
everyone or no one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from fundtrail_runtime.db import conninfo

from ..core.ratelimit import RateLimiter

log = logging.getLogger(__name__)

TABLE = "gateway_rate_window"
_CREATE = f"""
CREATE UNLOGGED TABLE IF NOT EXISTS {TABLE} (
    key text NOT NULL,
    win bigint NOT NULL,
    hits integer NOT NULL,
    PRIMARY KEY (key, win)
)"""
_HIT = f"""
INSERT INTO {TABLE} AS r (key, win, hits)
VALUES (%(key)s, floor(extract(epoch FROM statement_timestamp()) / %(window)s)::bigint, %(n)s)
ON CONFLICT (key, win) DO UPDATE SET hits = r.hits + excluded.hits
RETURNING r.hits, (r.win + 1) * %(window)s - extract(epoch FROM statement_timestamp())::float8"""
_PURGE = f"DELETE FROM {TABLE} WHERE win < floor(extract(epoch FROM statement_timestamp()) / %(window)s)::bigint - 1"
PURGE_EVERY_SECONDS = 60.0
# A hit waits at most this long for a connection before the in-process bucket decides.
ACQUIRE_TIMEOUT_SECONDS = 0.5
RETRY_SHARED_AFTER_SECONDS = 5.0


@dataclass(slots=True)
class _Waiter:
    rate: float
    # Resolved with the decision, or with the list of hits whose statement this hit now runs.
    future: asyncio.Future[Any] | None


def _limit(rate: float, window: float) -> int:
    return max(1, int(rate * window + 1e-9))


def _settle(waiter: _Waiter, wait: float | None) -> None:
    if waiter.future is not None and not waiter.future.done():
        waiter.future.set_result(wait)


class SharedRateLimiter:
    """`hit(key, rate)`: None while the caller is within rate x window per window, else seconds to wait."""

    def __init__(self, database_url: str | None, window: float, fallback: RateLimiter, pool_size: int = 4) -> None:
        self.window = window
        self._fallback = fallback
        self._url = database_url
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._purged_at = 0.0
        self._purge: asyncio.Task[None] | None = None
        self._warned = False
        self._table_ready = False
        self._retry_at = 0.0
        # Per key with a statement in flight: the hits waiting for the next one, in arrival order.
        self._queues: dict[str, list[_Waiter]] = {}

    @property
    def shared(self) -> bool:
        """True while counts live in PostgreSQL."""
        return self._table_ready

    async def open(self) -> None:
        """Start connecting (the server does not wait for it); the table is made on first use."""
        if self._url is None:
            return
        self._pool = AsyncConnectionPool(
            conninfo(self._url), min_size=1, max_size=self._pool_size, open=False, timeout=ACQUIRE_TIMEOUT_SECONDS,
            # Counters need no durability: no commit waits for a WAL flush.
            kwargs={"autocommit": True, "application_name": "fundtrail-gateway-ratelimit", "connect_timeout": 2,
                    "options": "-c synchronous_commit=off"},
        )
        await self._pool.open(wait=False)

    async def close(self) -> None:
        if self._purge is not None:
            self._purge.cancel()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _ensure_table(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            await conn.execute(_CREATE)
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            pass  # another replica created it at the same moment
        self._table_ready = True

    async def hit(self, key: str, rate: float) -> float | None:
        """Count one request of `key`; None if allowed, else seconds until its window ends."""
        if self._pool is None or time.monotonic() < self._retry_at:
            return self._decide_alone(key, rate)
        queue = self._queues.get(key)
        if queue is None:
            # No statement for `key` in flight: this hit runs the next one, for itself alone.
            self._queues[key] = []
            batch: list[_Waiter] = [_Waiter(rate, None)]
        else:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            queue.append(_Waiter(rate, future))
            try:
                handed = await future
            except BaseException:
                if future.done() and not future.cancelled() and isinstance(future.result(), list):
                    # Cancelled once handed the statement: the hits it holds are decided, the queue goes on.
                    for w in future.result()[1:]:
                        _settle(w, self._decide_alone(key, w.rate))
                    self._hand_on(key)
                raise
            if not isinstance(handed, list):
                return handed  # decided by the statement of the hit ahead of it
            batch = handed  # this hit runs the statement for the hits queued with it
        own: float | None = None
        try:
            own = await self._count(key, batch)
        finally:
            self._hand_on(key)
        return own

    async def _count(self, key: str, batch: list[_Waiter]) -> float | None:
        """One statement for every hit of `batch` (batch[0] is the caller's); decide the others, return the first's."""
        n = len(batch)
        pool = self._pool
        if pool is None or time.monotonic() < self._retry_at:  # closed, or gone while these hits waited
            for w in batch[1:]:
                _settle(w, self._decide_alone(key, w.rate))
            return self._decide_alone(key, batch[0].rate)
        try:
            try:
                async with pool.connection(ACQUIRE_TIMEOUT_SECONDS) as conn:
                    if not self._table_ready:
                        await self._ensure_table(conn)
                    cur = await conn.execute(_HIT, {"key": key, "window": self.window, "n": n})
                    row = await cur.fetchone()
            except (psycopg.Error, PoolTimeout) as exc:
                # Decide alone for a while rather than wait on a database that is not there each request.
                self._retry_at = time.monotonic() + RETRY_SHARED_AFTER_SECONDS
                if not self._warned:
                    log.warning("shared rate limit not reachable (%s); this process decides alone", exc)
                    self._warned = True
                for w in batch[1:]:
                    _settle(w, self._decide_alone(key, w.rate))
                return self._decide_alone(key, batch[0].rate)
        except BaseException:
            for w in batch[1:]:  # cancelled: the others are decided all the same
                _settle(w, self._decide_alone(key, w.rate))
            raise
        self._warned = False
        self._maybe_purge()
        if row is None:
            for w in batch[1:]:
                _settle(w, None)
            return None
        total, remaining = int(row[0]), max(float(row[1]), 0.0)
        # The batch's hits are the window's last n, numbered in arrival order.
        decided = [None if total - n + i + 1 <= _limit(w.rate, self.window) else remaining
                   for i, w in enumerate(batch)]
        for w, wait in zip(batch[1:], decided[1:], strict=True):
            _settle(w, wait)
        return decided[0]

    def _hand_on(self, key: str) -> None:
        """After a statement: the hits queued meanwhile go to the first of them, who runs the next one."""
        queue = self._queues.pop(key, [])
        queue = [w for w in queue if w.future is not None and not w.future.done()]
        if queue:
            self._queues[key] = []
            queue[0].future.set_result(queue)  # type: ignore[union-attr]

    def _decide_alone(self, key: str, rate: float) -> float | None:
        return self._fallback.acquire(key, time.monotonic(), cost=max(1.0, self._fallback.rate / rate))

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now - self._purged_at < PURGE_EVERY_SECONDS or (self._purge is not None and not self._purge.done()):
            return
        self._purged_at = now
        self._purge = asyncio.ensure_future(self._purge_old())

    async def _purge_old(self) -> None:
        if self._pool is None:
            return
        try:
            async with self._pool.connection(ACQUIRE_TIMEOUT_SECONDS) as conn:
                await conn.execute(_PURGE, {"window": self.window})
        except (psycopg.Error, PoolTimeout) as exc:
            log.debug("purging old rate windows failed: %s", exc)
