"""The throughput ceiling the benchmark reports beside the worker's rate."""

from __future__ import annotations

import pytest

from fundtrail_tracker import bench


def test_the_ceiling_is_the_cores_over_the_cpu_per_event_nothing_can_save(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    # 30 µs of Kafka client work and 70 µs of PostgreSQL per event: 100 µs, 2 cores, 20,000 events/s.
    assert bench._ceiling(30.0, 70.0) == pytest.approx(20_000)
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 4)
    assert bench._ceiling(30.0, 70.0) == pytest.approx(40_000)
    # The broker's CPU, when measured, counts too.
    assert bench._ceiling(30.0, 70.0, 100.0) == pytest.approx(20_000)


def test_no_ceiling_without_postgresql_cpu() -> None:
    assert bench._ceiling(30.0, None) is None


def test_the_fixed_cost_per_batch_is_solved_from_two_batch_sizes() -> None:
    # 100 µs per event and 10 ms per batch: 110 µs per event in batches of 1,000, 200 in batches of 100.
    big = {"worker_cpu_us_per_event": 110, "mean_batch_size": 1000.0}
    small = {"worker_cpu_us_per_event": 200, "mean_batch_size": 100.0}
    fixed = bench._fixed_cost(big, small)
    assert fixed["fixed_cpu_ms_per_batch"] == pytest.approx(10.0)
    assert fixed["variable_cpu_us_per_event"] == pytest.approx(100.0)


def test_no_fixed_cost_when_the_batch_sizes_cannot_be_told_apart() -> None:
    run = {"worker_cpu_us_per_event": 110, "mean_batch_size": 1000.0}
    assert bench._fixed_cost(run, dict(run))["fixed_cpu_ms_per_batch"] is None
