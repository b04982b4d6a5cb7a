"""Benchmarks: worker throughput against a raw aiokafka pass-through, and the trail's append rate.

`run(bootstrap, database_url, n=...)` isolates itself: topics under a fresh prefix, tables in a fresh
PostgreSQL schema of the given database (dropped at the end), a fresh consumer group. Both
throughput runs read the same backlog of `n` pre-published events from the same broker, in
batches of the same size, and wait for the broker's acks of what they produce:
- pass-through: aiokafka consumer → aiokafka producer (acks=all), nothing else;
- worker: `python -m fundtrail_tracker worker` as a subprocess; end to end means every event is
  committed in PostgreSQL and its enriched event acknowledged by the broker.
The worker's own metrics say where its time goes (phases inside a batch, and the rest: faust's
consumer, acks, commits).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from fundtrail_runtime.trail_nodes import TrailNodeStore, psycopg_rows
from fundtrail_runtime.worker import cpu_seconds
from fundtrail_schemas.kafka_security import client_security

from .adapters import postgres as pg
from .app import PRODUCER_LINGER_SECONDS, PRODUCER_MAX_BATCH_BYTES, PRODUCER_MAX_REQUEST_BYTES
from .core.trail import EntryKind, TrailDraft, subjects_of
from .synthetic import encode, generate, key_of
from .topics import TrackerTopics

TARGET_EVENTS_PER_S = 10_000
TARGET_RATIO = 0.5
TARGET_LEAVES_PER_S = 10_000


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_search_path(database_url: str, schema: str) -> str:
    sep = "&" if "?" in database_url else "?"
    return f"{database_url}{sep}options=-csearch_path%3D{schema}"


def _publish(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=20,
                             batch_size=512 * 1024, max_request_size=2 * 1024 * 1024,
                             **client_security("kafka-python"))
    started = time.perf_counter()
    for ev in events:
        producer.send(topic, key=key_of(ev), value=encode(ev))
    producer.flush()
    producer.close()
    return time.perf_counter() - started


async def _passthrough(bootstrap: str, source: str, target: str, n: int, batch_size: int) -> tuple[float, float]:
    """Seconds from the first record read to the last acknowledged, and this process's CPU seconds meanwhile."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_poll_records=batch_size,
                                **client_security("aiokafka"))
    # The worker's producer settings, so the comparison is fair.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=int(PRODUCER_LINGER_SECONDS * 1000),
                                max_batch_size=PRODUCER_MAX_BATCH_BYTES, max_request_size=PRODUCER_MAX_REQUEST_BYTES,
                                **client_security("aiokafka"))
    await consumer.start()
    await producer.start()
    try:
        seen = 0
        started: float | None = None
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=batch_size)
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            if started is None:
                started, cpu = time.perf_counter(), time.process_time()
            futures = [await producer.send(target, r.value, key=r.key, headers=list(r.headers)) for r in records]
            await asyncio.gather(*futures)
            seen += len(records)
        assert started is not None
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await producer.stop()
        await consumer.stop()


def passthrough(bootstrap: str, n: int = 20_000, batch_size: int = 1000) -> dict[str, Any]:
    """The aiokafka pass-through alone (what `run` compares the worker with), on topics of its own:
    other suites (the end-to-end latency's knee) take it as the rate this broker and machine allow."""
    from fundtrail_runtime.kafka_admin import ensure_topics
    from fundtrail_schemas.topics import TopicSpec

    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    source, target = f"{prefix}passthrough-in", f"{prefix}passthrough"
    ensure_topics(bootstrap, [TopicSpec(source, 6, "fund", "benchmark source"),
                              TopicSpec(target, 6, "fund", "benchmark sink")])
    events = generate(n, seed=int(prefix[6:14], 16), start=datetime.now(UTC) - timedelta(days=30))
    _publish(bootstrap, source, events)
    seconds, cpu = asyncio.run(_passthrough(bootstrap, source, target, n, batch_size))
    return {"passthrough_events_per_s": round(n / seconds), "passthrough_cpu_us_per_event": round(cpu * 1e6 / n)}


def _finish(datadir: str, seconds: float) -> None:
    # Exit at once: the measurement is done and a graceful faust shutdown takes seconds.
    Path(datadir, "seconds").write_text(str(seconds))
    os._exit(0)


