"""Sliding event-time windows (split purchases, similar payments): pure, in memory.

An entry is (event id, event time, amount) under a rule id and a key. The engine judges an event on
its `earlier` view: the entries dated before it (ties by event id) within `days`, optionally only
those whose amount lies within a tolerance of the event's amount, so the verdict does not depend on
the order events arrived in; `later` lists the entries an earlier-dated arrival must judge again.
"""

from __future__ import annotations

import bisect
import functools
import heapq
from collections.abc import Callable, Iterable
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


def _at(e: tuple[datetime, str, int]) -> datetime:
    return e[0]


def _amount(e: tuple[int, datetime, str]) -> int:
    return e[0]


class _Bucket:
    """The entries under one rule and key, sorted by time and by amount.

    A view reads only the entries in its time range (or, for a tolerance rule, its amount range):
    a vendor paid thousands of times within a window must not make every payment scan them all.
    """

    __slots__ = ("by_amount", "by_time", "ids")

    def __init__(self) -> None:
        self.by_time: list[tuple[datetime, str, int]] = []
        self.by_amount: list[tuple[int, datetime, str]] = []
        self.ids: dict[str, WindowEntry] = {}

    def insert(self, entry: WindowEntry) -> None:
        eid, at, amount = entry
        by_time = self.by_time
        if not by_time or by_time[-1] < (at, eid, amount):  # the usual case: entries arrive in time order
            by_time.append((at, eid, amount))
        else:
            bisect.insort(by_time, (at, eid, amount))
        bisect.insort(self.by_amount, (amount, at, eid))
        self.ids[eid] = entry

    def remove(self, event_id: str) -> bool:
        entry = self.ids.pop(event_id, None)
        if entry is None:
            return False
        eid, at, amount = entry
        del self.by_time[bisect.bisect_left(self.by_time, (at, eid, amount))]
        del self.by_amount[bisect.bisect_left(self.by_amount, (amount, at, eid))]
        return True

    def before(self, entry: WindowEntry, span: timedelta, tolerance_bps: int | None) -> tuple[list[str], int]:
        """Event ids (by time) and summed amount of the entries ordered before `entry` (time, then id)
        within `span` before it, and within the tolerance of its amount when there is one: what the
        entry's window holds had every event arrived in date order."""
        eid, at, amount = entry
        return self._select(at - span, at, amount, tolerance_bps, lambda e_at, e_id: (e_at, e_id) < (at, eid))

    def _select(
        self, lo: datetime, hi: datetime, amount: int, tolerance_bps: int | None,
        keep: Callable[[datetime, str], bool],
    ) -> tuple[list[str], int]:
        ids: list[str] = []
        total = 0
        if tolerance_bps is None:
            by_time = self.by_time
            start = bisect.bisect_left(by_time, lo, key=_at)
            end = bisect.bisect_right(by_time, hi, key=_at)
            for e_at, e_id, e_amount in by_time[start:end]:
                if keep(e_at, e_id):
                    ids.append(e_id)
                    total += e_amount
            return ids, total
        # |e - amount| * 10,000 <= amount * bps, for integers: |e - amount| <= floor(amount * bps / 10,000).
        reach = amount * tolerance_bps // 10_000
        by_amount = self.by_amount
        start = bisect.bisect_left(by_amount, amount - reach, key=_amount)
        end = bisect.bisect_right(by_amount, amount + reach, key=_amount)
        found = [
            (e_at, e_id, e_amount) for e_amount, e_at, e_id in by_amount[start:end]
            if lo <= e_at <= hi and keep(e_at, e_id) and abs(e_amount - amount) * 10_000 <= amount * tolerance_bps
        ]
        if len(found) > 1:
            found.sort()
        for _, e_id, e_amount in found:
            ids.append(e_id)
            total += e_amount
        return ids, total

    def after(self, entry: WindowEntry, span: timedelta) -> list[WindowEntry]:
        """The entries ordered after `entry` within `span` of it: their windows hold it."""
        eid, at, amount = entry
        by_time = self.by_time
        start = bisect.bisect_right(by_time, (at, eid, amount))
        end = bisect.bisect_right(by_time, at + span, key=_at)
        return [WindowEntry(e_id, e_at, e_amount) for e_at, e_id, e_amount in by_time[start:end]]


