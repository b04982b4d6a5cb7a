"""`make bench`: every benchmark on its own fresh Kafka and PostgreSQL, written to docs/benchmarks.md.

Each service's benchmark runs in its own process (apps are run, never imported); each reports a
baseline measured in the same run, since these machines are shared and noisy.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from .stack import REPO_ROOT, Stack
from .testing import remove_tree, start_test_kafka, start_test_postgres, world_traversable_tmpdir

console = Console()
MARK = "@@FUNDTRAIL-BENCH@@"
_RUNNER = (
    "import importlib, json, sys\n"
    "mod = importlib.import_module(sys.argv[1])\n"
    "result = getattr(mod, sys.argv[2])(**json.loads(sys.argv[3]))\n"
    f"print({MARK!r} + json.dumps(result, default=str))\n"
)


def run_in_process(module: str, function: str, timeout: float = 1800, **kwargs: Any) -> dict[str, Any]:
    """Call `module.function(**kwargs)` in a fresh interpreter; return its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, module, function, json.dumps(kwargs)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return dict(json.loads(line[len(MARK):]))
    raise RuntimeError(f"{module}.{function} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT,
                         check=False)
    return out.stdout.strip() or "unknown"


def _table(result: dict[str, Any]) -> str:
    rows = ["| measure | value |", "|---|---|"]
    for key, value in result.items():
        if isinstance(value, float):
            value = f"{value:,.2f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        elif isinstance(value, (dict, list)):
            value = f"`{json.dumps(value, default=str)}`"
        rows.append(f"| {key} | {value} |")
    return "\n".join(rows)


def main(out: Path, only: list[str] | None = None, latency_seconds: int = 20, latency_rate: int = 1000,
         latency_repeats: int = 5, knee_budget: float = 180.0) -> dict[str, Any]:
    """Run the benchmarks and write the report."""
    kafka_home = world_traversable_tmpdir("fundtrail-bench-kafka-")
    pg_home = world_traversable_tmpdir("fundtrail-bench-pg-")
    kafka = start_test_kafka(kafka_home)
    pg = start_test_postgres(pg_home)
    results: dict[str, Any] = {}
    started = time.monotonic()

    def fresh_db() -> str:
        from fundtrail_runtime.db import upgrade

        url = pg.create_database(f"bench_{uuid.uuid4().hex[:10]}")
        upgrade(url)
        return url

    suites: dict[str, Callable[[], dict[str, Any]]] = {
        "trail (Merkle log)": lambda: run_in_process("fundtrail_runtime.bench_merkle", "run", n_leaves=1_000_000),
        "fund-tracker": lambda: run_in_process("fundtrail_tracker.bench", "run", bootstrap=kafka.bootstrap,
                                               database_url=fresh_db(), broker_pid=kafka.running_pid()),
        "compliance": lambda: run_in_process("fundtrail_compliance.bench", "run", bootstrap=kafka.bootstrap),
        "gateway": lambda: run_in_process("fundtrail_gateway.bench", "run", database_url=fresh_db()),
        "console": lambda: run_in_process("fundtrail_devstack.console_bench", "run", bootstrap=kafka.bootstrap,
                                          database_url=fresh_db()),
        "end-to-end latency": lambda: _latency(kafka.bootstrap, fresh_db(), latency_seconds,
                                               {"kafka": kafka.running_pid(), "postgresql": pg.pid()}, latency_rate,
                                               latency_repeats, knee_budget),
    }
    try:
        for name, fn in suites.items():
            if only and not any(o in name for o in only):
                continue
            console.rule(name)
            t0 = time.monotonic()
            try:
                results[name] = fn()
            except Exception as exc:  # a failed suite is reported, the others still run
                results[name] = {"error": str(exc)[-2000:]}
            console.print(results[name])
            console.print(f"({time.monotonic() - t0:.0f} s)")
    finally:
        kafka.stop()
        pg.stop()
        remove_tree(kafka_home)
        remove_tree(pg_home)
    write_report(out, results, time.monotonic() - started)
    return results


def _latency(bootstrap: str, database_url: str, seconds: int, others: dict[str, int | None], rate: int = 1000,
             repeats: int = 5, knee_budget: float = 180.0) -> dict[str, Any]:
    from .latency import run_latency_suite

    # The knee is reported against fund-tracker's aiokafka pass-through on this broker, measured
    # here before the services start (its code, run as in the fund-tracker suite).
    passthrough = (run_in_process("fundtrail_tracker.bench", "passthrough", bootstrap=bootstrap)
                   if knee_budget > 0 else {})

    home = world_traversable_tmpdir("fundtrail-bench-stack-")
    stack = Stack(home=home, bootstrap=bootstrap, database_url=database_url, group_suffix="-bench")
    try:
        stack.prepare()
        stack.start()
        stack.wait_ready(timeout=180)
        return run_latency_suite(stack, rate=rate, seconds=seconds, repeats=repeats, knee_budget=knee_budget,
                                 others=others, passthrough_events_per_s=passthrough.get("passthrough_events_per_s"))
    finally:
        stack.stop()
        remove_tree(home)


def write_report(out: Path, results: dict[str, Any], elapsed: float) -> None:
    """docs/benchmarks.md: the command, the machine, and every suite's numbers."""
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`fundtrail-devstack bench --out docs/benchmarks.md`), which starts its own",
        "Kafka 4 broker and PostgreSQL on free loopback ports and runs each suite in a fresh process.",
        "Machines here are shared and noisy: every suite reports a baseline measured in the same run,",
        "and the ratio against it is the number to compare between runs.",
        "",
        f"- run: {datetime.now(UTC).isoformat(timespec='seconds')}, commit `{_commit()}`, {elapsed:.0f} s in all",
        f"- machine: {_machine()}",
        "",
    ]
    for name, result in results.items():
        lines += [f"## {name}", "", _table(result), ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    console.print(f"wrote {out}")