def _faust_passthrough_main(bootstrap: str, source: str, target: str, n: int, batch_size: int, datadir: str) -> None:
    """Child process: the worker's faust set-up (noack_take, ack, produce, await acks) doing no work."""
    import faust

    from fundtrail_runtime.worker import use_uvloop

    use_uvloop()
    app = faust.App(
        f"{source}-faust-passthrough", broker=[f"kafka://{h}" for h in bootstrap.split(",")],
        key_serializer="raw", value_serializer="raw", web_enabled=False, topic_disable_leader=True,
        topic_allow_declare=False, datadir=datadir, consumer_auto_offset_reset="earliest", producer_acks=-1,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES, producer_max_request_size=PRODUCER_MAX_REQUEST_BYTES,
        producer_linger=PRODUCER_LINGER_SECONDS, stream_buffer_maxsize=max(4096, 2 * batch_size),
        broker_max_poll_records=max(500, batch_size), **client_security("faust"),
    )
    topic = app.topic(source, key_type=bytes, value_type=bytes)
    state: dict[str, Any] = {"seen": 0, "started": None}

    @app.agent(topic, concurrency=1)
    async def passthrough(stream: Any) -> None:
        async for events in stream.noack_take(batch_size, within=0.2):
            if state["started"] is None:
                state["started"] = time.perf_counter()
            futures = [await app.producer.send(target, e.message.key, e.message.value, None, None,
                                               e.message.headers) for e in events]
            await asyncio.gather(*futures)
            for e in events:
                await stream.ack(e)
            state["seen"] += len(events)
            if state["seen"] >= n:
                _finish(datadir, time.perf_counter() - state["started"])

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def _faust_passthrough(bootstrap: str, source: str, target: str, n: int, batch_size: int, work: Path,
                       timeout: float) -> float:
    datadir = work / "faust-passthrough"
    datadir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fundtrail_tracker.bench", "faust-passthrough", bootstrap, source, target, str(n),
         str(batch_size), str(datadir)],
        stdout=subprocess.DEVNULL, stderr=(work / "faust-passthrough.log").open("wb"),
    )
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    result = datadir / "seconds"
    if not result.exists():
        raise RuntimeError(f"faust pass-through failed; see {work / 'faust-passthrough.log'}")
    return float(result.read_text())


def _end_offsets(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), **client_security("kafka-python"))
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        consumer.close()


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for m in re.finditer(r'^fundtrail_tracker_phase_(cpu_)?seconds_total\{phase="(\w+)"\} ([0-9.e+-]+)$', text, re.M):
        out[("cpu:" if m.group(1) else "") + m.group(2)] = float(m.group(3))
    for name in ("fundtrail_tracker_batch_seconds_count", "fundtrail_tracker_batch_seconds_sum"):
        found = re.search(rf"^{name}\{{topic=\"[^\"]*events\.raw\"\}} ([0-9.e+-]+)$", text, re.M)
        if found:
            out[name] = float(found.group(1))
    return out


def _backend_pids(conn: psycopg.Connection[Any]) -> list[int]:
    rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'fundtrail-tracker'").fetchall()
    return [r[0] for r in rows]


