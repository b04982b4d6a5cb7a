"""Reading the enriched log for replays: a throw-away consumer (no group, no commits), acceptance order."""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import heapq
import json
import os
import queue
import re
import struct
import subprocess
import sys
import termios
import threading
from collections import deque
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any

from fundtrail_schemas.kafka_security import client_security
from fundtrail_schemas.topics import ENRICHED_EVENTS

POLL_RECORDS = 5000
FETCHES_AHEAD = 16  # fetches of up to POLL_RECORDS records the reader thread may run ahead
# Moderate fetches: a 64 MiB response is allocated afresh and parsed in one go, which stalls the
# reader (and the evaluator waiting on it) and cost ~5 % of a parallel replay.
FETCH_MAX_BYTES = 4 * 1024 * 1024
PARTITION_FETCH_BYTES = 1024 * 1024
READER_BATCH = 1000
PIPE_BYTES = 1 << 20
CHECK_EVERY = 16  # records between two looks at how far the caller is behind

# `"sequence":` cannot occur inside a JSON string (quotes are escaped there) and no event or ledger
# field is called so: the first match is the document's own sequence.
_SEQUENCE = re.compile(rb'"sequence":\s*(\d+)')


def _sequence(value: bytes) -> int:
    m = _SEQUENCE.search(value)
    return int(m.group(1)) if m else -1


def log_size(bootstrap: str, topic: str) -> tuple[dict[int, int], int]:
    """End offset per partition and the number of records to read."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             **client_security("kafka-python"))
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in parts]
        begin = consumer.beginning_offsets(tps)
        end = consumer.end_offsets(tps)
        return {tp.partition: end[tp] for tp in tps}, sum(end[tp] - begin[tp] for tp in tps)
    finally:
        consumer.close()


def read_log(bootstrap: str, topic: str = ENRICHED_EVENTS) -> tuple[Iterator[bytes], int]:
    """Every record of the topic up to its current end, in acceptance order, and how many there are.

    Reading is CPU work (aiokafka parses record batches in C, then each record is a Python object
    and is merged by `sequence`); `read_log_prejudged` does it in a second process.
    """
    ends, total = log_size(bootstrap, topic)
    return _merged(bootstrap, topic, ends), total


def read_log_partitions(bootstrap: str, topic: str = ENRICHED_EVENTS) -> tuple[Iterator[tuple[int, bytes]], int]:
    """`read_log` with each record's partition (`partitioned.evaluate_partitioned` routes by it)."""
    ends, total = log_size(bootstrap, topic)
    return _merged(bootstrap, topic, ends, partitions=True), total


