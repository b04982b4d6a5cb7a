"""Rate limits shared by every gateway replica: one counter per caller and fixed window in PostgreSQL.

Each request costs one statement (an upsert that returns the window's count), on a small pool of its
own: the read pools are read-only by design. Windows are numbered by PostgreSQL's clock, so replicas
with skewed clocks still share them. The table is UNLOGGED (counters need no crash safety) and is
created by the gateway on first use; old windows are deleted about once a minute. If PostgreSQL is
unreachable (or the table cannot be created) the in-process token bucket decides instead for the
next few seconds, so a database outage limits per replica rather than refusing everyone or no one.
"""

from __future__ import annotations

import asyncio
import logging
import time
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
VALUES (%(key)s, floor(extract(epoch FROM statement_timestamp()) / %(window)s)::bigint, 1)
ON CONFLICT (key, win) DO UPDATE SET hits = r.hits + 1
RETURNING r.hits, (r.win + 1) * %(window)s - extract(epoch FROM statement_timestamp())::float8"""
_PURGE = f"DELETE FROM {TABLE} WHERE win < floor(extract(epoch FROM statement_timestamp()) / %(window)s)::bigint - 1"
PURGE_EVERY_SECONDS = 60.0
# A hit waits at most this long for a connection before the in-process bucket decides.
ACQUIRE_TIMEOUT_SECONDS = 0.5
RETRY_SHARED_AFTER_SECONDS = 5.0


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
        limit = max(1, int(rate * self.window + 1e-9))
        now = time.monotonic()
        if self._pool is not None and now >= self._retry_at:
            try:
                async with self._pool.connection(ACQUIRE_TIMEOUT_SECONDS) as conn:
                    if not self._table_ready:
                        await self._ensure_table(conn)
                    cur = await conn.execute(_HIT, {"key": key, "window": self.window})
                    row = await cur.fetchone()
                self._warned = False
                self._maybe_purge()
                if row is None:
                    return None
                hits, remaining = int(row[0]), float(row[1])
                return None if hits <= limit else max(remaining, 0.0)
            except (psycopg.Error, PoolTimeout) as exc:
                # Decide alone for a while rather than wait on a database that is not there each request.
                self._retry_at = now + RETRY_SHARED_AFTER_SECONDS
                if not self._warned:
                    log.warning("shared rate limit not reachable (%s); this process decides alone", exc)
                    self._warned = True
        return self._fallback.acquire(key, now, cost=max(1.0, self._fallback.rate / rate))

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