def _run_worker(bootstrap: str, url: str, topics: TrackerTopics, n: int, batch_size: int, work: Path,
                timeout: float, broker_pid: int | None = None) -> dict[str, Any]:
    metrics_port = _free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": url,
        "FUNDTRAIL_TRACKER_TOPIC_PREFIX": topics.prefix,
        "FUNDTRAIL_TRACKER_APP_ID": f"{topics.prefix}tracker",
        "FUNDTRAIL_TRACKER_SIGNING_KEY_PATH": str(work / "signing.pem"),
        "FUNDTRAIL_TRACKER_DEV_MODE": "true",
        "FUNDTRAIL_TRACKER_DATA_DIR": str(work / "data"),
        "FUNDTRAIL_TRACKER_BATCH_SIZE": str(batch_size),
        "FUNDTRAIL_TRACKER_METRICS_PORT": str(metrics_port),
        "FUNDTRAIL_TRACKER_LOG_LEVEL": "warning",
    }
    log = (work / "worker.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "fundtrail_tracker", "worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=work)
    conn = psycopg.connect(pg.conninfo(url), autocommit=True)
    try:
        deadline = time.monotonic() + timeout
        done_at: float | None = None
        cpu_start: tuple[float, float, float] | None = None
        broker = (lambda: cpu_seconds(broker_pid)) if broker_pid else (lambda: 0.0)
        while time.monotonic() < deadline:
            if cpu_start is None and (backends := _backend_pids(conn)):
                cpu_start = (cpu_seconds(proc.pid), sum(cpu_seconds(b) for b in backends), broker())
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}; see {work / 'worker.log'}")
            # The trail's last sequence number is an index lookup; count(*) would scan and steal CPU.
            row = conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM trail_entry").fetchone()
            if row and row[0] >= n and _end_offsets(bootstrap, topics.enriched) >= n:
                done_at = time.time()
                cpu_end = (cpu_seconds(proc.pid), sum(cpu_seconds(b) for b in _backend_pids(conn)), broker())
                break
            time.sleep(0.1)
        processed = conn.execute("SELECT count(*) FROM processed_event").fetchone()
        if processed is None or processed[0] != n:
            raise RuntimeError(f"expected {n} processed events, found {processed}")
        if done_at is None:
            raise TimeoutError(f"worker did not finish {n} events within {timeout}s; see {work / 'worker.log'}")
        first = conn.execute("SELECT min(accepted_at) FROM processed_event").fetchone()
        assert first is not None and first[0] is not None
        seconds = done_at - first[0].timestamp()
        metrics = _scrape(metrics_port)
    finally:
        conn.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    phases = {k: v for k, v in metrics.items() if not k.startswith(("fundtrail_", "cpu:"))}
    phase_cpu = {k.removeprefix("cpu:"): v for k, v in metrics.items() if k.startswith("cpu:")}
    batches = metrics.get("fundtrail_tracker_batch_seconds_count", 0.0)
    in_batches = metrics.get("fundtrail_tracker_batch_seconds_sum", 0.0)
    worker_cpu = cpu_end[0] - cpu_start[0] if cpu_start else None
    pg_cpu = cpu_end[1] - cpu_start[1] if cpu_start else None
    broker_cpu = cpu_end[2] - cpu_start[2] if cpu_start and broker_pid else None
    return {
        "seconds": seconds,
        "worker_cpu_us_per_event": round(worker_cpu * 1e6 / n) if worker_cpu is not None else None,
        "postgres_cpu_us_per_event": round(pg_cpu * 1e6 / n) if pg_cpu is not None else None,
        "broker_cpu_us_per_event": round(broker_cpu * 1e6 / n) if broker_cpu is not None else None,
        "phase_seconds": {k: round(v, 3) for k, v in phases.items()},
        # The worker thread's CPU inside each phase, per event (a phase's awaits include whatever
        # else the event loop ran meanwhile: BatchPhases).
        "phase_cpu_us_per_event": {k: round(v * 1e6 / n, 1) for k, v in phase_cpu.items()},
        "batches": int(batches),
        "mean_batch_size": round(n / batches, 1) if batches else None,
        "share_inside_batches": round(in_batches / seconds, 3) if seconds else None,
    }


def _bench_items(start: int, count: int, now: datetime) -> list[TrailDraft]:
    return [
        TrailDraft(EntryKind.EVENT, uuid.uuid4(), "BenchmarkLeaf", "BENCH", None, None, None, None, None,
                   "440700", now, None, b'{"i":%d}' % i)
        for i in range(start, start + count)
    ]


async def _trail_append(url: str, leaves: int, batch: int) -> float:
    """Append synthetic leaves the way the worker does (lock, frontier, COPY); leaves built per batch."""
    conn = await pg.connect(url)
    head = pg.TrailHead()
    now = datetime.now(UTC)
    started = time.perf_counter()
    try:
        for i in range(0, leaves, batch):
            items = _bench_items(i, min(batch, leaves - i), now)
            async with conn.transaction(), conn.cursor() as cur:
                await pg.lock_trail(cur)
                frontier = await head.load(cur)
                heads = await (await pg.request_trail_heads(conn, subjects_of(items)))()
                await pg.append_trail(cur, frontier, items, now, heads)
            head.adopt(frontier)
        return time.perf_counter() - started
    finally:
        await conn.close()


class _CountingStore(TrailNodeStore):
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__(psycopg_rows(conn))
        self.queries = 0
        self.subtrees = 0

    def get_subtree_hashes(self, ranges: Any) -> list[bytes]:
        self.queries += 1
        self.subtrees += len(ranges)
        return super().get_subtree_hashes(ranges)