def read_log_prejudged(
    bootstrap: str, packs_dir: Path, fingerprint: str, topic: str = ENRICHED_EVENTS
) -> tuple[Iterator[tuple[bytes, bytes]], int]:
    """`read_log` in a child process (`python -m fundtrail_compliance.logreader`) that also evaluates
    plain conditions (`replay.Prejudge`) for as many records as keep it from falling behind the
    caller. Records cross over its stdout in framed batches (no pickling), each with its verdict
    bytes (empty: the caller evaluates it). `fingerprint` is that of the caller's pack set: the child
    loads `packs_dir` again and must get the same. Faster only with a core to spare.
    """
    # A fresh interpreter importing only what it needs (multiprocessing's spawn would import the
    # caller's __main__ again: seconds for the CLI), started first: its imports take longer than
    # finding the end offsets here.
    proc = subprocess.Popen(
        [sys.executable, "-m", __name__, bootstrap, topic, str(packs_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=PIPE_BYTES,
    )
    assert proc.stdin is not None
    try:
        ends, total = log_size(bootstrap, topic)
        proc.stdin.write(json.dumps(ends).encode() + b"\n")
        proc.stdin.close()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return _from_child(proc, packs_dir, fingerprint), total


def _frame(values: list[bytes], verdicts: list[bytes]) -> bytes:
    n = len(values)
    header = struct.pack(f"<I{2 * n}I", n, *map(len, values), *map(len, verdicts))
    return b"D" + header + b"".join(values) + b"".join(verdicts)


def _pending(fd: int) -> int:
    """Bytes written to the pipe and not read yet."""
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return buf[0]


def _pipe_size(fd: int) -> int:
    try:
        return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
    except (OSError, AttributeError):
        return 65536


def _child_main(argv: list[str]) -> int:
    """The reading process: frames on stdout (b"P" the packs' fingerprint, b"D" records, b"X" the
    end, b"E" a failure)."""
    from fundtrail_runtime.worker import tune_gc

    bootstrap, topic, packs_dir = argv
    out = os.fdopen(os.dup(1), "wb", buffering=PIPE_BYTES)
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the frames
    tune_gc()
    try:
        from .packs import load_dir
        from .replay import Prejudge, collector_paused

        packs = load_dir(Path(packs_dir))[1]
        # The end offsets to read up to, from the caller (one line on stdin).
        ends = {int(p): int(e) for p, e in json.loads(sys.stdin.readline()).items()}
        prejudge = Prejudge(packs)
        print_ = packs.fingerprint().encode()
        out.write(b"P" + struct.pack("<I", len(print_)) + print_)
        # Frames fit the pipe twice. While anything written waits unread, the caller has work
        # queued: the records read meanwhile are judged here too; once it has drained the pipe,
        # they are left to it (the child would be the slower one).
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(out.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # fewer wake-ups per frame
        frame_bytes = _pipe_size(out.fileno()) // 2
        batch: list[bytes] = []
        verdicts: list[bytes] = []
        size = 0
        with collector_paused():
            for value in _merged(bootstrap, topic, ends):
                if not len(batch) % CHECK_EVERY:
                    evaluate = _pending(out.fileno()) > 0
                verdicts.append(prejudge(value, evaluate))
                batch.append(value)
                size += len(value)
                if size >= frame_bytes or len(batch) >= READER_BATCH:
                    out.write(_frame(batch, verdicts))
                    out.flush()
                    batch, verdicts, size = [], [], 0
        if batch:
            out.write(_frame(batch, verdicts))
        out.write(b"X")
        return 0
    except BrokenPipeError:
        return 0  # the caller stopped reading
    except Exception as exc:  # the caller raises it
        message = f"reading {topic} failed: {exc!r}".encode()
        out.write(b"E" + struct.pack("<I", len(message)) + message)
        return 1
    finally:
        with contextlib.suppress(BrokenPipeError):
            out.close()


def _from_child(proc: subprocess.Popen[bytes], packs_dir: Path, fingerprint: str) -> Iterator[tuple[bytes, bytes]]:
    assert proc.stdout is not None
    stream = proc.stdout
    try:
        while True:
            tag = stream.read(1)
            if tag == b"X":
                return
            if tag in (b"E", b"P"):
                (size,) = struct.unpack("<I", _exactly(stream, 4, proc))
                text = _exactly(stream, size, proc).decode()
                if tag == b"E":
                    raise RuntimeError(text)
                if text != fingerprint:
                    raise RuntimeError(f"the packs in {packs_dir} changed while the replay started")
                continue
            if tag != b"D":
                raise RuntimeError(f"the log reader process ended unexpectedly ({proc.wait()})")
            (n,) = struct.unpack("<I", _exactly(stream, 4, proc))
            sizes = struct.unpack(f"<{2 * n}I", _exactly(stream, 8 * n, proc))
            view = memoryview(_exactly(stream, sum(sizes), proc))
            offset, split = 0, sum(sizes[:n])
            for size, vsize in zip(sizes[:n], sizes[n:], strict=True):
                yield bytes(view[offset : offset + size]), bytes(view[split : split + vsize])
                offset += size
                split += vsize
    finally:
        stream.close()
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _exactly(stream: IO[bytes], size: int, proc: subprocess.Popen[bytes]) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise RuntimeError(f"the log reader process ended unexpectedly ({proc.wait()})")
    return data


def _merged(bootstrap: str, topic: str, ends: dict[int, int], partitions: bool = False) -> Iterator[Any]:
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
                yield (p, buf.popleft()[1]) if partitions else buf.popleft()[1]
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
            auto_offset_reset="earliest", **client_security("aiokafka"),
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


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
