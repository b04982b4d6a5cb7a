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