def _proofs(url: str, size: int, samples: int = 50) -> dict[str, Any]:
    """Inclusion and consistency proofs on the appended log: lookups per proof and latency, all verified."""
    import random

    from fundtrail_verify import merkle

    rng = random.Random(size)
    with psycopg.connect(pg.conninfo(url)) as conn:
        store = _CountingStore(conn)
        root = merkle.root_from_store(store, size)
        store.queries = store.subtrees = 0
        started = time.perf_counter()
        for _ in range(samples):
            index = rng.randrange(size)
            row = conn.execute("SELECT leaf_hash FROM trail_entry WHERE seq = %s", (index,)).fetchone()
            assert row is not None
            proof = merkle.inclusion_proof_from_store(store, index, size)
            if not merkle.verify_inclusion(bytes(row[0]), index, size, proof, root):
                raise AssertionError(f"inclusion proof of leaf {index} does not verify")
        inclusion = (time.perf_counter() - started) / samples
        inclusion_subtrees = store.subtrees / samples
        old = rng.randrange(1, size)
        old_root = merkle.root_from_store(store, old)
        proof = merkle.consistency_proof_from_store(store, old, size)
        if not merkle.verify_consistency(old, size, old_root, root, proof):
            raise AssertionError("consistency proof does not verify")
    return {
        "tree_size": size,
        "inclusion_proof_ms": round(inclusion * 1000, 2),
        "inclusion_subtrees_fetched": round(inclusion_subtrees, 1),
        "queries_per_proof": 1,
        "consistency_proof_elements": len(proof),
    }


def _ceiling(passthrough_cpu_us: float, postgres_cpu_us: float | None, broker_cpu_us: float | None = None
             ) -> float | None:
    """The most events/s any worker could reach here if everything it does beyond moving records
    (validation, ledger, trail, its own PostgreSQL client work) cost nothing: the machine's cores
    divided by the CPU per event of what remains, all measured in this run: the Kafka client work
    of the pass-through (consume, produce, acks), PostgreSQL's work for the worker's writes, and
    the broker's work while the worker ran (left out when unknown, which raises the ceiling)."""
    if postgres_cpu_us is None:
        return None
    per_event = passthrough_cpu_us + postgres_cpu_us + (broker_cpu_us or 0.0)
    return (os.cpu_count() or 1) * 1e6 / per_event if per_event > 0 else None


def _fixed_cost(big: dict[str, Any], small: dict[str, Any]) -> dict[str, Any]:
    """The worker's CPU split into a fixed cost per batch and a cost per event, from two runs at
    different mean batch sizes b: cpu_per_event(b) = per_event + fixed / b, solved for both."""
    c1, c2 = big["worker_cpu_us_per_event"], small["worker_cpu_us_per_event"]
    b1, b2 = big["mean_batch_size"], small["mean_batch_size"]
    out: dict[str, Any] = {"small_batch_size": b2, "small_batch_cpu_us_per_event": c2}
    if None in (c1, c2, b1, b2) or abs(1 / b2 - 1 / b1) < 1e-4:  # batch sizes too close to separate
        return {**out, "fixed_cpu_ms_per_batch": None, "variable_cpu_us_per_event": None}
    fixed_us = (c2 - c1) / (1 / b2 - 1 / b1)
    return {**out, "fixed_cpu_ms_per_batch": round(fixed_us / 1000, 2),
            "variable_cpu_us_per_event": round(c1 - fixed_us / b1, 1)}


@contextmanager
def _isolated(bootstrap: str, database_url: str, sinks: Sequence[str] = ()) -> Iterator[tuple[TrackerTopics, str, int]]:
    """Fresh topics (and pass-through `sinks` under their prefix), a fresh migrated PostgreSQL schema
    (dropped afterwards); yields the topics, the schema's URL and a seed."""
    from fundtrail_runtime.db import upgrade
    from fundtrail_runtime.kafka_admin import ensure_topics
    from fundtrail_schemas.topics import TopicSpec

    run_id = uuid.uuid4().hex[:8]
    topics = TrackerTopics.with_prefix(f"bench-{run_id}.")
    ensure_topics(bootstrap, [*topics.specs(),
                              *(TopicSpec(f"{topics.prefix}{s}", 6, "fund", "benchmark sink") for s in sinks)])
    schema = f"bench_{run_id}"
    admin = psycopg.connect(pg.conninfo(database_url), autocommit=True)
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = _with_search_path(database_url, schema)
        upgrade(url)
        yield topics, url, int(run_id, 16)
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def _events(n: int, seed: int) -> list[dict[str, Any]]:
    return generate(n, seed=seed, start=datetime.now(UTC) - timedelta(days=30))


