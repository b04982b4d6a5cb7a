"""Process-level settings the workers share: a bounded shutdown and the garbage collector's tuning;
how much CPU a process used, which the benchmarks report; and where a batch's time goes."""

from __future__ import annotations

import asyncio
import bisect
import gc
import itertools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fundtrail_schemas.kafka_security import client_security

log = logging.getLogger(__name__)


def exit_after(seconds: float, code: int = 70) -> threading.Timer:
    """Arm a hard exit: shutdown must not hang when the broker or the database is gone.

    faust's orderly stop flushes producers and leaves consumer groups, which can wait forever on a
    broker that is not there. Leaving without it is safe: uncommitted transactions roll back and
    unacknowledged records are redelivered and deduplicated.
    """

    def hard_exit() -> None:
        log.error("shutdown did not finish within %.0fs; exiting now", seconds)
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(seconds, hard_exit)
    timer.daemon = True
    timer.start()
    return timer


def bound_shutdown(worker: Any, seconds: float) -> Any:
    """Make a faust (mode) worker's stop on SIGTERM or SIGINT last at most `seconds`, then exit hard.

    mode installs `worker._on_sigterm` / `_on_sigint` as the loop's signal handlers when it starts,
    so wrapping them on the instance before `execute_from_commandline` arms `exit_after` first.
    """
    for name in ("_on_sigterm", "_on_sigint"):
        original = getattr(worker, name)

        def armed(original: Callable[[], None] = original) -> None:
            exit_after(seconds)
            original()

        setattr(worker, name, armed)
    return worker


def use_uvloop() -> None:
    """Run on uvloop when it is installed: the workers are asyncio-bound (faust schedules several
    callbacks per record; psycopg and aiokafka each make a socket write per request).

    Must run before the faust app is built: the app takes the event loop current then, and the
    worker runs the app's loop (called afterwards, this silently kept asyncio's own loop).
    """
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())


PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class CollectorPauses:
    """A `gc.callbacks` entry: times every collection and freezes what survived it.

    Without it a worker's older generations fill with the state it keeps (windows, judged events,
    ledger caches: in compliance at 1,000 events/s ~9 tracked objects per event), and the collector
    walks all of them again: a generation-1 collection over 700,000 objects paused compliance for
    435 ms, about every 75 s, stalling the pipeline. Frozen after each collection, survivors are not
    walked again. Cyclic garbage made of objects alive at a freeze would never be reclaimed, so
    `thaw_if_due`, called between batches, lets everything go and collects it all once every
    `thaw_every` seconds (one long pause then, on the worker's own schedule).

    Pauses are counted in plain lists, read at scrape time (`collect`): taking a lock from inside
    the collector (prometheus_client's metric values) could deadlock with the code it interrupted.
    """

    def __init__(self, thaw_every: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.thaw_every = thaw_every
        self._clock = clock
        self._thawed_at = clock()
        self._started = 0.0
        self.buckets = [[0] * (len(PAUSE_BUCKETS) + 1) for _ in range(3)]  # per generation, + Inf
        self.sums = [0.0, 0.0, 0.0]
        self.thaws = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = info["generation"]
        self.sums[generation] += pause
        self.buckets[generation][bisect.bisect_left(PAUSE_BUCKETS, pause)] += 1
        gc.freeze()

    def thaw_if_due(self) -> bool:
        """Collect everything, frozen or not, if `thaw_every` has passed since the last time."""
        now = self._clock()
        if now - self._thawed_at < self.thaw_every:
            return False
        self._thawed_at = now
        self.thaws += 1
        gc.unfreeze()
        gc.collect()  # its survivors are frozen again by the callback
        return True

    def collect(self) -> Iterator[Any]:
        """A prometheus_client custom collector: `fundtrail_gc_pause_seconds{generation}`."""
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(
            "fundtrail_gc_pause_seconds", "Pauses of the cyclic garbage collector", labels=["generation"]
        )
        bounds = [str(b) for b in PAUSE_BUCKETS] + ["+Inf"]
        for generation in range(3):
            counts = list(itertools.accumulate(self.buckets[generation]))
            family.add_metric([str(generation)], list(zip(bounds, counts, strict=True)), self.sums[generation])
        yield family


_pauses: CollectorPauses | None = None


def tune_gc() -> None:
    """Keep the cyclic collector off the long-lived heap (the app, packs, windows, timers, ledger caches).

    With the default thresholds the collector runs every 700 allocations and keeps re-walking that
    heap: measured ~5 % of compliance's evaluation and ~15 % of fund-tracker's batch time. Nothing
    relies on prompt cycle collection: events and batches are acyclic and freed by reference count.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def freeze_survivors() -> CollectorPauses:
    """For a worker's process (once): every collection freezes its survivors and is timed
    (`CollectorPauses`; the worker calls `thaw_if_due` between batches). The pauses are exported
    on prometheus_client's default registry."""
    global _pauses
    if _pauses is None:
        from prometheus_client import REGISTRY

        _pauses = CollectorPauses()
        gc.callbacks.append(_pauses)
        REGISTRY.register(_pauses)
    return _pauses


def thaw_if_due() -> None:
    """Between two batches: the periodic whole collection of `freeze_survivors` (no-op without it)."""
    if _pauses is not None:
        _pauses.thaw_if_due()


def faust_options(
    bootstrap: str, *, web_enabled: bool, web_port: int, data_dir: str, batch_size: int, **extra: Any
) -> dict[str, Any]:
    """The faust.App settings both workers share (raw bytes, loopback web, no topic declaration)."""
    return {
        "broker": [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()],
        "key_serializer": "raw",
        "value_serializer": "raw",
        "web_enabled": web_enabled,
        "web_port": web_port,
        "web_bind": "127.0.0.1",
        "web_host": "127.0.0.1",
        "datadir": data_dir,
        "topic_disable_leader": True,
        "topic_allow_declare": False,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "broker_commit_interval": 1.0,
        "stream_buffer_maxsize": max(4096, 2 * batch_size),
        "broker_max_poll_records": max(500, batch_size),
        **client_security("faust"),
        **extra,
    }


async def until_done(handle: Callable[[Any], Awaitable[object]], batch: Any, first_delay: float = 1.0) -> None:
    """Run `handle(batch)` until it succeeds: an unexpected error must neither ack the batch nor
    kill the agent, so it is retried with backoff (at most 30 s apart)."""
    delay = first_delay
    while True:
        try:
            await handle(batch)
            return
        except Exception:
            log.exception("a batch failed; retrying in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), 0 if unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BatchPhases:
    """Where a worker's batch time goes: seconds per phase, wall and this thread's CPU, accumulated
    (also added to the two counters, labelled by phase, when given). A phase's CPU includes whatever
    else the event loop ran while the phase awaited (the fetcher, the producer's sender): the
    worker's cost of that phase."""

    def __init__(self, phases: Iterable[str], seconds: Any = None, cpu_seconds: Any = None) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(phases, 0.0)
        self.cpu: dict[str, float] = dict.fromkeys(self.seconds, 0.0)
        self._counters = (seconds, cpu_seconds) if seconds is not None and cpu_seconds is not None else None
        self._mark = time.perf_counter()
        self._cpu_mark = time.thread_time()

    def start(self) -> None:
        """Begin timing (what came before belongs to no phase)."""
        self._mark = time.perf_counter()
        self._cpu_mark = time.thread_time()

    def lap(self, phase: str) -> None:
        """Charge the time since the last mark to `phase`."""
        now, cpu_now = time.perf_counter(), time.thread_time()
        seconds, cpu = now - self._mark, cpu_now - self._cpu_mark
        self._mark, self._cpu_mark = now, cpu_now
        self.add(phase, seconds, cpu)

    def add(self, phase: str, seconds: float, cpu: float) -> None:
        """Charge measured time to `phase`."""
        self.seconds[phase] += seconds
        self.cpu[phase] += cpu
        if self._counters is not None:
            self._counters[0].labels(phase).inc(seconds)
            self._counters[1].labels(phase).inc(cpu)

