"""Uploaded files are mapped in worker processes, never on the event loop.

Mapping a spreadsheet is CPU-bound Python: on the event loop one hostile cell (`1e300000`) held
`/health` for 2.1 s, and a thread would not help (the GIL). A worker process maps the file and hands
back only what publishing needs (each row's wire bytes and key), which is cheap to unpickle. A file
that takes longer than the budget has its worker killed and a fresh pool started: the request gets a
413 problem, the other callers never notice. Workers are spawned (not forked: the server holds
threads) on the first import.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime

from fundtrail_schemas.decode import encode_event
from fundtrail_schemas.events import event_key
from fundtrail_schemas.tabular import RowDefaults, RowError, map_file

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WireRow:
    """One valid row, ready to publish: the facts the gateway checks and the record's bytes."""

    row: int
    event_id: str
    event_type: str
    schema_version: int
    region_code: str
    source_bureau: str
    key: bytes
    value: bytes


@dataclass(slots=True)
class MappedImport:
    format: str
    total_rows: int = 0
    rows: list[WireRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


class ImportTooExpensive(RuntimeError):
    """The file did not map within the budget; its worker was stopped."""


class ImportInterrupted(RuntimeError):
    """The worker pool was restarted under this import (another file overran its budget): retry."""


def map_upload(
    data: bytes, fmt: str, defaults: RowDefaults, published_at: datetime, sheet: str | None, max_rows: int
) -> MappedImport:
    """Runs in a worker process: map the file and encode every valid row."""
    report = map_file(data, fmt, defaults=defaults, published_at=published_at, sheet=sheet, max_rows=max_rows)
    out = MappedImport(report.format, report.total_rows, errors=list(report.errors))
    for r in report.rows:
        ev = r.event
        out.rows.append(WireRow(r.row, str(ev.event_id), ev.event_type, ev.schema_version, ev.region_code,
                                ev.source_bureau, event_key(ev), encode_event(ev)))
    return out


class ImportPool:
    """At most `workers` files mapped at a time, each within `budget` seconds of a worker's time."""

    def __init__(self, workers: int, budget: float) -> None:
        self._workers = workers
        self._budget = budget
        self._slots = asyncio.Semaphore(workers)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def map(
        self, data: bytes, fmt: str, defaults: RowDefaults, published_at: datetime, sheet: str | None, max_rows: int
    ) -> MappedImport:
        """Map a file in a worker; ImportTooExpensive when it takes longer than the budget."""
        async with self._slots:
            pool = self._executor()
            future = pool.submit(map_upload, data, fmt, defaults, published_at, sheet, max_rows)
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), self._budget)
            except BrokenProcessPool as exc:
                if self._pool is pool:
                    self._pool = None
                raise ImportInterrupted("the import workers were restarted; retry") from exc
            except TimeoutError:
                log.warning("an import of %d bytes took more than %.1fs; its worker is stopped", len(data),
                            self._budget)
                self._kill(pool)
                raise ImportTooExpensive(f"the file could not be mapped within {self._budget:g} s") from None

    def _kill(self, pool: ProcessPoolExecutor) -> None:
        # The executor cannot cancel a running task: its processes are killed and a new pool made.
        if self._pool is pool:
            self._pool = None
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
