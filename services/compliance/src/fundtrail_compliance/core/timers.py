"""Event-time clock and scheduled checks (idle funds): pure, in memory.

Time is event time, kept per partition of the enriched topic (each partition's largest
`occurred_at` seen). The watermark is the minimum of those over the partitions this worker reads,
so a partition read faster than another (a bulk load) cannot carry the clock past events the
slower one has yet to deliver; a partition with nothing to read (idle, as the adapter says) does
not hold it back. A timer is due when the watermark passes its due time, so a check fires even
when its own fund sees no new event. Tests drive the clock by feeding events (or calling
`advance`). Timers and the clocks are persisted by the adapter and survive restarts.
"""

from __future__ import annotations

import functools
import heapq
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TIMER_NAMESPACE = uuid.UUID("9d3f1e0b-7c2a-4e55-b1a8-6e4c3d2f1a10")


def subject_key(fund_doc_no: str, level: str, region_code: str) -> str:
    """Key of the ledger position a timer watches."""
    return f"{fund_doc_no}|{level}|{region_code}"


@functools.lru_cache(maxsize=65_536)  # a position's every inflow asks again (uuid5 hashes with SHA-1)
def timer_id(rule_id: str, subject: str) -> uuid.UUID:
    """One timer per rule and watched position, whatever happens later."""
    return uuid.uuid5(TIMER_NAMESPACE, f"{rule_id}\x1f{subject}")


@dataclass
class Timer:
    timer_id: uuid.UUID
    rule_id: str
    rule_ref: str
    subject: str
    fund_doc_no: str
    level: str
    region_code: str
    trigger_event_id: uuid.UUID
    started_at: datetime
    due_at: datetime
    days: int
    snapshot: dict[str, Any]
    trace_id: str | None = None
    status: str = "pending"  # pending → fired
    # A timer started behind the clock (history loaded late) is not fired by the clock before this
    # time: its fund's own events, still arriving, decide first (engine._fire_due). Not persisted.
    not_before: datetime | None = None


@dataclass
class EventClock:
    """Event time per partition, and the watermark timers fire on (it never moves backwards).

    `assigned` None (replays, tests) counts every partition seen; otherwise only the assigned ones,
    and an assigned partition never seen holds the watermark back unless it is idle.
    """

    watermark: datetime | None = None
    partitions: dict[int, datetime] = field(default_factory=dict)
    assigned: frozenset[int] | None = None
    idle: frozenset[int] = frozenset()
    changed: set[int] = field(default_factory=set)  # partitions whose time moved since the last drain

    def observe(self, at: datetime, partition: int = 0) -> bool:
        """Record an event time on a partition; True when the watermark moved."""
        seen = self.partitions.get(partition)
        if seen is not None and at <= seen:
            return False
        self.partitions[partition] = at
        self.changed.add(partition)
        if self.assigned is None and len(self.partitions) == 1:
            return self._advance(at)  # one partition (replays, tests): no minimum to take
        return self._recompute()

    def restore(self, watermark: datetime | None, partitions: dict[int, datetime]) -> None:
        """Load persisted clocks (not recorded as changed)."""
        for p, at in partitions.items():
            if p not in self.partitions or at > self.partitions[p]:
                self.partitions[p] = at
        if watermark is not None:
            self._advance(watermark)

    def assign(self, partitions: Iterable[int] | None, idle: Iterable[int] = ()) -> bool:
        """The partitions this worker reads and those of them with nothing to read; True when the
        watermark moved."""
        self.assigned = None if partitions is None else frozenset(partitions)
        self.idle = frozenset(idle)
        return self._recompute()

    def drain(self) -> dict[int, datetime]:
        """Partition clocks that moved since the last drain (for persistence)."""
        out = {p: self.partitions[p] for p in self.changed}
        self.changed = set()
        return out

    def _recompute(self) -> bool:
        counted = self.partitions.keys() if self.assigned is None else self.assigned
        low: datetime | None = None
        for p in counted:
            if p in self.idle:
                continue
            at = self.partitions.get(p)
            if at is None:
                return False  # an assigned partition not read yet: it may hold anything
            if low is None or at < low:
                low = at
        if low is None:  # every partition idle: the latest event time seen anywhere stands
            low = max((self.partitions[p] for p in counted if p in self.partitions), default=None)
        return low is not None and self._advance(low)

    def _advance(self, at: datetime) -> bool:
        if self.watermark is None or at > self.watermark:
            self.watermark = at
            return True
        return False


