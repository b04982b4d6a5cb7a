"""Benchmark: the trail of a 1,000-event fund at 50 concurrent clients against a real uvicorn process.

`run(database_url)` seeds the fund (into an empty migrated database, or reuses it), starts
`python -m uvicorn` on 127.0.0.1 with the gateway, drives it with a minimal keep-alive HTTP/1.1
client (asyncio streams: the load generator must cost less CPU than the server it measures), and
reports p50/p99 latency and requests/s for the trail and, in the same run, for `/health`: with one
worker process, with two, and with one and the page cache off (what a page nobody asked for yet costs).
The load generator, the server and PostgreSQL share the machine's cores (two on the project's machines).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from fundtrail_runtime.db import sync_engine

from .core.auth import Role
from .core.tokens import TokenCodec
from .seed import seed_big_fund
from .testing import free_port

TARGET_P99_MS = 50.0
TARGET_RPS = 1000.0
BENCH_COUNTY = "440784"


def _ensure_fund(database_url: str, n_events: int) -> str:
    fund = f"F-{BENCH_COUNTY}-BENCH"
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            have = conn.execute(text("select count(*) from trail_entry where fund_doc_no = :f"), {"f": fund}).scalar()
            total = conn.execute(text("select count(*) from trail_entry")).scalar()
        if have == n_events:
            return fund
        if total:
            raise ValueError("the benchmark needs an empty migrated database (or one it seeded before)")
        return seed_big_fund(engine, Ed25519PrivateKey.generate(), n_events, county=BENCH_COUNTY)
    finally:
        engine.dispose()


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _load(port: int, requests: list[bytes], concurrency: int, total: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in counter:
                raw = requests[i % len(requests)]
                start = time.perf_counter()
                status = await _request(reader, writer, raw)
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


def _get(path: str, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()


async def _page_paths(port: int, first: str, token: str) -> list[str]:
    """Every page of the trail (following `next`), so the load covers all 1,000 events."""
    import orjson

    paths, path = [], first
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while path:
            paths.append(path)
            writer.write(_get(path, token))
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(h[15:]) for h in head.split(b"\r\n") if h[:15].lower() == b"content-length:")
            path = orjson.loads(await reader.readexactly(length))["next"]
    finally:
        writer.close()
    return paths


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the gateway did not become ready")


def _serve_and_measure(
    database_url: str, fund: str, *, workers: int, page_cache: bool, concurrency: int, requests: int,
    page_size: int, tracing: bool,
) -> dict[str, Any]:
    """One uvicorn server (`workers` processes): /health, then the trail, measured back to back."""
    port = free_port()
    secret = secrets.token_urlsafe(48)
    codec = TokenCodec("HS256", secret.encode(), signing_key=secret.encode(), audience="fundtrail-gateway",
                       issuer="fundtrail")
    token = codec.issue("bench", [Role.AUDITOR], None, now=datetime.now(UTC), ttl=timedelta(hours=1))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # reads only: the broker is never contacted
        "FUNDTRAIL_GATEWAY_ENVIRONMENT": "test",
        "FUNDTRAIL_GATEWAY_JWT_ALGORITHM": "HS256",
        "FUNDTRAIL_GATEWAY_JWT_SECRET": secret,
        "FUNDTRAIL_GATEWAY_ENSURE_TOPICS": "false",
        "FUNDTRAIL_GATEWAY_ENABLE_TRACING": "true" if tracing else "false",
        "FUNDTRAIL_GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
        "FUNDTRAIL_GATEWAY_RATE_LIMIT_BURST": "1000000",
        "FUNDTRAIL_GATEWAY_RATE_LIMIT_ANONYMOUS_PER_SECOND": "1000000",
        "FUNDTRAIL_GATEWAY_DB_POOL_SIZE": str(max(10, concurrency // (2 * workers))),
        "FUNDTRAIL_GATEWAY_LOG_LEVEL": "WARNING",
    }
    if not page_cache:
        env["FUNDTRAIL_GATEWAY_TRAIL_CACHE_BYTES"] = "0"
    cmd = [sys.executable, "-m", "uvicorn", "fundtrail_gateway.main:app_from_env", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log",
           "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "gateway.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_ready(port, proc)
            first = f"/v1/funds/{quote(fund, safe='')}/trail?limit={page_size}"

            async def measure() -> dict[str, Any]:
                pages = await _page_paths(port, first, token)
                trail_requests = [_get(p, token) for p in pages]
                await _load(port, trail_requests, concurrency, min(500, requests))  # warm-up
                await _load(port, [_get("/health", None)], concurrency, min(500, requests))
                baseline = await _load(port, [_get("/health", None)], concurrency, requests)
                trail = await _load(port, trail_requests, concurrency, requests)
                return {"pages": len(pages), "baseline": baseline, "trail": trail}

            measured = asyncio.run(measure())
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    trail, baseline = measured["trail"], measured["baseline"]
    return {
        "workers": workers,
        "page_cache": page_cache,
        "pages": measured["pages"],
        "trail": trail,
        "baseline_health": baseline,
        "ratio_rps": round(trail["rps"] / baseline["rps"], 3),
        "ratio_p99": round(trail["p99_ms"] / baseline["p99_ms"], 3),
        "meets_targets": trail["p99_ms"] <= TARGET_P99_MS and trail["rps"] >= TARGET_RPS and trail["errors"] == 0,
    }


def run(
    database_url: str,
    *,
    n_events: int = 1000,
    concurrency: int = 50,
    requests: int = 5000,
    page_size: int = 50,
    workers: Sequence[int] = (1, 2),
    uncached: bool = True,
    tracing: bool = True,
) -> dict[str, Any]:
    """Trail latency and throughput against a /health baseline measured by the same server.

    One server per configuration: each of `workers` with the page cache, and (`uncached`) one worker
    without it, which is what pages nobody asked for yet cost. `meets_targets` is the single-process
    server's (what one pod runs); the load generator, the server and PostgreSQL share the machine's cores.
    """
    fund = _ensure_fund(database_url, n_events)
    configs = [(w, True) for w in workers] + ([(1, False)] if uncached else [])
    runs = {
        f"{w} worker{'s' if w > 1 else ''}{'' if cached else ', page cache off'}": _serve_and_measure(
            database_url, fund, workers=w, page_cache=cached, concurrency=concurrency, requests=requests,
            page_size=page_size, tracing=tracing,
        )
        for w, cached in configs
    }
    first = next(iter(runs.values()))
    return {
        "benchmark": "gateway.trail",
        "events": n_events,
        "page_size": page_size,
        "pages": first["pages"],
        "concurrency": concurrency,
        "tracing": tracing,
        "cores": f"{os.cpu_count()}, shared by the load generator, the server and PostgreSQL",
        "targets": {"p99_ms": TARGET_P99_MS, "rps": TARGET_RPS},
        "runs": runs,
        "meets_targets": first["meets_targets"],
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(sys.argv[1]), indent=2))
