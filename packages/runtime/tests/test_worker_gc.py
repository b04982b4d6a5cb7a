"""The collector callback: every collection freezes its survivors, the periodic thaw reclaims
cyclic garbage frozen meanwhile, and every pause is counted per generation for Prometheus."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fundtrail_runtime.worker import CollectorPauses


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def clock() -> list[float]:
    return [0.0]


@pytest.fixture
def pauses(clock: list[float]) -> Iterator[CollectorPauses]:
    p = CollectorPauses(thaw_every=60.0, clock=lambda: clock[0])
    was_enabled = gc.isenabled()
    gc.disable()  # only the tests' own collections: counts are exact
    gc.callbacks.append(p)
    try:
        yield p
    finally:
        gc.callbacks.remove(p)
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def test_a_young_collection_freezes_what_survived_it(pauses: CollectorPauses) -> None:
    gc.collect()
    frozen_before = gc.get_freeze_count()
    kept = [Node() for _ in range(1000)]
    gc.collect(0)
    assert gc.get_freeze_count() >= frozen_before + len(kept)
    assert sum(pauses.buckets[0]) == 1 and pauses.sums[0] > 0


def test_cyclic_garbage_frozen_is_reclaimed_by_the_thaw_and_only_when_it_is_due(
    pauses: CollectorPauses, clock: list[float]
) -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    gc.collect(0)  # the cycle is alive now: frozen
    del a, b
    gc.collect()
    assert alive() is not None  # frozen: no collection walks it any more
    clock[0] = 59.0
    assert not pauses.thaw_if_due()
    assert alive() is not None
    clock[0] = 60.0
    assert pauses.thaw_if_due()
    assert alive() is None and pauses.thaws == 1
    assert gc.get_freeze_count() > 0  # what survived the thaw's collection is frozen again
    clock[0] = 100.0
    assert not pauses.thaw_if_due()  # the next one is due 60 s after this one


def test_pauses_are_exported_as_a_histogram_per_generation(pauses: CollectorPauses) -> None:
    gc.collect(0)
    gc.collect()
    registry = CollectorRegistry()
    registry.register(pauses)
    text = generate_latest(registry).decode()
    assert 'fundtrail_gc_pause_seconds_count{generation="2"} 1.0' in text
    assert 'fundtrail_gc_pause_seconds_count{generation="0"} 1.0' in text
    assert 'fundtrail_gc_pause_seconds_bucket{generation="1",le="+Inf"} 0.0' in text


def test_a_worker_installs_it_once_and_exports_it_on_the_default_registry() -> None:
    # In a child process: installed here it would freeze this test session's garbage for good.
    script = """
import gc
import subprocess
import sys
from prometheus_client import REGISTRY, generate_latest
from fundtrail_runtime.worker import freeze_survivors, tune_gc
tune_gc()
first, second = freeze_survivors(), freeze_survivors()
assert first is second and gc.callbacks.count(first) == 1
before = gc.get_freeze_count()
kept = [[n] for n in range(5000)]
gc.collect(0)
assert gc.get_freeze_count() >= before + len(kept)
print(generate_latest(REGISTRY).decode())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert 'fundtrail_gc_pause_seconds_count{generation="0"}' in out
