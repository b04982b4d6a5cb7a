"""IdlePartitions: the broker's end offsets are asked rarely, yet nothing turns idle on stale ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition

from fundtrail_compliance.adapters.idle import IdlePartitions

T = "fundtrail.events.enriched"
P0, P1 = TopicPartition(T, 0), TopicPartition(T, 1)


class Broker:
    def __init__(self, ends: dict[Any, int]) -> None:
        self.ends = ends
        self.asked = 0

    async def end_offsets(self, tps: Sequence[Any]) -> Mapping[Any, int]:
        self.asked += 1
        return {tp: self.ends[tp] for tp in tps}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _watch(broker: Broker, clock: Clock) -> IdlePartitions:
    return IdlePartitions(broker.end_offsets, idle_after=10.0, refresh=1.0, clock=clock)


async def test_batches_in_quick_succession_ask_the_broker_once_per_refresh() -> None:
    broker, clock = Broker({P0: 5, P1: 7}), Clock()
    watch = _watch(broker, clock)
    for _ in range(50):  # 50 batches in half a second, both partitions caught up
        assert await watch.idle({P0: 5, P1: 7}) == set()
        clock.now += 0.01
    assert broker.asked == 1
    clock.now += 1.0
    await watch.idle({P0: 5, P1: 7})
    assert broker.asked == 2


async def test_a_partition_turns_idle_only_on_fresh_end_offsets_and_stays_idle_on_cached_ones() -> None:
    broker, clock = Broker({P0: 5}), Clock()
    watch = _watch(broker, clock)
    t0 = clock.now
    assert await watch.idle({P0: 5}) == set()
    clock.now = t0 + 9.9
    assert await watch.idle({P0: 5}) == set()  # quiet for 9.9 s: not yet
    assert broker.asked == 2
    broker.ends[P0] = 6  # a record arrives that the fetcher has not seen yet
    clock.now = t0 + 10.2
    # Quiet for 10 s by ends asked 0.3 s ago: they are asked again before anything turns idle.
    assert await watch.idle({P0: 5}) == set()
    assert broker.asked == 3
    clock.now = t0 + 10.4
    assert await watch.idle({P0: 6}) == set()  # the record is read: quiet counts from here
    assert broker.asked == 3
    clock.now = t0 + 20.5
    assert await watch.idle({P0: 6}) == {0}
    # Idle stays idle between refreshes without asking; seen busy again, it is not idle at once.
    asked = broker.asked
    clock.now = t0 + 20.8
    assert await watch.idle({P0: 6}) == {0}
    assert broker.asked == asked
    assert await watch.idle({}) == set()  # the fetcher saw a record: partition 0 is not caught up


async def test_nothing_caught_up_asks_nothing() -> None:
    broker, clock = Broker({}), Clock()
    watch = _watch(broker, clock)
    assert await watch.idle({}) == set()
    assert broker.asked == 0
