"""Sliding event-time windows (split purchases, similar payments): pure, in memory.

An entry is (event id, event time, amount) under a rule id and a key. A view around an event
counts the entries within `days` of its time on either side (events may arrive out of time
order), optionally only those whose amount lies within a tolerance of the event's amount.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple


class WindowEntry(NamedTuple):
    # A named tuple, not a frozen dataclass: one is made per windowed event and a tuple is much cheaper to build.
    event_id: str
    at: datetime
    amount_fen: int


class WindowView:
    """What a window rule reads: `count` and `total_fen` include the event being evaluated."""

    __slots__ = ("count", "event_ids", "total_fen")

    def __init__(self, count: int, total_fen: int, event_ids: list[str]) -> None:
        self.count, self.total_fen, self.event_ids = count, total_fen, event_ids

    def as_root(self) -> dict[str, object]:
        return {"count": self.count, "total_fen": self.total_fen, "event_ids": self.event_ids}


WindowKey = tuple[str, tuple[object, ...]]


@functools.lru_cache(maxsize=64)
def _span(days: int) -> timedelta:
    return timedelta(days=days)


def _order(e: WindowEntry) -> tuple[datetime, str]:
    return (e.at, e.event_id)


@dataclass
class Windows:
    entries: dict[WindowKey, list[WindowEntry]] = field(default_factory=dict)
    added: list[tuple[str, tuple[object, ...], WindowEntry]] = field(default_factory=list)
    # Every entry by time, per rule (each rule has its own reach), so pruning touches only what expires.
    _by_time: dict[str, list[tuple[datetime, str, WindowKey]]] = field(default_factory=dict)

    def view(
        self,
        rule_id: str,
        key: tuple[object, ...],
        *,
        event_id: str,
        at: datetime,
        amount_fen: int,
        days: int,
        tolerance_bps: int | None = None,
    ) -> WindowView:
        """The window around an event (the event itself counted once)."""
        bucket = self.entries.get((rule_id, key))
        if not bucket:
            return WindowView(1, amount_fen, [])
        span = _span(days)
        lo, hi = at - span, at + span
        hits = []
        total = amount_fen
        for e in bucket:
            if e.event_id == event_id or not lo <= e.at <= hi:
                continue
            if tolerance_bps is not None and abs(e.amount_fen - amount_fen) * 10_000 > amount_fen * tolerance_bps:
                continue
            hits.append(e)
            total += e.amount_fen
        if len(hits) > 1:
            hits.sort(key=_order)
        return WindowView(1 + len(hits), total, [e.event_id for e in hits])

    def observe(
        self, rule_id: str, key: tuple[object, ...], entry: WindowEntry, *, days: int, tolerance_bps: int | None = None
    ) -> WindowView:
        """`view` around an entry, then `add` it: what a window rule does per event, with one lookup
        and one pass over the bucket."""
        wkey = (rule_id, key)
        eid, at, amount = entry
        bucket = self.entries.get(wkey)
        if bucket is None:
            self.entries[wkey] = [entry]
            view = WindowView(1, amount, [])
        else:
            span = _span(days)
            lo, hi = at - span, at + span
            hits = []
            total = amount
            present = False
            for e in bucket:
                e_id, e_at, e_amount = e
                if e_id == eid:
                    present = True
                    continue
                if e_at < lo or e_at > hi:
                    continue
                if tolerance_bps is not None and abs(e_amount - amount) * 10_000 > amount * tolerance_bps:
                    continue
                hits.append(e)
                total += e_amount
            if len(hits) > 1:
                hits.sort(key=_order)
            view = WindowView(1 + len(hits), total, [e.event_id for e in hits])
            if present:
                return view  # a redelivery: already counted
            bucket.append(entry)
        heapq.heappush(self._heap(rule_id), (at, eid, wkey))
        self.added.append((rule_id, key, entry))
        return view

    def add(self, rule_id: str, key: tuple[object, ...], entry: WindowEntry, *, record: bool = True) -> bool:
        """Put an event into a window; False when it is already there (redelivery)."""
        bucket = self.entries.setdefault((rule_id, key), [])
        eid = entry.event_id
        for e in bucket:
            if e.event_id == eid:
                return False
        bucket.append(entry)
        heapq.heappush(self._heap(rule_id), (entry.at, entry.event_id, (rule_id, key)))
        if record:
            self.added.append((rule_id, key, entry))
        return True

    def load(self, rows: Iterable[tuple[str, tuple[object, ...], WindowEntry]]) -> None:
        """Restore persisted entries (not recorded as new)."""
        for rule_id, key, entry in rows:
            self.add(rule_id, key, entry, record=False)

    def _heap(self, rule_id: str) -> list[tuple[datetime, str, WindowKey]]:
        heap = self._by_time.get(rule_id)
        if heap is None:
            heap = self._by_time[rule_id] = []
        return heap

    def prune(self, older_than: datetime, rule_id: str | None = None) -> int:
        """Forget entries (of one rule, or of all) before a time no window can reach any more; returns how many."""
        dropped = 0
        for rid, heap in self._by_time.items():
            if rule_id is not None and rid != rule_id:
                continue
            while heap and heap[0][0] < older_than:
                _, event_id, wkey = heapq.heappop(heap)
                bucket = self.entries.get(wkey)
                if bucket is None:
                    continue
                keep = [e for e in bucket if e.event_id != event_id]
                dropped += len(bucket) - len(keep)
                if keep:
                    self.entries[wkey] = keep
                else:
                    del self.entries[wkey]
        return dropped

    def drain(self) -> list[tuple[str, tuple[object, ...], WindowEntry]]:
        """New entries since the last drain (for persistence)."""
        out, self.added = self.added, []
        return out