def run(bootstrap: str, database_url: str, n: int = 50_000, *, batch_size: int = 1000,
        trail_leaves: int = 1_000_000, timeout: float = 900.0, broker_pid: int | None = None) -> dict[str, Any]:
    """Measure worker throughput vs an aiokafka pass-through and the trail append rate; return the numbers."""
    with _isolated(bootstrap, database_url, ("passthrough", "passthrough-faust")) as (topics, url, seed):
        passthrough_topic = f"{topics.prefix}passthrough"
        publish_seconds = _publish(bootstrap, topics.raw, _events(n, seed))
        pass_seconds, pass_cpu = asyncio.run(_passthrough(bootstrap, topics.raw, passthrough_topic, n, batch_size))
        with tempfile.TemporaryDirectory(prefix="fundtrail-bench-") as tmp:
            faust_seconds = _faust_passthrough(bootstrap, topics.raw, f"{passthrough_topic}-faust", n, batch_size,
                                               Path(tmp), timeout)
            worker = _run_worker(bootstrap, url, topics, n, batch_size, Path(tmp), timeout, broker_pid)
        trail_seconds = asyncio.run(_trail_append(url, trail_leaves, batch_size))
        proofs = _proofs(url, n + trail_leaves)
    # A second, shorter run in batches a tenth the size separates the fixed cost of a batch.
    small_n, small_batch = max(n // 5, 1000), max(batch_size // 10, 10)
    with _isolated(bootstrap, database_url) as (topics, url, seed), \
            tempfile.TemporaryDirectory(prefix="fundtrail-bench-") as tmp:
        _publish(bootstrap, topics.raw, _events(small_n, seed))
        small = _run_worker(bootstrap, url, topics, small_n, small_batch, Path(tmp), timeout, broker_pid)
    worker["fixed_cost"] = _fixed_cost(worker, small)
    worker_rate = n / worker["seconds"]
    pass_rate = n / pass_seconds
    leaves_rate = trail_leaves / trail_seconds
    pass_cpu_us = pass_cpu * 1e6 / n
    ceiling = _ceiling(pass_cpu_us, worker["postgres_cpu_us_per_event"], worker["broker_cpu_us_per_event"])
    return {
        "events": n,
        "batch_size": batch_size,
        "publish_events_per_s": round(n / publish_seconds),
        "passthrough_events_per_s": round(pass_rate),
        "faust_passthrough_events_per_s": round(n / faust_seconds),
        "worker_events_per_s": round(worker_rate),
        "worker_vs_passthrough": round(worker_rate / pass_rate, 3),
        "worker_vs_faust_passthrough": round(worker_rate * faust_seconds / n, 3),
        "passthrough_cpu_us_per_event": round(pass_cpu_us),
        "ceiling_events_per_s": round(ceiling) if ceiling else None,
        "ceiling_vs_passthrough": round(ceiling / pass_rate, 3) if ceiling else None,
        "worker": worker,
        "trail_leaves": trail_leaves,
        "trail_leaves_per_s": round(leaves_rate),
        "proofs": proofs,
        "targets": {
            "worker_events_per_s": TARGET_EVENTS_PER_S,
            "worker_vs_passthrough": TARGET_RATIO,
            "trail_leaves_per_s": TARGET_LEAVES_PER_S,
        },
        "met": {
            "worker_events_per_s": worker_rate >= TARGET_EVENTS_PER_S,
            "worker_vs_passthrough": worker_rate / pass_rate >= TARGET_RATIO,
            "trail_leaves_per_s": leaves_rate >= TARGET_LEAVES_PER_S,
        },
    }


if __name__ == "__main__":  # pragma: no cover - manual use: python -m fundtrail_tracker.bench BOOTSTRAP URL [N]
    import json

    if sys.argv[1] == "faust-passthrough":
        a = sys.argv[2:]
        _faust_passthrough_main(a[0], a[1], a[2], int(a[3]), int(a[4]), a[5])
    else:
        print(json.dumps(run(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 50_000), indent=2))
