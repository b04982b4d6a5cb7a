"""Which enriched-topic partitions are idle: read up to the broker's end and quiet for a while.

An idle partition stops holding the event-time clock back (see `core.timers`). Being caught up with
the fetcher's high watermark is not enough, since that is as old as the partition's last fetch:
the broker's end offsets decide. They used to be asked before every batch, a ListOffsets round
trip on each of ~50 batches a second at 1,000 events/s (compliance's batches averaged 16.8 ms with
it and 14.7–15.3 ms without it). Now they are asked at most every `refresh` seconds, and always before a
partition is declared idle anew; a partition already idle turns busy again as soon as the fetcher
sees a record on it (it is then no longer caught up), whatever the cached ends say.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

EndOffsets = Callable[[Sequence[Any]], Awaitable[Mapping[Any, int]]]


class IdlePartitions:
    """Tracks quiet caught-up partitions; `idle(caught_up)` per batch or tick."""

    def __init__(
        self, end_offsets: EndOffsets, *, idle_after: float, refresh: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ask = end_offsets
        self._idle_after = idle_after
        self._refresh = refresh
        self._clock = clock
        self._ends: dict[Any, int] = {}
        self._asked_at = float("-inf")
        self._quiet_since: dict[Any, tuple[int, float]] = {}  # partition -> (end offset, caught up at it since)
        self._idle: set[Any] = set()

    async def idle(self, caught_up: Mapping[Any, int]) -> set[int]:
        """The idle partitions among `caught_up` (topic partitions read up to the fetcher's high
        watermark, each with the next offset to process)."""
        now = self._clock()
        if caught_up and (
            now - self._asked_at >= self._refresh
            or any(tp not in self._ends for tp in caught_up)
            or self._turning_idle(caught_up, now)
        ):
            self._ends.update(await self._ask(list(caught_up)))
            self._asked_at = now
        idle: set[Any] = set()
        for tp, nxt in caught_up.items():
            end = self._ends.get(tp)
            if end is None or nxt < end:
                continue
            if self._quiet_long_enough(tp, nxt, now):
                idle.add(tp)
            elif self._quiet_since.get(tp, (None,))[0] != end:
                self._quiet_since[tp] = (end, now)
        self._idle = idle
        return {tp.partition for tp in idle}

    def _quiet_long_enough(self, tp: Any, nxt: int, now: float) -> bool:
        # Caught up is not idle: upstream (fund-tracker) may still be writing this partition's share
        # of a bulk load. Idle means caught up with the same end offset for `idle_after` seconds.
        end, quiet = self._ends.get(tp), self._quiet_since.get(tp)
        return (end is not None and nxt >= end and quiet is not None and quiet[0] == end
                and now - quiet[1] >= self._idle_after)

    def _turning_idle(self, caught_up: Mapping[Any, int], now: float) -> bool:
        """Whether the cached ends would make a partition idle that was not: only fresh ones may."""
        return any(tp not in self._idle and self._quiet_long_enough(tp, nxt, now) for tp, nxt in caught_up.items())