@dataclass
class Windows:
    entries: dict[WindowKey, _Bucket] = field(default_factory=dict)
    added: list[tuple[str, tuple[object, ...], WindowEntry]] = field(default_factory=list)
    # Every entry by time, per rule (each rule has its own reach), so pruning touches only what expires.
    _by_time: dict[str, list[tuple[datetime, str, WindowKey]]] = field(default_factory=dict)

    def earlier(
        self, rule_id: str, key: tuple[object, ...], entry: WindowEntry, *, days: int, tolerance_bps: int | None = None
    ) -> WindowView:
        """The event-time window of an entry: itself and the entries dated before it (ties by event id)
        within `days`, whatever order they arrived in (`_Bucket.before`)."""
        bucket = self.entries.get((rule_id, key))
        if not bucket:
            return WindowView(1, entry.amount_fen, [])
        ids, total = bucket.before(entry, _span(days), tolerance_bps)
        return WindowView(1 + len(ids), entry.amount_fen + total, ids)

    def place(
        self, rule_id: str, key: tuple[object, ...], entry: WindowEntry, *, days: int, tolerance_bps: int | None,
        reach: int,
    ) -> tuple[WindowView, list[WindowEntry]] | None:
        """`earlier`, `later` (within `reach` days) and `add` in one lookup: what judging a new entry
        needs; None when the entry is there already (a redelivery). An entry dated after every other
        one (events arriving in date order, the usual case) has nothing later and its window is a
        plain slice of the time order."""
        wkey = (rule_id, key)
        bucket = self.entries.get(wkey)
        eid, at, amount = entry
        if bucket is not None and eid in bucket.ids:
            return None
        later: list[WindowEntry] = []
        if bucket is None:
            bucket = self.entries[wkey] = _Bucket()
            view = WindowView(1, amount, [])
        elif tolerance_bps is None and bucket.by_time[-1] < (at, eid, amount):
            by_time = bucket.by_time
            start = bisect.bisect_left(by_time, at - _span(days), key=_at)
            ids = [e_id for _, e_id, _ in by_time[start:]]
            view = WindowView(1 + len(ids), amount + sum(e[2] for e in by_time[start:]), ids)
        else:
            ids, total = bucket.before(entry, _span(days), tolerance_bps)
            view, later = WindowView(1 + len(ids), amount + total, ids), bucket.after(entry, _span(reach))
        self._insert(bucket, rule_id, wkey, entry, record=True)
        return view, later

    def add(self, rule_id: str, key: tuple[object, ...], entry: WindowEntry, *, record: bool = True) -> bool:
        """Put an event into a window; False when it is already there (redelivery)."""
        wkey = (rule_id, key)
        bucket = self.entries.get(wkey)
        if bucket is None:
            bucket = self.entries[wkey] = _Bucket()
        elif entry.event_id in bucket.ids:
            return False
        self._insert(bucket, rule_id, wkey, entry, record=record)
        return True

    def _insert(self, bucket: _Bucket, rule_id: str, wkey: WindowKey, entry: WindowEntry, *, record: bool) -> None:
        bucket.insert(entry)
        heapq.heappush(self._heap(rule_id), (entry.at, entry.event_id, wkey))
        if record:
            self.added.append((rule_id, wkey[1], entry))

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
                if bucket is None or not bucket.remove(event_id):
                    continue
                dropped += 1
                if not bucket.ids:
                    del self.entries[wkey]
        return dropped

    def drain(self) -> list[tuple[str, tuple[object, ...], WindowEntry]]:
        """New entries since the last drain (for persistence)."""
        out, self.added = self.added, []
        return out
