"""BatchPhases: a worker's batch time charged to phases, wall and thread CPU, and to its counters."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter

from fundtrail_runtime.worker import BatchPhases


def test_laps_charge_the_time_since_the_last_mark_to_each_phase() -> None:
    registry = CollectorRegistry()
    seconds = Counter("w_phase_seconds", "s", ["phase"], registry=registry)
    cpu = Counter("w_phase_cpu_seconds", "c", ["phase"], registry=registry)
    phases = BatchPhases(("read", "work"), seconds, cpu)
    time.sleep(0.3)
    phases.start()  # what came before belongs to no phase
    time.sleep(0.02)
    phases.lap("read")
    end = time.thread_time() + 0.03
    while time.thread_time() < end:  # CPU, not sleep
        pass
    phases.lap("work")
    phases.add("read", 0.5, 0.25)
    assert 0.5 + 0.02 <= phases.seconds["read"] < 0.5 + 0.25
    assert phases.cpu["read"] < 0.25 + 0.01  # sleeping costs no CPU
    assert phases.cpu["work"] >= 0.03 and phases.seconds["work"] >= 0.03
    for phase in ("read", "work"):
        assert registry.get_sample_value("w_phase_seconds_total", {"phase": phase}) == phases.seconds[phase]
        assert registry.get_sample_value("w_phase_cpu_seconds_total", {"phase": phase}) == phases.cpu[phase]


def test_without_counters_only_the_totals_are_kept() -> None:
    phases = BatchPhases(("read",))
    phases.add("read", 1.0, 0.5)
    phases.add("read", 1.0, 0.5)
    assert (phases.seconds, phases.cpu) == ({"read": 2.0}, {"read": 1.0})
