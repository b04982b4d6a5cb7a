"""The latency benchmark: CPU accounting per component (descendants included), the knee search, the options."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from fundtrail_devstack.latency import CpuMeter

SPIN = "import time\\nt = time.time()\\nwhile time.time() - t < 1.5: pass"
BUSY_CHILD = f"import subprocess, sys; subprocess.run([sys.executable, '-c', '{SPIN}'])"


def test_busy_descendants_count_and_sleepers_do_not() -> None:
    busy = subprocess.Popen([sys.executable, "-c", BUSY_CHILD])  # the work happens in a grandchild
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    try:
        time.sleep(0.2)
        meter = CpuMeter({"busy": busy.pid, "idle": idle.pid, "gone": None, "busy alone": busy.pid},
                         alone=frozenset({"busy alone"}))
        meter.start()
        time.sleep(1.0)
        result = meter.stop()
    finally:
        busy.wait(10)
        idle.kill()
        idle.wait(10)
    used = result["cores_used"]
    assert set(used) == {"busy", "idle", "busy alone"}
    # One core spinning gets whatever share a shared machine leaves it (0.08 of a core was seen
    # under a load average of 27), but it must outweigh the processes that only wait.
    assert used["busy"] > 0
    assert used["busy alone"] < used["busy"]  # the parent only waits
    assert used["idle"] < used["busy"]
    assert 0 < result["machine_busy_pct"] <= 100


def test_batching_is_read_from_the_workers_metrics_for_the_hot_topic_only() -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from fundtrail_devstack.latency import batch_counters, batch_stats
    from fundtrail_schemas.topics import RAW_EVENTS

    registry = CollectorRegistry()
    seconds = Histogram("fundtrail_tracker_batch_seconds", "s", ["topic"], registry=registry)
    size = Histogram("fundtrail_tracker_batch_size", "n", ["topic"], registry=registry)
    seconds.labels(RAW_EVENTS).observe(0.5)
    size.labels(RAW_EVENTS).observe(100)
    before = batch_counters(generate_latest(registry).decode(), "tracker")
    for _ in range(4):  # four batches of 20 in 10 ms each on the raw topic...
        seconds.labels(RAW_EVENTS).observe(0.01)
        size.labels(RAW_EVENTS).observe(20)
    seconds.labels("fundtrail.violations").observe(3.0)  # ...and one on another topic, not counted
    size.labels("fundtrail.violations").observe(500)
    after = batch_counters(generate_latest(registry).decode(), "tracker")
    assert after[0] - before[0] == 4
    stats = batch_stats("tracker", before, after, wall=2.0, cores=0.1)
    assert stats == {
        "tracker_batches_per_s": 2.0,
        "tracker_mean_batch_ms": 10.0,
        "tracker_cpu_ms_per_batch": 50.0,  # 0.1 of a core for 2 s over 4 batches
        "tracker_mean_batch_size": 20.0,
    }
    assert batch_stats("tracker", after, after, wall=2.0, cores=0.1) == {}


def test_compliance_batching_has_no_size_and_no_topic_label() -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from fundtrail_devstack.latency import batch_counters, batch_stats

    registry = CollectorRegistry()
    seconds = Histogram("fundtrail_compliance_batch_seconds", "s", registry=registry)
    before = batch_counters(generate_latest(registry).decode(), "compliance")
    seconds.observe(0.02)
    seconds.observe(0.04)
    after = batch_counters(generate_latest(registry).decode(), "compliance")
    assert batch_stats("compliance", before, after, wall=1.0, cores=None) == {
        "compliance_batches_per_s": 2.0, "compliance_mean_batch_ms": 30.0, "compliance_cpu_ms_per_batch": None,
    }


def test_a_workers_cpu_per_batch_is_split_by_phase_and_the_rest_is_other() -> None:
    from prometheus_client import CollectorRegistry, Counter, generate_latest

    from fundtrail_devstack.latency import phase_cpu, phase_split

    registry = CollectorRegistry()
    cpu = Counter("fundtrail_tracker_phase_cpu_seconds", "c", ["phase"], registry=registry)
    cpu.labels("decode").inc(1.0)
    before = phase_cpu(generate_latest(registry).decode())
    cpu.labels("decode").inc(0.02)  # two batches: 10 ms of decode and 20 ms of write each
    cpu.labels("write").inc(0.04)
    after = phase_cpu(generate_latest(registry).decode())
    assert phase_split(before, after, batches=2, cpu_ms_per_batch=50.0) == {
        "decode": 10.0, "write": 20.0, "other": 20.0,
    }
    assert phase_split(before, after, batches=0, cpu_ms_per_batch=50.0) == {}
    # Each worker's phases come from its own counter.
    other = Counter("fundtrail_compliance_phase_cpu_seconds", "c", ["phase"], registry=registry)
    other.labels("evaluate").inc(0.5)
    text = generate_latest(registry).decode()
    assert phase_cpu(text, "compliance") == {"evaluate": 0.5}
    assert phase_cpu(text) == phase_cpu(text, "tracker") == after


def test_the_target_is_met_only_at_full_rate_with_every_violation_seen() -> None:
    from fundtrail_devstack.latency import latency_targets

    assert latency_targets(1000, 79.0, True)["met"] == {"sse_p99_ms": True}
    assert latency_targets(1000, 100.0, True)["met"] == {"sse_p99_ms": True}
    assert latency_targets(1000, 100.1, True)["met"] == {"sse_p99_ms": False}
    assert latency_targets(300, 50.0, True)["met"] == {"sse_p99_ms": False}
    assert latency_targets(1000, 50.0, False)["met"] == {"sse_p99_ms": False}
    assert latency_targets(1000, None, False)["targets"] == {"rate_per_s": 1000, "sse_p99_ms": 100.0}


def test_knee_search_doubles_while_passing_then_refines_once() -> None:
    from fundtrail_devstack.latency import KNEE_START, knee_rate, next_knee_rate

    tried: dict[int, bool] = {}
    outcome = {250: True, 500: True, 1000: True, 2000: False, 1500: True}  # the pipeline's answers
    order = []
    while (rate := next_knee_rate(tried)) is not None:
        order.append(rate)
        tried[rate] = outcome[rate]
    assert order == [KNEE_START, 500, 1000, 2000, 1500]
    assert knee_rate(tried) == 1500


def test_knee_search_halves_when_the_first_rate_fails_and_may_find_none() -> None:
    from fundtrail_devstack.latency import KNEE_MIN, knee_rate, next_knee_rate

    tried = {250: False}
    assert next_knee_rate(tried) == 125
    tried[125] = False
    assert next_knee_rate(tried) == 62
    tried[62] = False
    assert next_knee_rate(tried) is None  # 31 is below KNEE_MIN
    assert 31 < KNEE_MIN
    assert knee_rate(tried) is None
    # A pass above the lowest failure does not count: the knee is below the first rate that failed.
    assert knee_rate({250: True, 500: False, 1000: True}) == 250


def test_a_run_meets_p99_only_within_target_and_without_losses() -> None:
    from fundtrail_devstack.latency import meets_p99, run_summary

    good = {"rate_per_s": 1000, "sse_p99_ms": 99.9, "violations_seen_sse": 300, "violations_expected": 300,
            "machine_busy_pct": 70, "cpu_cores_used": {"fund-tracker": 0.3}}
    assert meets_p99(good)
    assert not meets_p99({**good, "sse_p99_ms": 100.1})
    assert not meets_p99({**good, "violations_seen_sse": 299})
    assert not meets_p99({**good, "sse_p99_ms": None})
    line = run_summary(good)
    assert line["p99_met"] is True
    assert line["violations_seen"] == "300/300"
    assert line["cpu_cores_used"] == {"fund-tracker": 0.3}
    assert line["machine_busy_pct"] == 70


def test_bench_short_runs_a_smaller_latency_suite(monkeypatch: Any, tmp_path: Any) -> None:
    """`--short` and the latency options reach the suite (the servers are not started here)."""
    from typer.testing import CliRunner

    from fundtrail_devstack import bench
    from fundtrail_devstack.cli import app

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(bench, "main", lambda *args: calls.append(args) or {})
    runner = CliRunner()
    out = tmp_path / "lat.md"
    assert runner.invoke(app, ["bench", "--only", "latency", "--out", str(out), "--short"]).exit_code == 0
    assert runner.invoke(app, ["bench", "--only", "latency", "--out", str(out), "--latency-repeats", "3",
                               "--knee-budget", "0"]).exit_code == 0
    assert calls == [(out, ["latency"], 10, 1000, 2, 90), (out, ["latency"], 20, 1000, 3, 0)]
