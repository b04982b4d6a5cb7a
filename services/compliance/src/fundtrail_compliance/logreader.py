"""Reading the enriched log for replays: a throw-away consumer (no group, no commits), acceptance order."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import multiprocessing as mp
import queue
import re
import struct
import threading
from collections import deque
from collections.abc import Generator, Iterator
from typing import Any

from fundtrail_schemas.topics import ENRICHED_EVENTS

POLL_RECORDS = 5000
FETCHES_AHEAD = 16  # fetches of up to POLL_RECORDS records the reader thread may run ahead
FETCH_MAX_BYTES = 64 * 1024 * 1024
PARTITION_FETCH_BYTES = 16 * 1024 * 1024
READER_BATCH = 1000

# `"sequence":` cannot occur inside a JSON string (quotes are escaped there) and no event or ledger
# field is called so: the first match is the document's own sequence.
_SEQUENCE = re.compile(rb'"sequence":\s*(\d+)')


def _sequence(value: bytes) -> int:
    m = _SEQUENCE.search(value)
    return int(m.group(1)) if m else -1


def log_size(bootstrap: str, topic: str) -> tuple[dict[int, int], int]:
    """End offset per partition and the number of records to read."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in parts]
        begin = consumer.beginning_offsets(tps)
        end = consumer.end_offsets(tps)
        return {tp.partition: end[tp] for tp in tps}, sum(end[tp] - begin[tp] for tp in tps)
    finally:
        consumer.close()


def read_log(bootstrap: str, topic: str = ENRICHED_EVENTS, *, parallel: bool = False) -> tuple[Iterator[bytes], int]:
    """Every record of the topic up to its current end, in acceptance order, and how many there are.

    Reading is CPU work (aiokafka parses record batches in C, then each record is a Python object
    and is merged by `sequence`). With `parallel`, a child process reads and merges while the caller
    evaluates, records crossing over in framed batches
    (no pickling): faster only when the machine has a core to spare (the benchmark measures both).
    """
    ends, total = log_size(bootstrap, topic)
    if not parallel:
        return _merged(bootstrap, topic, ends), total
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_reader, args=(bootstrap, topic, ends, sender), daemon=True)
    proc.start()
    sender.close()
    return _receive(receiver, proc), total


def _frame(values: list[bytes]) -> bytes:
    return b"D" + struct.pack(f"<I{len(values)}I", len(values), *map(len, values)) + b"".join(values)


def _reader(bootstrap: str, topic: str, ends: dict[int, int], conn: Any) -> None:
    """Child process: read the log in order and send it in framed batches; b"X" ends, b"E…" reports."""
    try:
        batch: list[bytes] = []
        for value in _merged(bootstrap, topic, ends):
            batch.append(value)
            if len(batch) >= READER_BATCH:
                conn.send_bytes(_frame(batch))
                batch = []
        if batch:
            conn.send_bytes(_frame(batch))
        conn.send_bytes(b"X")
    except Exception as exc:  # the parent raises it
        conn.send_bytes(b"E" + f"reading {topic} failed: {exc!r}".encode())
    finally:
        conn.close()


def _receive(conn: Any, proc: Any) -> Iterator[bytes]:
    try:
        while True:
            try:
                msg = conn.recv_bytes()
            except EOFError as exc:
                raise RuntimeError(f"the log reader process ended unexpectedly ({proc.exitcode})") from exc
            tag = msg[:1]
            if tag == b"X":
                return
            if tag == b"E":
                raise RuntimeError(msg[1:].decode())
            (n,) = struct.unpack_from("<I", msg, 1)
            offset = 5 + 4 * n
            view = memoryview(msg)
            for size in struct.unpack_from(f"<{n}I", msg, 5):
                yield bytes(view[offset:offset + size])
                offset += size
    finally:
        conn.close()
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)