@dataclass
class TimerWheel:
    pending: dict[uuid.UUID, Timer] = field(default_factory=dict)
    by_subject: dict[str, set[uuid.UUID]] = field(default_factory=dict)
    _heap: list[tuple[datetime, str]] = field(default_factory=list)
    dirty: dict[uuid.UUID, Timer] = field(default_factory=dict)

    def schedule(self, timer: Timer, *, record: bool = True) -> bool:
        """Add a pending timer; False if one with the same id is already pending."""
        if timer.timer_id in self.pending:
            return False
        self.pending[timer.timer_id] = timer
        self.by_subject.setdefault(timer.subject, set()).add(timer.timer_id)
        heapq.heappush(self._heap, (timer.due_at, str(timer.timer_id)))
        if record:
            self.dirty[timer.timer_id] = timer
        return True

    def load(self, timers: Iterable[Timer]) -> None:
        """Restore pending timers after a restart."""
        for t in timers:
            if t.status == "pending":
                self.schedule(t, record=False)

    def observe_position(self, subject: str, snapshot: dict[str, Any]) -> None:
        """Keep the watched position's latest state on its pending timers."""
        for tid in self.by_subject.get(subject, ()):
            t = self.pending[tid]
            if t.snapshot != snapshot:
                t.snapshot = snapshot
                self.dirty[tid] = t

    def any_due(self, watermark: datetime | None) -> bool:
        """Whether some pending timer is due at `watermark` (cheap: looks at the earliest one)."""
        return watermark is not None and bool(self._heap) and self._heap[0][0] <= watermark

    def pop_due(self, watermark: datetime | None) -> list[Timer]:
        """Timers whose due time the watermark has reached, in due order, marked fired."""
        out: list[Timer] = []
        while watermark is not None and self._heap and self._heap[0][0] <= watermark:
            _, tid_text = heapq.heappop(self._heap)
            t = self.pending.pop(uuid.UUID(tid_text), None)
            if t is None:
                continue
            subjects = self.by_subject.get(t.subject)
            if subjects is not None:
                subjects.discard(t.timer_id)
                if not subjects:
                    del self.by_subject[t.subject]
            t.status = "fired"
            self.dirty[t.timer_id] = t
            out.append(t)
        return out

    def defer(self, timer: Timer, until: datetime) -> None:
        """Put a timer just popped back as pending, to be popped again at `until`."""
        timer.status = "pending"
        self.pending[timer.timer_id] = timer
        self.by_subject.setdefault(timer.subject, set()).add(timer.timer_id)
        heapq.heappush(self._heap, (until, str(timer.timer_id)))
        self.dirty[timer.timer_id] = timer

    def take(self, timer_id: uuid.UUID) -> Timer | None:
        """Remove a pending timer to fire it now (its heap entry is skipped later), marked fired."""
        t = self.pending.pop(timer_id, None)
        if t is None:
            return None
        subjects = self.by_subject.get(t.subject)
        if subjects is not None:
            subjects.discard(timer_id)
            if not subjects:
                del self.by_subject[t.subject]
        t.status = "fired"
        self.dirty[timer_id] = t
        return t

    def drain(self) -> list[Timer]:
        """Timers created or changed since the last drain (for persistence)."""
        out = list(self.dirty.values())
        self.dirty = {}
        return out
