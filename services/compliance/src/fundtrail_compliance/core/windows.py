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


@dataclass(frozen=True)
class WindowEntry:
    event_id: str
    at: datetime
    amount_fen: int


@dataclass(frozen=True)
class WindowView:
    """What a window rule reads: `count` and `total_fen` include the event being evaluated."""

    count: int
    total_fen: int
    event_ids: list[str]

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
    # Every entry by time, so pruning touches only what expires.
    _by_time: list[tuple[datetime, str, WindowKey]] = field(default_factory=list)

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
            return WindowView(count=1, total_fen=amount_fen, event_ids=[])
        span = _span(days)
        lo, hi = at - span, at + span
        hits = []
        for e in bucket:
            if e.event_id == event_id or not lo <= e.at <= hi:
                continue
            if tolerance_bps is not None and abs(e.amount_fen - amount_fen) * 10_000 > amount_fen * tolerance_bps:
                continue
            hits.append(e)
        if len(hits) > 1:
            hits.sort(key=_order)
        return WindowView(
            count=1 + len(hits),
            total_fen=amount_fen + sum(e.amount_fen for e in hits),
            event_ids=[e.event_id for e in hits],
        )

    def add(self, rule_id: str, key: tuple[object, ...], entry: WindowEntry, *, record: bool = True) -> bool:
        """Put an event into a window; False when it is already there (redelivery)."""
        bucket = self.entries.setdefault((rule_id, key), [])
        eid = entry.event_id
        for e in bucket:
            if e.event_id == eid:
                return False
        bucket.append(entry)
        heapq.heappush(self._by_time, (entry.at, entry.event_id, (rule_id, key)))
        if record:
            self.added.append((rule_id, key, entry))
        return True

    def load(self, rows: Iterable[tuple[str, tuple[object, ...], WindowEntry]]) -> None:
        """Restore persisted entries (not recorded as new)."""
        for rule_id, key, entry in rows:
            self.add(rule_id, key, entry, record=False)

    def prune(self, older_than: datetime) -> int:
        """Forget entries before a time no window can reach any more; returns how many."""
        dropped = 0
        heap = self._by_time
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