def _merged(bootstrap: str, topic: str, ends: dict[int, int]) -> Iterator[bytes]:
    # A k-way merge on `sequence` over per-partition buffers, refilled a fetch at a time.
    buffers: dict[int, deque[tuple[int, bytes]]] = {p: deque() for p in ends}
    heads: list[tuple[int, int]] = []  # (sequence, partition) of every non-empty buffer's first record
    fetches = _fetches(bootstrap, topic, ends)
    try:
        pending = next(fetches)  # partitions with records still to fetch
        while pending or heads:
            empty = [p for p in pending if not buffers[p]]
            if empty:
                for p, values in fetches.send(empty).items():
                    buf = buffers[p]
                    was_empty = not buf
                    buf.extend((_sequence(v), v) for v in values)
                    if was_empty and buf:
                        heapq.heappush(heads, (buf[0][0], p))
                continue
            # Every partition that may still hold earlier records has some buffered: merge until
            # one of those runs dry.
            while heads:
                _, p = heapq.heappop(heads)
                buf = buffers[p]
                yield buf.popleft()[1]
                if buf:
                    heapq.heappush(heads, (buf[0][0], p))
                elif p in pending:
                    break
    finally:
        fetches.close()


def _fetches(bootstrap: str, topic: str, ends: dict[int, int]) -> Generator[Any, list[int], None]:
    """Yields the partitions to read (`pending`, a set it keeps up to date), then, each time it is
    sent a list of partitions it needs, the next fetch: {partition: [value, ...]} up to the end
    offsets (for any partitions; the caller buffers them).

    aiokafka parses record batches in C (kafka-python does it in Python, ~25 µs a record). It runs
    in a thread of its own, so the next fetches travel (and the broker serves them) while the
    caller evaluates; the queue between them is bounded.
    """
    out: queue.Queue[Any] = queue.Queue(maxsize=FETCHES_AHEAD)
    stop = threading.Event()
    reader = threading.Thread(target=_fetch_thread, args=(bootstrap, topic, ends, out, stop), daemon=True,
                              name="fundtrail-replay-fetch")
    reader.start()
    try:
        pending = {p for p in ends if ends[p] > 0}
        first = out.get()
        if isinstance(first, BaseException):
            raise first
        pending &= first  # partitions with records still to fetch, from their current beginnings
        yield pending
        while True:
            item = out.get()
            if isinstance(item, BaseException):
                raise item
            got, done = item
            pending -= done
            yield got
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                out.get_nowait()  # unblock a reader waiting to hand over a fetch
        reader.join(timeout=10)


def _fetch_thread(bootstrap: str, topic: str, ends: dict[int, int], out: queue.Queue[Any], stop: Any) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    async def run() -> None:
        tps = {p: TopicPartition(topic, p) for p in ends}
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, client_id="fundtrail-replay",
            fetch_max_wait_ms=100, fetch_max_bytes=FETCH_MAX_BYTES, max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            consumer.assign(list(tps.values()))
            await consumer.seek_to_beginning(*tps.values())
            pending = {p for p, tp in tps.items() if await consumer.position(tp) < ends[p]}
            if not put(set(pending)):
                return
            while pending and not stop.is_set():
                got = await consumer.getmany(*(tps[p] for p in pending), timeout_ms=1000, max_records=POLL_RECORDS)
                values: dict[int, list[bytes]] = {}
                done: set[int] = set()
                for tp, records in got.items():
                    end = ends[tp.partition]
                    values[tp.partition] = [r.value for r in records if r.offset < end and r.value is not None]
                    if records and records[-1].offset >= end - 1:
                        done.add(tp.partition)
                        consumer.pause(tp)  # read up to the end taken at the start: no further
                pending -= done
                if not put((values, done)):
                    return
        finally:
            await consumer.stop()

    try:
        asyncio.run(run())
    except BaseException as exc:  # handed to the caller, which raises it
        put(RuntimeError(f"reading {topic} failed: {exc!r}"))
