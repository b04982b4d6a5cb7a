"""Uploaded files are parsed and mapped in worker processes, never on the event loop.

Parsing the multipart form and mapping a spreadsheet are CPU-bound Python: on the event loop one
hostile cell (`1e300000`) held `/health` for 2.1 s, and Starlette's form parser alone held it ~120 ms
per MiB; a thread would not help (the GIL). A worker process (at a lower CPU priority) parses the
form, validates its fields, maps the file and hands back only what publishing needs (each row's wire
bytes and key), which is cheap to unpickle. A file that takes longer than the budget has its worker
killed and a fresh pool started: the request gets a 413 problem, the other callers never notice.
Workers are spawned (not forked: the server holds threads) on the first import, which waits for
their start-up outside its budget.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header

from fundtrail_schemas.decode import encode_event
from fundtrail_schemas.events import event_key
from fundtrail_schemas.tabular import RowDefaults, RowError, detect_format, map_file

log = logging.getLogger(__name__)
WARM_UP_TIMEOUT_SECONDS = 60.0


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


class ImportForm(BaseModel):
    """The form fields of POST /v1/imports besides the file (validated in the worker)."""

    model_config = ConfigDict(extra="forbid")

    source_bureau: str | None = Field(None, max_length=128, description="Default source bureau")
    region_code: str | None = Field(
        None, pattern=r"^(\d{6}|\d{9}|\d{12})$", description="Default region code of the rows"
    )
    event_type: str | None = Field(None, max_length=64, description="Event type of every row")
    sheet: str | None = Field(None, max_length=128, description="XLSX sheet name (default: the first)")
    dry_run: bool = Field(False, description="Validate and report only")
    format: Literal["csv", "xlsx", "jsonl"] | None = Field(
        None, description="File format; by default the file name's extension decides"
    )


@dataclass(frozen=True, slots=True)
class FormProblem:
    """The upload is not a usable form: HTTP status, message and the offending fields."""

    status: int
    message: str
    errors: list[tuple[str, str]] = field(default_factory=list)
    slug: str | None = None


@dataclass(slots=True)
class Upload:
    """A parsed and mapped upload."""

    form: ImportForm
    filename: str
    mapped: MappedImport


class ImportTooExpensive(RuntimeError):
    """The file did not map within the budget; its worker was stopped."""


class ImportUnreadable(RuntimeError):
    """Mapping the file raised: it is refused as unreadable."""


class ImportInterrupted(RuntimeError):
    """The worker pool was restarted under this import (another file overran its budget): retry."""


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """name -> (file name or None, content) of every part of a multipart/form-data body; ValueError if
    it is not one."""
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise ValueError("send multipart/form-data with a boundary")
    parts: dict[str, tuple[str | None, bytes]] = {}
    data = bytearray()
    headers: dict[bytes, bytes] = {}
    name, value = bytearray(), bytearray()

    def on_part_begin() -> None:
        data.clear()
        headers.clear()

    def on_header_field(b: bytes, start: int, end: int) -> None:
        name.extend(b[start:end])

    def on_header_value(b: bytes, start: int, end: int) -> None:
        value.extend(b[start:end])

    def on_header_end() -> None:
        headers[bytes(name).lower()] = bytes(value)
        name.clear()
        value.clear()

    def on_part_data(b: bytes, start: int, end: int) -> None:
        data.extend(b[start:end])

    def on_part_end() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        field_name = disposition.get(b"name")
        if field_name is None:
            raise ValueError("a part has no name")
        filename = disposition.get(b"filename")
        parts[field_name.decode("utf-8", "replace")] = (
            filename.decode("utf-8", "replace") if filename is not None else None, bytes(data))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    parser.write(body)
    parser.finalize()
    return parts


def parse_and_map(body: bytes, content_type: str, published_at: datetime, max_rows: int) -> Upload | FormProblem:
    """Runs in a worker process: parse the form, validate its fields, map the file."""
    try:
        parts = parse_multipart(body, content_type)
    except Exception as exc:  # python-multipart raises several types for a broken body
        return FormProblem(400, f"the body is not a readable multipart/form-data form: {exc}", slug="malformed-form")
    upload = parts.pop("file", None)
    fields = {k: v.decode("utf-8", "replace") for k, (fname, v) in parts.items() if fname is None}
    errors: list[tuple[str, str]] = []
    if upload is None or upload[0] is None:
        errors.append(("body.file", "a file part named `file` is required"))
    try:
        form = ImportForm.model_validate(fields)
    except ValidationError as exc:
        errors += [("body." + ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
    if errors or upload is None:
        return FormProblem(422, "the request is not valid", errors, "validation-error")
    filename, data = upload
    try:
        fmt = form.format or detect_format(filename or "")
    except ValueError as exc:
        return FormProblem(422, str(exc), [("body.file", "name a .csv, .xlsx or .jsonl file, or give `format`")],
                           "unsupported-file")
    defaults = RowDefaults(source_bureau=form.source_bureau, region_code=form.region_code, event_type=form.event_type)
    return Upload(form, filename or "", map_upload(data, fmt, defaults, published_at, form.sheet, max_rows))


def map_upload(
    data: bytes, fmt: str, defaults: RowDefaults, published_at: datetime, sheet: str | None, max_rows: int
) -> MappedImport:
    """Map the file and encode every valid row."""
    report = map_file(data, fmt, defaults=defaults, published_at=published_at, sheet=sheet, max_rows=max_rows)
    out = MappedImport(report.format, report.total_rows, errors=list(report.errors))
    for r in report.rows:
        ev = r.event
        out.rows.append(WireRow(r.row, str(ev.event_id), ev.event_type, ev.schema_version, ev.region_code,
                                ev.source_bureau, event_key(ev), encode_event(ev)))
    return out


def _limit_worker(memory_bytes: int) -> None:
    # Requests come first: on a busy machine the mapping, not the event loop, waits for a core.
    try:
        os.nice(10)
    except OSError:  # pragma: no cover - not permitted here
        pass
    # A decompression bomb (an XLSX is a zip) fails with MemoryError here instead of exhausting the host.
    if memory_bytes > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _warm() -> None:
    """Nothing: submitted once per worker so that it is spawned and has imported the mapping code."""


class ImportPool:
    """At most `workers` files mapped at a time, each within `budget` seconds of a worker's time."""

    def __init__(self, workers: int, budget: float, memory_bytes: int = 0) -> None:
        self._workers = workers
        self._budget = budget
        self._memory = memory_bytes
        self._slots = asyncio.Semaphore(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._warming: list[asyncio.Future[None]] = []

    async def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_limit_worker, initargs=(self._memory,))
            self._warming = [asyncio.wrap_future(self._pool.submit(_warm)) for _ in range(self._workers)]
        if self._warming:
            # A worker's start-up (spawn and imports, ~1 s) is not part of any file's budget.
            warming, self._warming = self._warming, []
            await asyncio.wait_for(asyncio.gather(*warming), WARM_UP_TIMEOUT_SECONDS)
        return self._pool

    async def map(
        self, body: bytes, content_type: str, published_at: datetime, max_rows: int
    ) -> Upload | FormProblem:
        """Parse an upload form and map its file in a worker; ImportTooExpensive past the budget."""
        async with self._slots:
            pool = await self._executor()
            future = pool.submit(parse_and_map, body, content_type, published_at, max_rows)
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), self._budget)
            except BrokenProcessPool as exc:
                if self._pool is pool:
                    self._pool = None
                raise ImportInterrupted("the import workers were restarted; retry") from exc
            except TimeoutError:
                log.warning("an import of %d bytes took more than %.1fs; its worker is stopped", len(body),
                            self._budget)
                self._kill(pool)
                raise ImportTooExpensive(f"the file could not be mapped within {self._budget:g} s") from None
            except MemoryError as exc:
                raise ImportTooExpensive("the file needs more memory than an import may use") from exc
            except Exception as exc:  # whatever the file made the mapping raise: the file is unreadable
                log.warning("an import of %d bytes failed in its worker: %r", len(body), exc)
                raise ImportUnreadable(f"the file could not be read: {exc!r}"[:500]) from exc

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
