"""Event-time facts per fund: what rules read when a fund's events arrive out of date order.

Fund-tracker computes each event's before/after ledger state in the order events arrive. While a
fund's events arrive in date order those states are the event-time states and are used as they
are. Once an event arrives dated before one already seen (a back-dated entry, a bulk import, a
correction), its fund is *disordered*: rules then read a view rebuilt from this book, which is
the same whatever the arrival order:

- descriptive fields and dated flags (approved + approved_at, signed + signed_at, accepted_at,
  settled_at, budget, amounts) come from the newest state known (fund-tracker's registers are
  order-independent once every event has arrived; conditions compare their dates with the
  event's);
- sums (received, passed down, paid, prepaid, contracted, amendments, ...) are rebuilt as of the
  event's date: the sum of what every event dated before it (ties by event id) added, each
  event's contribution read as the difference between its after and before states.

Kept docs (`Kept`) let the engine judge again what a late event changes.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from .timers import subject_key

# The ledger fields that are sums (what one event adds), per kind of row.
SUMS: dict[str, tuple[str, ...]] = {
    "position": ("received_fen", "passed_down_fen", "paid_fen", "returned_fen", "contracted_fen"),
    "contract": ("paid_fen", "prepaid_fen", "payments_count", "amendments_fen", "approved_amendments_fen"),
    "project": ("contracted_fen", "paid_fen", "awards_count", "awarded_fen"),
    "fund": ("allocated_fen",),
}
# LedgerState part -> kind of row.
PARTS = (
    ("fund", "fund"), ("position", "position"), ("counterparty", "position"), ("contract", "contract"),
    ("project", "project"),
)
# Entries that must exist before events that depend on them (back-dating, catalogue no. 23).
ENTRY_TYPES = {"ContractSigned": "contract", "ProjectApproved": "project"}
ENTRY_KINDS = {kind: et for et, kind in ENTRY_TYPES.items()}

EventKey = tuple[datetime, str]
_NONE: Mapping[str, Any] = {}
_FOLD_EVERY = timedelta(days=15)


def _num(value: Any) -> int:
    # A malformed value counts as nothing here; the rule reading it reports the error itself.
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def row_key(kind: str, state: Mapping[str, Any]) -> str:
    if kind == "position":
        return subject_key(state["fund_doc_no"], state["level"], state["region_code"])
    if kind == "fund":
        return str(state["fund_doc_no"])
    return str(state[f"{kind}_id"])


@dataclass(slots=True)  # many alive at once, one or more made per event
class Row:
    """One ledger row of a fund: its newest state and every event's contribution to its sums."""

    kind: str
    sequence: int
    latest: dict[str, Any]
    base: tuple[int, ...]  # the sums before the first event seen (or folded in, see `fold`)
    entries: list[tuple[EventKey, tuple[int, ...]]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    total: list[int] = field(default_factory=list)  # base + every entry

    def add(self, key: EventKey, delta: tuple[int, ...]) -> None:
        if not self.total:
            self.total = list(self.base)
        for i, d in enumerate(delta):
            self.total[i] += d
        if not self.entries or self.entries[-1][0] < key:
            self.entries.append((key, delta))
        else:
            bisect.insort(self.entries, (key, delta))

    def sums(self, upto: EventKey, inclusive: bool) -> dict[str, int]:
        """The sums as of an event: what every event ordered before it added (and it, if inclusive).
        Taken back from the total: the events asked about are mostly the latest ones."""
        total = list(self.total or self.base)
        for key, delta in reversed(self.entries):
            if key < upto or (key == upto and inclusive):
                break
            for i, d in enumerate(delta):
                total[i] -= d
        return dict(zip(SUMS[self.kind], total, strict=True))

    def view(self, upto: EventKey, inclusive: bool) -> dict[str, Any]:
        return {**self.latest, **self.sums(upto, inclusive)}

    def fold(self, before: EventKey) -> None:
        """Add the entries ordered before `before` into the base (they are past the grace period)."""
        n = bisect.bisect_left(self.entries, (before, ()))
        if n:
            total = list(self.base)
            for _, delta in self.entries[:n]:
                for i, d in enumerate(delta):
                    total[i] += d
            self.base = tuple(total)
            self.ids.difference_update(eid for (_, eid), _ in self.entries[:n])
            del self.entries[:n]


@dataclass(slots=True)  # many alive at once, one or more made per event
class Kept:
    """A judged event kept for the grace period, and the violations raised on it still open."""

    at: datetime
    doc: Mapping[str, Any] | bytes
    raised: set[str] = field(default_factory=set)  # rule refs
    resolved: set[str] = field(default_factory=set)
    # Kept while the fund's clock is within the grace period of this time: the event's date, or for an
    # entry (contract, approval) its recording time, since events it precedes may arrive until then.
    keep_from: datetime | None = None

    def document(self) -> Mapping[str, Any]:
        return orjson.loads(self.doc) if isinstance(self.doc, bytes) else self.doc


@dataclass
class FundBook:
    """The event-time facts of one fund."""

    clock: datetime | None = None  # the latest event time seen for this fund
    last: EventKey | None = None  # the latest event seen, in event-time order
    disordered: bool = False  # some event arrived dated before one already seen
    rows: dict[tuple[str, str], Row] = field(default_factory=dict)
    kept: dict[str, Kept] = field(default_factory=dict)
    kept_order: list[EventKey] = field(default_factory=list)  # the kept events in event-time order
    folded: datetime | None = None  # the horizon rows were last folded to
    horizon: datetime | None = None  # the horizon of the last `forget_before`
    # Back-dating: per entry (kind, id), its kept event id, and the events depending on it.
    entries: dict[tuple[str, str], str] = field(default_factory=dict)
    dependents: dict[tuple[str, str], list[EventKey]] = field(default_factory=dict)

    def observe(self, doc: Mapping[str, Any], key: EventKey, sequence: int) -> bool:
        """Record an event's contributions; True when it arrived out of date order."""
        # Late: dated at or before an event already seen. Conditions compare dates inclusively
        # ("approved on or before the payment"), so an event of the same instant may change the
        # verdict on one read earlier, whichever of the two has the smaller id.
        late = self.last is not None and key[0] <= self.last[0] and key != self.last
        if late:
            self.disordered = True
        if self.last is None or key > self.last:
            self.last = key
            self.clock = key[0]
        before = doc.get("before") or _NONE
        after = doc.get("after") or _NONE
        eid = key[1]
        rows = self.rows
        for part, kind in PARTS:
            a = after.get(part)
            if not a:
                continue
            rk = (kind, row_key(kind, a))
            b = before.get(part) or _NONE
            fields = SUMS[kind]
            row = rows.get(rk)
            # The states are kept as they are (never changed after they are read): no copies.
            if row is None:
                row = rows[rk] = Row(kind, sequence, a, tuple([_num(b.get(f)) for f in fields]))
            elif sequence >= row.sequence:
                row.sequence, row.latest = sequence, a
            if a == b:
                continue  # the event did not touch this row (compared in C: cheaper than the sums)
            try:
                delta = tuple([a.get(f, 0) - b.get(f, 0) for f in fields])
            except TypeError:  # a malformed value: counts as nothing here (the rule reading it reports it)
                delta = tuple([_num(a.get(f)) - _num(b.get(f)) for f in fields])
            if any(delta) and eid not in row.ids:  # (in `ids`: a redelivery)
                row.ids.add(eid)
                row.add(key, delta)
        return late

    def view(self, doc: Mapping[str, Any], key: EventKey) -> tuple[dict[str, Any], dict[str, Any]]:
        """The event's before/after states rebuilt in event time (see the module docstring)."""
        before = dict(doc.get("before") or {})
        after = dict(doc.get("after") or {})
        for part, kind in PARTS:
            state = after.get(part) or before.get(part)
            if not state:
                continue
            row = self.rows.get((kind, row_key(kind, state)))
            if row is None:
                continue
            before[part] = row.view(key, inclusive=False)
            after[part] = row.view(key, inclusive=True)
        return before, after

    def keep(self, key: EventKey, kept: Kept) -> None:
        if key[1] not in self.kept:
            if not self.kept_order or self.kept_order[-1] < key:
                self.kept_order.append(key)
            else:
                bisect.insort(self.kept_order, key)
        self.kept[key[1]] = kept

    def kept_from(self, at: datetime) -> list[tuple[str, Kept]]:
        """The kept events dated at or after `at`, in event-time order."""
        i = bisect.bisect_left(self.kept_order, (at, ""))
        return [(eid, self.kept[eid]) for _, eid in self.kept_order[i:] if eid in self.kept]

    def row(self, kind: str, rid: str) -> Row | None:
        return self.rows.get((kind, rid))

    def add_dependent(self, kind: str, rid: str, key: EventKey) -> bool:
        """Record an event that depends on an entry; True when it was not recorded before. Every
        dependent is kept: the entry reads the earliest one dated at or after itself, which need not be
        among the earliest few overall, and keeping only those made verdicts depend on arrival order."""
        deps = self.dependents.setdefault((kind, rid), [])
        i = bisect.bisect_left(deps, key)
        if i < len(deps) and deps[i] == key:
            return False
        deps.insert(i, key)
        return True

    def first_dependent(self, kind: str, rid: str, at: datetime) -> EventKey | None:
        """The earliest event depending on an entry dated at or after `at`."""
        deps = self.dependents.get((kind, rid))
        if not deps:
            return None
        i = bisect.bisect_left(deps, (at, ""))
        return deps[i] if i < len(deps) else None

    def forget_before(self, horizon: datetime) -> bool:
        """Drop kept events and fold sums dated before `horizon` (past the grace period); True when
        the rows were folded."""
        self.horizon = horizon
        n = bisect.bisect_left(self.kept_order, (horizon, ""))
        if n:
            still: list[EventKey] = []
            for key in self.kept_order[:n]:
                k = self.kept.get(key[1])
                if k is not None and k.keep_from is not None and k.keep_from >= horizon:
                    still.append(key)  # an entry recorded late: events it precedes may still come
                else:
                    self.kept.pop(key[1], None)
            self.kept_order[:n] = still
        if n:
            for rk in [rk for rk, eid in self.entries.items() if eid not in self.kept]:
                del self.entries[rk]
        # Folding walks every row of the fund: once a grace period is enough (it only bounds memory).
        if self.folded is None or horizon - self.folded >= _FOLD_EVERY:
            self.folded = horizon
            for row in self.rows.values():
                if row.entries and row.entries[0][0][0] < horizon:
                    row.fold((horizon, ""))
            return True
        return False

    def still_kept(self, at: datetime, keep_from: datetime | None) -> bool:
        """Whether an event kept at `at` (entry recorded at `keep_from`) survived the last `forget_before`."""
        h = self.horizon
        return h is None or at >= h or (keep_from is not None and keep_from >= h)

    def snapshot(self) -> dict[str, Any]:
        """What a restart cannot rebuild from the events still stored (core/engine.py `restore_books`):
        the rows' bases with the sums folded in, their newest states, the horizons, every dependent."""
        return {
            "rows": [[kind, rk, r.sequence, r.latest, list(r.base)] for (kind, rk), r in self.rows.items()],
            "folded": self.folded, "horizon": self.horizon, "disordered": self.disordered,
            "deps": [[kind, rid, [[at, eid] for at, eid in keys]] for (kind, rid), keys in self.dependents.items()],
        }

    @classmethod
    def restore(cls, snap: Mapping[str, Any]) -> FundBook:
        def t(v: Any) -> datetime | None:
            return None if v is None else datetime.fromisoformat(v)

        book = cls(folded=t(snap["folded"]), horizon=t(snap["horizon"]), disordered=snap["disordered"])
        for kind, rk, sequence, latest, base in snap["rows"]:
            book.rows[(kind, rk)] = Row(kind, sequence, latest, tuple(base))
        for kind, rid, keys in snap["deps"]:
            book.dependents[(kind, rid)] = [(datetime.fromisoformat(at), eid) for at, eid in keys]
        return book


def dependency(ev: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The entries an event depends on: a payment its contract and project, an award or a contract
    its project."""
    et = ev["event_type"]
    out: list[tuple[str, str]] = []
    if et == "PaymentDisbursed" and ev.get("contract_id"):
        out.append(("contract", str(ev["contract_id"])))
    if et in ("PaymentDisbursed", "ProcurementAwarded", "ContractSigned") and ev.get("project_id"):
        out.append(("project", str(ev["project_id"])))
    return out
