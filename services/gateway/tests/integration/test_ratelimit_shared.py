"""The shared rate limit against a real PostgreSQL: concurrent hits of one caller wait for one statement
between them, and each is still counted once and decided in arrival order, across replicas too."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from fundtrail_gateway.adapters.ratelimit import TABLE, SharedRateLimiter
from fundtrail_gateway.core.ratelimit import RateLimiter
from fundtrail_runtime.db import conninfo

pytestmark = pytest.mark.integration

WINDOW = 3600.0


async def _opened(url: str) -> SharedRateLimiter:
    # The fallback bucket would allow everything: a hit decided without PostgreSQL shows as a wrong count.
    limiter = SharedRateLimiter(url, WINDOW, RateLimiter(1000.0, 1000))
    await limiter.open()
    deadline = time.monotonic() + 90
    while not limiter.shared:  # the pool connects in the background; a failed try waits 5 s before the next
        assert time.monotonic() < deadline, "the shared rate limit never reached PostgreSQL"
        await limiter.hit("warm-up", 1000.0)
        if not limiter.shared:
            await asyncio.sleep(0.2)
    return limiter


def _counted(url: str, key: str) -> int:
    with psycopg.connect(conninfo(url)) as conn:
        row = conn.execute(f"SELECT coalesce(sum(hits), 0) FROM {TABLE} WHERE key = %s", (key,)).fetchone()
    assert row is not None
    return int(row[0])


async def test_concurrent_hits_are_counted_once_each_and_decided_in_arrival_order(migrated_database_url: str) -> None:
    limiter = await _opened(migrated_database_url)
    try:
        results = await asyncio.gather(*(limiter.hit("sub:burst", 7 / WINDOW) for _ in range(15)))
        # Seven per window: the first seven to arrive pass, the rest are told how long the window lasts.
        assert results[:7] == [None] * 7
        assert all(r is not None and 0 < r <= WINDOW for r in results[7:])
        assert _counted(migrated_database_url, "sub:burst") == 15
        # Nothing is left waiting: a later hit is answered at once (and refused: the window is spent).
        later = await asyncio.wait_for(limiter.hit("sub:burst", 7 / WINDOW), 60)
        assert later is not None
    finally:
        await limiter.close()


async def test_replicas_share_the_window_exactly(migrated_database_url: str) -> None:
    a, b = await _opened(migrated_database_url), await _opened(migrated_database_url)
    try:
        results = await asyncio.gather(*(r.hit("sub:shared", 9 / WINDOW) for r in (a, b, a, b) for _ in range(6)))
        assert sum(r is None for r in results) == 9
        assert _counted(migrated_database_url, "sub:shared") == 24
    finally:
        await a.close()
        await b.close()


async def test_a_cancelled_waiting_hit_does_not_hold_up_the_others(migrated_database_url: str) -> None:
    limiter = await _opened(migrated_database_url)
    try:
        tasks = [asyncio.create_task(limiter.hit("sub:cancel", 100 / WINDOW)) for _ in range(6)]
        await asyncio.sleep(0)  # every task has started: the first runs the statement, the others wait
        tasks[3].cancel()
        done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        assert isinstance(done[3], asyncio.CancelledError)
        assert [d for i, d in enumerate(done) if i != 3] == [None] * 5
        assert await asyncio.wait_for(limiter.hit("sub:cancel", 100 / WINDOW), 60) is None
        assert _counted(migrated_database_url, "sub:cancel") == 6
    finally:
        await limiter.close()
