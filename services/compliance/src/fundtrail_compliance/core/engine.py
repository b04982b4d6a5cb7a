"""The compliance engine: one enriched event in, violations and resolutions out.

Pure: all state (windows, timers and the event-time clock, reference data, violations open to
late evidence) lives in `EngineState`, which the adapters load at start-up and persist per batch
(each part records what changed since its last `drain`). Replays use a fresh in-memory state.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from fundtrail_schemas.events import ViolationRaised, ViolationResolved

from .book import ENTRY_KINDS, ENTRY_TYPES, FundBook, Kept, dependency
from .evaluator import (
    CompiledRule,
    EvaluationError,
    LiveContext,
    PackSet,
    Selection,
    TypeIndex,
    build_context,
    ensure_leaves,
    live_context,
    read_values,
    run,
    run_condition,
    run_plain,
    select_version,
)
from .expr import leaf_value
from .helpers import local_date, parse_time
from .reference import REFERENCE_TYPES, ReferenceData, event_vendor
from .timers import EventClock, Timer, TimerWheel, subject_key, timer_id
from .violations import build_resolution, build_violation, jsonable, violation_id
from .windows import WindowEntry, Windows

TIMER_BUREAU = "fundtrail-compliance"
_SWEEP_EVERY = timedelta(days=1)
# A fund with no event for this long (event time) is forgotten by the book (core/book.py).
_BOOK_QUIET = timedelta(days=400)
# Positions whose newest state is remembered (funds x levels x regions; a year has a few thousand).
MAX_POSITIONS = 200_000
COMPUTE: Any = object()  # Engine.process: no plain results given, compute them


@dataclass(slots=True)
class Refutable:
    """A violation that later evidence may still refute (until `deadline`)."""

    violation_id: uuid.UUID
    rule_ref: str
    fund_doc_no: str
    occurred_at: datetime
    deadline: datetime
    values: dict[str, Any]


@dataclass(slots=True)  # many alive at once, one or more made per event
class Judged:
    """An event some rule judged against the reference data of its vendor, and what it raised."""

    at: datetime
    # The record as read when the caller has it: ~3 KB kept for the grace period where the parsed
    # document would hold several times that (payments are most events); parsed again if re-judged.
    doc: Mapping[str, Any] | bytes
    raised: set[uuid.UUID]

    def document(self) -> Mapping[str, Any]:
        return orjson.loads(self.doc) if isinstance(self.doc, bytes) else self.doc


@dataclass(slots=True)
class JudgedDay:
    """The events of one vendor and one day judged so far, and the reference view they were judged on."""

    view: Mapping[str, Any]
    events: dict[str, Judged] = field(default_factory=dict)


@dataclass(slots=True)  # many alive at once, one or more made per event
class KeptWindowEntry:
    """A windowed event kept for the grace period: an earlier-dated one arriving later joins its
    window, and it is judged again (`Engine.judge_window`)."""

    at: datetime
    doc: Mapping[str, Any] | bytes  # the routed document (`Routed.doc`), or its JSON as read
    raised: set[str] = field(default_factory=set)  # rule refs raised on it
    # Judged where it was read (no repartition topic): `doc` is the enriched record's JSON and these
    # are the routed document's other fields. Bytes, not the decoded tree: thousands of decoded
    # documents held for the grace period cost memory, and freeing them once cold cost the sweep.
    extra: dict[str, Any] | None = None

    def document(self) -> Mapping[str, Any]:
        if not isinstance(self.doc, bytes):
            return self.doc
        doc = orjson.loads(self.doc)
        if self.extra is not None:
            doc.update(self.extra)
        return doc


@dataclass(slots=True)
class Routed:
    """A windowed event for the one replica that owns its window (the repartition topic): what the
    window's owner needs to judge it (`Engine.judge_window`)."""

    rule_id: str
    key: tuple[object, ...]
    amount_fen: int
    # event, before/after as this replica judged them, ref (when the rule reads reference data),
    # accepted_at, trace_id, and `partition`, the enriched partition it was read from (the owner keeps
    # a clock per partition, as one worker reading them all would).
    doc: dict[str, Any]


@dataclass(slots=True)  # many alive at once, one or more made per event
class BookRecord:
    """An event of a fund's book to store (core/book.py; adapters/postgres.py `compliance_book_event`)."""

    fund: str
    event_id: str
    at: datetime
    keep_at: datetime  # kept (as a document) while the fund's horizon is not past it
    doc: Mapping[str, Any] | bytes
    folded: bool = False  # its sums were folded into the bases: replayed as a kept document only


@dataclass
class EngineState:
    windows: Windows = field(default_factory=Windows)
    timers: TimerWheel = field(default_factory=TimerWheel)
    clock: EventClock = field(default_factory=EventClock)
    reference: ReferenceData = field(default_factory=ReferenceData)
    refutables: dict[str, dict[uuid.UUID, Refutable]] = field(default_factory=dict)
    refutables_added: list[Refutable] = field(default_factory=list)
    refutables_closed: list[uuid.UUID] = field(default_factory=list)
    # Newest known state of each ledger position, by fund-tracker's sequence: partitions are read
    # at different speeds, so a position's later state can arrive before its earlier one.
    positions: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    # Event-time facts per fund (core/book.py). Persisted as the events a book still needs
    # (`book_added`) and each fund's snapshot at its sweeps (`book_swept`): `Engine.restore_books`
    # rebuilds them on assignment, so a replica restarted or taking a fund over judges as one that never stopped.
    books: dict[str, FundBook] = field(default_factory=dict)
    book_added: dict[str, list[BookRecord]] = field(default_factory=dict)  # by fund, in arrival order
    book_swept: dict[str, tuple[datetime, datetime | None]] = field(default_factory=dict)  # fund -> horizon, fold
    book_dropped: set[str] = field(default_factory=set)
    # Timers started behind the clock waiting for their fund's own clock (engine._fire_due), by fund.
    deferred: dict[str, set[uuid.UUID]] = field(default_factory=dict)
    # Windowed events kept for the grace period, by (rule id, event id); in memory only.
    window_kept: dict[tuple[str, str], KeptWindowEntry] = field(default_factory=dict)

    def note_position(self, subject: str, sequence: int, snapshot: dict[str, Any]) -> bool:
        """Remember `snapshot` unless a newer one is known; True when it is the newest."""
        known = self.positions.get(subject)
        if known is not None and known[0] > sequence:
            return False
        self.positions[subject] = (sequence, snapshot)
        if len(self.positions) > MAX_POSITIONS:  # bounded: the oldest noted goes first
            del self.positions[next(iter(self.positions))]
        return True
    # Events judged against reference data, by vendor, kept for the grace period: reference data
    # read later (another partition, a bulk load) re-judges them. Persisted like the rest of the
    # state: what changed since the last drain, by event id, and the first day still kept.
    judged: dict[str, dict[date, JudgedDay]] = field(default_factory=dict)
    judged_changed: dict[str, tuple[str, date, Judged]] = field(default_factory=dict)
    judged_kept_from: date | None = None

    def note_judged(
        self, vendor: str, on: date, event_id: str, j: Judged, view: Mapping[str, Any] | None = None,
        *, record: bool = True,
    ) -> None:
        """Keep a judged event; `view` is the reference view it was judged on (default: the day's now)."""
        days = self.judged.setdefault(vendor, {})
        day = days.get(on)
        if day is None:
            day = days[on] = JudgedDay(self.reference.vendor_view(vendor, on) if view is None else view)
        elif view is not None:
            day.view = view
        day.events[event_id] = j
        if record:
            self.judged_changed[event_id] = (vendor, on, j)

    def drop_judged_before(self, first_kept: date) -> None:
        for vendor, days in list(self.judged.items()):
            for on in [on for on in days if on < first_kept]:
                del days[on]
            if not days:
                del self.judged[vendor]
        self.judged_kept_from = first_kept

    def drain_judged(self) -> tuple[list[tuple[str, date, str, Judged]], date | None]:
        changed = [(vendor, on, eid, j) for eid, (vendor, on, j) in self.judged_changed.items()]
        kept_from, self.judged_changed, self.judged_kept_from = self.judged_kept_from, {}, None
        return changed, kept_from

    def add_refutable(self, r: Refutable, *, record: bool = True) -> None:
        bucket = self.refutables.setdefault(r.fund_doc_no, {})
        if r.violation_id in bucket:
            return
        bucket[r.violation_id] = r
        if record:
            self.refutables_added.append(r)

    def close_refutable(self, r: Refutable) -> None:
        bucket = self.refutables.get(r.fund_doc_no, {})
        if bucket.pop(r.violation_id, None) is not None:
            self.refutables_closed.append(r.violation_id)
            if not bucket:
                self.refutables.pop(r.fund_doc_no, None)

    def drain_refutables(self) -> tuple[list[Refutable], list[uuid.UUID]]:
        added, closed = self.refutables_added, self.refutables_closed
        self.refutables_added, self.refutables_closed = [], []
        return added, closed

    def note_swept(self, fund: str, book: FundBook, folded: bool) -> None:
        """A fund's book forgot what is past its horizon: so do its events not written yet."""
        h = book.horizon
        assert h is not None
        added = self.book_added.get(fund)
        if folded and book.folded is not None and added:
            fo = book.folded
            keep = []
            for r in added:
                if r.at < fo and not r.folded:
                    if r.keep_at < h:
                        continue  # its sums are in the bases now, its document is not needed
                    r.folded = True
                keep.append(r)
            self.book_added[fund] = keep
        prev = self.book_swept.get(fund)
        self.book_swept[fund] = (h, book.folded if folded else (prev[1] if prev else None))

    def drop_book(self, fund: str) -> None:
        del self.books[fund]
        self.book_added.pop(fund, None)
        self.book_swept.pop(fund, None)
        self.book_dropped.add(fund)

    def drain_books(self) -> tuple[list[BookRecord], dict[str, tuple[datetime, datetime | None]], set[str]]:
        out = [r for rs in self.book_added.values() for r in rs], self.book_swept, self.book_dropped
        self.book_added, self.book_swept, self.book_dropped = {}, {}, set()
        return out

    def discard_changes(self) -> None:
        """Drop what changed since the last drains, unpersisted (a replay keeps state in memory only:
        kept, the change lists would grow with every event)."""
        self.windows.drain()
        self.timers.drain()
        self.clock.drain()
        self.reference.drain()
        self.drain_refutables()
        self.drain_judged()
        self.drain_books()


@dataclass(slots=True)
class Outcome:
    violations: list[ViolationRaised] = field(default_factory=list)
    resolutions: list[ViolationResolved] = field(default_factory=list)
    errors: list[EvaluationError] = field(default_factory=list)
    routed: list[Routed] = field(default_factory=list)  # windowed events for their window's owner


def _window_days(packs: PackSet, before: Mapping[str, int] | None = None) -> dict[str, int]:
    """Per window rule id, the longest window of its loaded versions (never shorter than `before`:
    entries of a version just unloaded may still be replayed)."""
    out = dict(before or {})
    for r in packs.rules:
        if r.window is not None:
            out[r.rule.id] = max(out.get(r.rule.id, 0), r.window.days)
    return out


LATE_REASON = (
    "迟到的更早日期记录改变了判断：按业务日期重新判定后不再违规 / an earlier-dated record that arrived late changes"
    " the verdict: judged again by the dates the events carry, the rule no longer holds"
)


class Engine:
    """Evaluates enriched events (as JSON-like dicts) against a pack set, with state."""

    def __init__(
        self, packs: PackSet, state: EngineState | None = None, *, grace: timedelta = timedelta(days=15),
        route_windows: bool = False, owns_windows: bool = False,
    ):
        self.packs = packs
        self.state = state or EngineState()
        self.grace = grace
        # Windowed events go out in `Outcome.routed` for the window's owner instead of being judged
        # here (several replicas: each window on one of them); in one process they are judged here.
        self.route_windows = route_windows
        # The repartition topic's reader (windowing.WindowOwner): only judges windows, keeps its own clock.
        self.owns_windows = owns_windows
        self._partition = 0  # the partition of the event being processed
        self._window_days = _window_days(packs)
        self._live: dict[str, LiveContext] = {}
        self._next_sweep: datetime | None = None

    def replace_packs(self, packs: PackSet) -> None:
        """Swap in a validated pack set (state is kept)."""
        self.packs = packs
        self._live = {}
        self._window_days = _window_days(packs, self._window_days)

    # --- restart --------------------------------------------------------------------------------

    def restore_books(
        self,
        snapshots: Mapping[str, Mapping[str, Any]],
        records: Iterable[tuple[str, str, datetime, datetime, bool, bytes]],
        verdicts: Mapping[str, tuple[set[str], set[str]]],
    ) -> None:
        """Rebuild the books of the funds loaded (a restart, an assignment): each fund's snapshot of its
        last sweep, then its stored events (fund, event id, time, keep time, folded, record) in arrival
        order, observed and kept as `process` did, with the rule refs raised and resolved on each as
        recorded (`verdicts`). The same book as the replica that processed them had, whatever restarted."""
        books = self.state.books
        for fund, snap in snapshots.items():
            books[fund] = FundBook.restore(snap)
        for fund, eid, at, keep_at, folded, raw in records:
            book = books.get(fund)
            if book is None:
                book = books[fund] = FundBook()
            doc = orjson.loads(raw)
            ev = doc["event"]
            key = (at, eid)
            if not folded:
                book.observe(doc, key, int(doc.get("sequence") or 0))
            et = ev["event_type"]
            idx = self.packs.by_type.get(et)
            selected = idx.effective(local_date(at)) if idx is not None else None
            keep_from = keep_at if keep_at > at else None
            if (selected is not None and (selected.plain or selected.windowed) and selected.rejudged
                    and book.still_kept(at, keep_from)):
                raised, resolved = verdicts.get(eid, (set(), set()))
                kept = Kept(at, raw, set(raised - resolved), set(resolved))
                book.keep(key, kept)
                if et in ENTRY_TYPES:
                    book.entries[(ENTRY_TYPES[et], str(ev[f"{ENTRY_TYPES[et]}_id"]))] = eid
                    kept.keep_from = parse_time(ev["published_at"])
            for dep in dependency(ev):
                book.add_dependent(*dep, key)

    # --- one event ----------------------------------------------------------------------------

    def process(
        self, doc: Mapping[str, Any], partition: int = 0, plain_results: Any = COMPUTE, raw: bytes | None = None
    ) -> Outcome:
        """Evaluate one enriched event (read from `partition`); update state; return what to publish.

        `plain_results` are the event's plain-condition results computed ahead by `PlainConditions`
        (a replay's reader process): empty when none fired, None when one failed (run here, one by
        one, to say which); by default they are computed here. `raw`, the record `doc` was decoded
        from, is what is kept when the event may be judged again (see `Judged`).
        """
        out = Outcome()
        ev = doc["event"]
        et = ev["event_type"]
        at = parse_time(ev["occurred_at"])
        on = local_date(at)
        st = self.state
        self._partition = partition
        if et in REFERENCE_TYPES:
            vendor = str(ev["vendor_id"])
            judged = vendor in st.judged
            before = st.reference.signature(vendor) if judged else None
            if st.reference.apply(ev) and judged and st.reference.signature(vendor) != before:
                self._rejudge(vendor, out)
        roots: dict[str, Any] = {"event": ev, "before": doc.get("before"), "after": doc.get("after")}
        sequence = int(doc.get("sequence") or 0)
        fund = ev.get("fund_doc_no")
        book = key = None
        late = False
        if fund and et not in REFERENCE_TYPES:
            book = st.books.get(fund)
            if book is None:
                book = st.books[fund] = FundBook()
            key = (at, str(ev["event_id"]))
            late = book.observe(doc, key, sequence)
            if book.disordered:
                roots["before"], roots["after"] = book.view(doc, key)
                plain_results = COMPUTE  # computed ahead on the states as they arrived
            if et in ENTRY_TYPES:
                roots["deps"] = self._deps(book, ev, at)
        if et in self.packs.refutations:
            fund = ev.get("fund_doc_no")
            if fund and fund in st.refutables:
                self._refute(doc, roots, at, out)
        idx = self.packs.by_type.get(et)
        if idx is not None:
            selected = idx.effective(on)
            if selected.plain or selected.windowed:
                first = len(out.violations)
                self._evaluate(doc, roots, idx, selected, at, on, out, plain_results, raw)
                if book is not None and key is not None and selected.rejudged:
                    kept = Kept(at, doc if raw is None else raw, {
                        f"{v.rule_id}@{v.rule_version}" for v in out.violations[first:]
                        if v.triggering_event_id == uuid.UUID(key[1])
                    })
                    book.keep(key, kept)
                    if et in ENTRY_TYPES:
                        book.entries[(ENTRY_TYPES[et], str(ev[f"{ENTRY_TYPES[et]}_id"]))] = key[1]
                        kept.keep_from = parse_time(ev["published_at"])
        if book is not None and key is not None and fund:
            kept_now = book.kept.get(key[1])
            keep_at = kept_now.keep_from if kept_now is not None and kept_now.keep_from is not None else at
            st.book_added.setdefault(fund, []).append(
                BookRecord(fund, key[1], at, max(at, keep_at), doc if raw is None else raw))
            if late:
                self._rejudge_fund(book, key, ev, out)
            for dep in dependency(ev):
                if book.add_dependent(*dep, key):
                    entry = book.entries.get(dep)
                    entry_kept = book.kept.get(entry) if entry else None
                    # The entry reads its earliest dependent: judge it again when that is this event.
                    if (entry_kept is not None and entry is not None and entry != key[1] and entry_kept.at <= at
                            and book.first_dependent(*dep, entry_kept.at) == key):
                        if late:  # judged again whole by `_rejudge_fund` above
                            self._rejudge_kept(book, entry, entry_kept, ev, out)
                        else:
                            self._rejudge_kept(book, entry, entry_kept, ev, out, deps_only=ENTRY_KINDS[dep[0]])
        after = doc.get("after") or {}
        newest: list[tuple[str, dict[str, Any]]] = []
        for pos in (after.get("position"), after.get("counterparty")):
            if pos:
                subject = subject_key(pos["fund_doc_no"], pos["level"], pos["region_code"])
                if st.note_position(subject, sequence, pos):
                    newest.append((subject, pos))
        if et in self.packs.timer_starts:
            self._start_timers(doc, et, at, on)
        if fund and fund in st.deferred:
            self._fire_deferred(fund, out)
        if st.timers.by_subject:
            for subject, pos in newest:
                st.timers.observe_position(subject, pos)
        st.clock.observe(at, partition)
        # Also a timer started behind the watermark (a late event) is due at once.
        if st.timers.any_due(st.clock.watermark):
            self._fire_due(out)
        self._sweep()
        return out

    def apply_reference(self, ev: Mapping[str, Any]) -> Outcome:
        """Reference data another replica read (shared through the store): taken in, not recorded
        again, and the events judged here on its vendor are judged again, as if it had been read here."""
        out = Outcome()
        st = self.state
        vendor = str(ev["vendor_id"])
        judged = vendor in st.judged
        before = st.reference.signature(vendor) if judged else None
        if st.reference.apply(ev, record=False) and judged and st.reference.signature(vendor) != before:
            self._rejudge(vendor, out)
        return out

    def advance(self, to: datetime, partition: int = 0) -> Outcome:
        """Move event time forward without an event (tests, idle periods); fires due timers."""
        self.state.clock.observe(to, partition)
        return self._tick()

    def assign(self, partitions: Iterable[int] | None, idle: Iterable[int] = ()) -> Outcome:
        """The partitions read (None: every one seen) and the idle ones among them; fires what that
        makes due (an idle partition stops holding the watermark back)."""
        self.state.clock.assign(partitions, idle)
        return self._tick()

    def _tick(self) -> Outcome:
        out = Outcome()
        if self.state.timers.any_due(self.state.clock.watermark):
            self._fire_due(out)
        self._sweep()
        return out

    # --- stateless and window rules -----------------------------------------------------------

    def _evaluate(
        self,
        doc: Mapping[str, Any],
        roots: dict[str, Any],
        idx: TypeIndex,
        selected: Selection,
        at: datetime,
        on: date,
        out: Outcome,
        plain_results: Any,
        raw: bytes | None,
    ) -> None:
        ev = roots["event"]
        vendor = None
        if idx.uses_ref:
            vendor = event_vendor(ev)
            roots["ref"] = {"vendor": self.state.reference.vendor_view(vendor, on)}
            first = len(out.violations)
        et = ev["event_type"]
        if selected.plain:
            results = plain_results
            if results is COMPUTE:
                results = run_plain(selected, self._plain_context(et, idx, roots))
            if results is None:
                ctx = self._plain_context(et, idx, roots)
                self._plain_results(selected.plain, results, ctx, doc, roots, at, out)
            else:
                for fired in results:
                    if fired is not False:  # something fired, or a condition returned a non-boolean
                        self._plain_results(selected.plain, results, None, doc, roots, at, out)
                        break
        for rule in selected.windowed:
            w = rule.window
            assert w is not None
            try:
                # Its own small context (key, amount, include): values changing in the type's context
                # would make CEL convert all of that context's variables again.
                ctx = live_context(self._live, rule.ref, w.leaves, w.functions).bind(roots)
                routed = self._route(rule, ctx, roots, doc)
            except EvaluationError as exc:
                out.errors.append(exc)
                continue
            if routed is None:
                continue  # not part of a window (its `include` says so)
            if self.route_windows:
                out.routed.append(routed)
            else:
                kept_as: tuple[bytes, dict[str, Any]] | None = None
                if raw is not None and roots["before"] is doc.get("before") and roots["after"] is doc.get("after"):
                    # The states are the record's own (not a rebuilt event-time view): keep its bytes.
                    kept_as = raw, {k: v for k, v in routed.doc.items() if k not in doc}
                self.judge_window(routed, kept_as, rule=rule, at=at, into=out)
        # Kept to be judged again when the vendor's registry, debarment or relations (other
        # partitions) are read late: every event a reference-reading rule judged.
        if vendor is not None and selected.reads_ref:
            self.state.note_judged(vendor, on, str(ev["event_id"]), Judged(
                at, doc if raw is None else raw, {v.violation_id for v in out.violations[first:]}
            ), roots["ref"]["vendor"])

    def _plain_context(self, et: str, idx: TypeIndex, roots: Mapping[str, Any]) -> Any:
        return live_context(self._live, et, idx.leaves, idx.functions).bind(roots)

    def _rejudge(self, vendor: str, out: Outcome) -> None:
        """Reference data about `vendor` just changed: judge again its events still within the grace
        period whose day's view changed in a field some condition reads, as if the data had been
        there first (violations have deterministic ids, so ordered and bulk loads raise the same)."""
        wm = self.state.clock.watermark
        horizon = wm - self.grace if wm is not None else None
        for on, day in self.state.judged.get(vendor, {}).items():
            view = self.state.reference.vendor_view(vendor, on)
            old, day.view = day.view, view
            if all(old.get(f) == view.get(f) for f in self.packs.ref_fields):
                continue
            for eid, j in day.events.items():
                if horizon is not None and j.at < horizon:
                    continue  # past the grace period (the daily sweep has not dropped it yet)
                doc = j.document()
                idx = self.packs.by_type.get(doc["event"]["event_type"])
                if idx is None:
                    continue
                roots: dict[str, Any] = {
                    "event": doc["event"], "before": doc.get("before"), "after": doc.get("after"),
                    "ref": {"vendor": view},
                }
                for rule in idx.effective(on).reads_ref:
                    vid = violation_id(rule.ref, eid)
                    if vid in j.raised:
                        continue
                    try:
                        ctx = build_context(rule.condition.leaves, roots, rule.condition.functions)
                        if run_condition(rule.condition, ctx, rule.ref):
                            out.violations.append(self._violation(rule, doc, roots, j.at))
                            j.raised.add(vid)
                            self.state.judged_changed[eid] = (vendor, on, j)
                    except EvaluationError as exc:
                        out.errors.append(exc)

    def _plain_results(
        self,
        plain: tuple[CompiledRule, ...],
        results: list[Any] | None,
        ctx: Any,  # needed when results is None
        doc: Mapping[str, Any],
        roots: Mapping[str, Any],
        at: datetime,
        out: Outcome,
    ) -> None:
        if results is not None and len(results) != len(plain):
            raise ValueError(f"{len(results)} plain results for {len(plain)} conditions")
        for n, rule in enumerate(plain):
            if results is not None:
                fired = results[n]
            else:
                try:
                    fired = rule.condition.program.execute(ctx)
                except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
                    out.errors.append(EvaluationError(rule.ref, f"{rule.condition.source.strip()}: {exc}"))
                    continue
            if fired is True:
                try:
                    out.violations.append(self._violation(rule, doc, roots, at))
                except EvaluationError as exc:
                    out.errors.append(exc)
            elif fired is not False:
                out.errors.append(EvaluationError(rule.ref, f"condition returned {type(fired).__name__}"))

    def _route(
        self, rule: CompiledRule, ctx: Any, roots: Mapping[str, Any], doc: Mapping[str, Any]
    ) -> Routed | None:
        """The window an event joins (None when the rule's `include` leaves it out), with what its
        owner needs to judge it."""
        w = rule.window
        assert w is not None
        if w.key_reader is not None:
            key = w.key_reader(roots)
        else:
            key = tuple(
                leaf_value(k.bare, roots.get(k.bare.root)) if k.bare else jsonable(run(k, ctx, rule.ref))
                for k in w.key
            )
        bare = w.amount.bare
        amount = leaf_value(bare, roots.get(bare.root)) if bare else run(w.amount, ctx, rule.ref)
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise EvaluationError(rule.ref, "window amount is not an integer")
        if w.include is not None and not run_condition(w.include, ctx, rule.ref):
            return None
        routed = {
            "event": roots["event"], "before": roots.get("before"), "after": roots.get("after"),
            "accepted_at": doc.get("accepted_at"), "trace_id": doc.get("trace_id"), "partition": self._partition,
        }
        if "ref" in roots:
            routed["ref"] = roots["ref"]
        return Routed(rule.rule.id, key, amount, routed)

    # --- windows, judged in event time on the window's owner -------------------------------------

    def judge_window(
        self, routed: Routed, raw: bytes | tuple[bytes, dict[str, Any]] | None = None, *,
        rule: CompiledRule | None = None, at: datetime | None = None, into: Outcome | None = None,
    ) -> Outcome:
        """Judge a windowed event on its window: in event time, as if every event of the window had
        arrived in date order. The event reads the entries dated before it (ties by event id) within
        the window; the entries dated after it within reach, already judged, now hold it and are
        judged again (raising what now holds: ids are deterministic, so arrival order does not change
        which event a violation names). `raw`, what is kept: the routed document as read, or the
        enriched record it was routed from with the routed document's other fields.
        Judged where it was read, the caller passes the `rule` version, the event's time and the
        outcome to add to (`into`)."""
        out = Outcome() if into is None else into
        st = self.state
        doc = routed.doc
        ev = doc["event"]
        eid = str(ev["event_id"])
        if at is None:
            at = parse_time(ev["occurred_at"])
        rule_id, key = routed.rule_id, routed.key
        if rule is None:
            rule = self._window_rule(rule_id, ev["event_type"], at)
        if rule is None or rule.window is None:
            return out  # that rule version is no longer loaded
        entry = WindowEntry(eid, at, routed.amount_fen)
        w = rule.window
        placed = st.windows.place(
            rule_id, key, entry, days=w.days, tolerance_bps=w.tolerance_bps,
            reach=self._window_days.get(rule_id, w.days),
        )
        if placed is None:
            return out  # a redelivery: judged when it first arrived
        view, later = placed
        if isinstance(raw, tuple):
            kept = KeptWindowEntry(at, raw[0], extra=raw[1])
        else:
            kept = KeptWindowEntry(at, doc if raw is None else raw)
        st.window_kept[(rule_id, eid)] = kept
        self._judge_in_window(rule, doc, view, at, kept, out)
        for m in later:
            mk = st.window_kept.get((rule_id, m.event_id))
            if mk is None:
                continue  # past the grace period, or restored without its document
            mdoc = mk.document()
            mrule = self._window_rule(rule_id, mdoc["event"]["event_type"], m.at)
            if mrule is None or mrule.window is None or mrule.ref in mk.raised:
                continue
            mw = mrule.window
            mview = st.windows.earlier(rule_id, key, m, days=mw.days, tolerance_bps=mw.tolerance_bps)
            self._judge_in_window(mrule, mdoc, mview, m.at, mk, out)
        if self.owns_windows:
            # The window's owner: event time per enriched partition of the events it was sent, the
            # watermark their minimum (what one worker reading every partition would have).
            st.clock.observe(at, int(doc.get("partition") or 0))
            self._sweep_windows()
        return out

    def _window_rule(self, rule_id: str, et: str, at: datetime) -> CompiledRule | None:
        idx = self.packs.by_type.get(et)
        if idx is None:
            return None
        for rule in idx.effective(local_date(at)).windowed:
            if rule.rule.id == rule_id:
                return rule
        return None

    def _judge_in_window(
        self, rule: CompiledRule, doc: Mapping[str, Any], view: Any, at: datetime, kept: KeptWindowEntry,
        out: Outcome,
    ) -> None:
        roots: dict[str, Any] = {"event": doc["event"], "before": doc.get("before"), "after": doc.get("after"),
                                 "window": view.as_root()}
        if doc.get("ref") is not None:
            roots["ref"] = doc["ref"]
        try:
            # A live context per rule: consecutive events of a window share most values.
            cond = rule.condition
            ctx = live_context(self._live, f"window:{rule.ref}", cond.leaves, cond.functions).bind(roots)
            if run_condition(cond, ctx, rule.ref):
                out.violations.append(self._violation(rule, doc, roots, at))
                kept.raised.add(rule.ref)
        except EvaluationError as exc:
            out.errors.append(exc)

    def _sweep_windows(self) -> None:
        """The window owner's sweep (it has no partition clock): by the newest sender clock, once a day."""
        st = self.state
        wm = st.clock.watermark
        if wm is None or (self._next_sweep is not None and wm < self._next_sweep):
            return
        self._next_sweep = wm + _SWEEP_EVERY
        self._prune_windows(wm)

    def _prune_windows(self, wm: datetime) -> None:
        st = self.state
        # Each rule's entries are kept as long as its longest window needs, looking back from an
        # event late by up to the grace period (or by a window); their documents for the grace period
        # (an event arriving later than that does not judge the later ones again).
        for rule_id, reach in self._window_days.items():
            days = timedelta(days=reach)
            st.windows.prune(wm - days - max(days, self.grace), rule_id)
        horizon = wm - self.grace
        for k in [k for k, kept in st.window_kept.items() if kept.at < horizon]:
            del st.window_kept[k]

    def _violation(
        self, rule: CompiledRule, doc: Mapping[str, Any], roots: Mapping[str, Any], at: datetime
    ) -> ViolationRaised:
        ev = roots["event"]
        window_root = roots.get("window")
        # Evidence is read only when a rule fires, in its own context (the live one stays lean).
        leaves = {leaf.name: leaf for e in rule.evidence.values() for leaf in e.leaves}
        functions = {f for e in rule.evidence.values() for f in e.functions}
        ctx = build_context(leaves.values(), roots, functions)
        named = {name: run(expr, ctx, rule.ref) for name, expr in rule.evidence.items()}
        evidence_ids = [uuid.UUID(str(ev["event_id"]))]
        if window_root:
            evidence_ids += [uuid.UUID(e) for e in window_root["event_ids"]]
        published = parse_time(doc["accepted_at"]) if doc.get("accepted_at") else at
        v = build_violation(
            rule=rule.rule,
            triggering_event_id=evidence_ids[0],
            occurred_at=at,
            published_at=max(published, at),
            source_bureau=ev["source_bureau"],
            level=ev["level"],
            region_code=ev["region_code"],
            fund_doc_no=ev.get("fund_doc_no"),
            project_id=ev.get("project_id"),
            evidence_event_ids=evidence_ids,
            named=named,
            read=read_values(rule.condition.leaves, roots),
            params=dict(rule.params),
            trace_id=doc.get("trace_id"),
        )
        if rule.refutation is not None and v.fund_doc_no:
            self.state.add_refutable(
                Refutable(v.violation_id, rule.ref, v.fund_doc_no, at, at + self.grace, jsonable(named))
            )
        return v

    # --- events judged again in event time ---------------------------------------------------

    @staticmethod
    def _deps(book: FundBook, ev: Mapping[str, Any], at: datetime) -> dict[str, Any]:
        """What an entry (contract, approval) reads about the events that depend on it: the earliest
        one dated on or after it (back-dating, catalogue no. 23)."""
        kind = ENTRY_TYPES[ev["event_type"]]
        first = book.first_dependent(kind, str(ev[f"{kind}_id"]), at)
        if first is None:
            return {"first_at": None, "first_event_id": None}
        return {"first_at": first[0].isoformat(), "first_event_id": first[1]}

    def _rejudge_fund(self, book: FundBook, key: tuple[datetime, str], cause: Mapping[str, Any], out: Outcome) -> None:
        """An event arrived dated before others of its fund: judge those again as of their dates."""
        for eid, kept in book.kept_from(key[0]):
            if eid != key[1]:
                self._rejudge_kept(book, eid, kept, cause, out)

    def _rejudge_kept(
        self, book: FundBook, eid: str, kept: Kept, cause: Mapping[str, Any], out: Outcome, *, deps_only: str = ""
    ) -> None:
        """Judge a kept event again on its fund's event-time view: raise what now holds, resolve what
        no longer does (ids are deterministic, so this equals judging with every event present).

        `deps_only`, the entry's event type: only its rules reading `deps` (its first dependent arrived
        dated after it and not late: nothing else it reads changed, its view holds only events ordered
        before it)."""
        on = local_date(kept.at)
        if deps_only:  # the entry's type is known from its kind: decide before decoding the kept document
            idx = self.packs.by_type.get(deps_only)
            if idx is None or not idx.effective(on).reads_deps:
                return
        doc = kept.document()
        ev = doc["event"]
        idx = self.packs.by_type.get(ev["event_type"])
        if idx is None:
            return
        selected = idx.effective(on)
        rules = selected.reads_deps if deps_only else selected.rejudged
        if not rules:
            return
        # The event-time view costs a copy of every row: rebuilt only when a condition reads it.
        viewed = not deps_only or selected.deps_read_state
        before, after = book.view(doc, (kept.at, eid)) if viewed else (doc.get("before"), doc.get("after"))
        roots: dict[str, Any] = {"event": ev, "before": before, "after": after}
        if ev["event_type"] in ENTRY_TYPES:
            roots["deps"] = self._deps(book, ev, kept.at)
        if idx.uses_ref:
            roots["ref"] = {"vendor": self.state.reference.vendor_view(event_vendor(ev), on)}
        # One live context per selection (re-bound per kept event: only changed values convert).
        ctx = live_context(
            self._live, f"rejudge:{id(selected)}", selected.rejudged_leaves, selected.rejudged_functions
        ).bind(roots)
        for rule in rules:
            try:
                fired = run_condition(rule.condition, ctx, rule.ref)
                if fired and rule.ref not in kept.raised and rule.ref not in kept.resolved:
                    if not viewed:  # the evidence may read the states
                        viewed = True
                        roots["before"], roots["after"] = book.view(doc, (kept.at, eid))
                    out.violations.append(self._violation(rule, doc, roots, kept.at))
                    kept.raised.add(rule.ref)
                elif not fired and rule.ref in kept.raised:
                    kept.raised.discard(rule.ref)
                    kept.resolved.add(rule.ref)
                    self._resolve_late(rule, eid, ev, cause, out)
            except EvaluationError as exc:
                out.errors.append(exc)

    def _resolve_late(
        self, rule: CompiledRule, eid: str, ev: Mapping[str, Any], cause: Mapping[str, Any], out: Outcome
    ) -> None:
        vid = violation_id(rule.ref, eid)
        if rule.refutation is not None:
            r = self.state.refutables.get(str(ev.get("fund_doc_no")), {}).get(vid)
            if r is None:
                return  # already resolved by its late evidence (or past its grace period)
            self.state.close_refutable(r)
        at = parse_time(cause["occurred_at"])
        out.resolutions.append(
            build_resolution(
                violation=vid,
                refuting_event_id=uuid.UUID(str(cause["event_id"])),
                occurred_at=at,
                published_at=max(parse_time(cause["published_at"]), at),
                source_bureau=cause["source_bureau"],
                level=cause["level"],
                region_code=cause["region_code"],
                fund_doc_no=ev.get("fund_doc_no"),
                project_id=ev.get("project_id"),
                reason=LATE_REASON,
            )
        )

    # --- late evidence --------------------------------------------------------------------------

    def _refute(self, doc: Mapping[str, Any], roots: dict[str, Any], at: datetime, out: Outcome) -> None:
        ev = roots["event"]
        candidates = {r.ref for r in self.packs.refutations[ev["event_type"]]}
        for r in list(self.state.refutables.get(ev["fund_doc_no"], {}).values()):
            if r.rule_ref not in candidates or at > r.deadline:
                continue
            rule = self.packs.by_ref[r.rule_ref]
            assert rule.refutation is not None and rule.rule.refuted_by is not None
            scoped = {**roots, "violation": r.values}
            ctx = build_context(rule.refutation.leaves, scoped, rule.refutation.functions)
            try:
                if not run_condition(rule.refutation, ctx, rule.ref):
                    continue
            except EvaluationError as exc:
                out.errors.append(exc)
                continue
            spec = rule.rule.refuted_by
            published = parse_time(doc["accepted_at"]) if doc.get("accepted_at") else at
            out.resolutions.append(
                build_resolution(
                    violation=r.violation_id,
                    refuting_event_id=uuid.UUID(str(ev["event_id"])),
                    occurred_at=at,
                    published_at=max(published, at),
                    source_bureau=ev["source_bureau"],
                    level=ev["level"],
                    region_code=ev["region_code"],
                    fund_doc_no=ev.get("fund_doc_no"),
                    project_id=ev.get("project_id"),
                    reason=f"{spec.reason_zh} / {spec.reason_en}",
                )
            )
            self.state.close_refutable(r)

    # --- timers ---------------------------------------------------------------------------------

    def _start_timers(self, doc: Mapping[str, Any], et: str, at: datetime, on: date) -> None:
        ev = doc["event"]
        for versions in self.packs.timer_starts[et]:
            rule = select_version(versions, on)
            if rule is None or rule.rule.timer is None:
                continue
            spec = rule.rule.timer
            before = (doc.get("before") or {}).get(spec.subject) or {}
            after = (doc.get("after") or {}).get(spec.subject)
            # The clock starts at the first money a position receives.
            if not after or after.get("received_fen", 0) <= 0 or before.get("received_fen", 0) > 0:
                continue
            param = spec.days_param_by_level.get(after["level"])
            if param is None:
                continue
            days = int(rule.params[param])
            subject = subject_key(after["fund_doc_no"], after["level"], after["region_code"])
            due = at + timedelta(days=days)
            # Started behind the clock (history loaded after later-dated traffic): the clock, already
            # past, must not judge it before the fund's own later events are read; they arrive now.
            wm = self.state.clock.watermark
            behind = wm is not None and due < wm + self.grace
            self.state.timers.schedule(
                Timer(
                    timer_id=timer_id(rule.rule.id, subject),
                    rule_id=rule.rule.id,
                    rule_ref=rule.ref,
                    subject=subject,
                    fund_doc_no=after["fund_doc_no"],
                    level=after["level"],
                    region_code=after["region_code"],
                    trigger_event_id=uuid.UUID(str(ev["event_id"])),
                    started_at=at,
                    due_at=due,
                    days=days,
                    # What the position looked like last, which may be after this event already.
                    snapshot=dict(self.state.positions.get(subject, (0, after))[1]),
                    trace_id=doc.get("trace_id"),
                    not_before=wm + self.grace if behind and wm is not None else None,
                )
            )

    def _fire_due(self, out: Outcome) -> None:
        st = self.state
        wm = st.clock.watermark
        for t in st.timers.pop_due(wm):
            if t.not_before is not None and wm is not None and wm < t.not_before and not self._fund_past(t):
                # History loaded late: wait for the fund's own clock to pass the due time plus the
                # grace period (its outflows arrive meanwhile), or for the clock to move on by a grace
                # period (a fund whose history ends idle): no raised-then-resolved noise.
                st.timers.defer(t, t.not_before)
                st.deferred.setdefault(t.fund_doc_no, set()).add(t.timer_id)
                continue
            self._judge_timer(t, out)

    def _fund_past(self, t: Timer) -> bool:
        book = self.state.books.get(t.fund_doc_no)
        return book is not None and book.clock is not None and book.clock >= t.due_at + self.grace

    def _fire_deferred(self, fund: str, out: Outcome) -> None:
        """The fund's own clock moved: fire its deferred timers it has now passed."""
        st = self.state
        waiting = st.deferred[fund]
        for tid in list(waiting):
            t = st.timers.pending.get(tid)
            if t is None:
                waiting.discard(tid)  # fired by the clock meanwhile
            elif self._fund_past(t):
                waiting.discard(tid)
                taken = st.timers.take(tid)
                if taken is not None:
                    self._judge_timer(taken, out)
        if not waiting:
            del st.deferred[fund]

    def _judge_timer(self, t: Timer, out: Outcome) -> None:
        st = self.state
        rule = self.packs.by_ref.get(t.rule_ref)
        if rule is None:
            return  # that rule version is no longer loaded: nothing to check against
        # The position as of the due time, by the dates of its flows (an outflow dated after the
        # due time that arrived before it does not hide idle money); the last state seen otherwise.
        book = st.books.get(t.fund_doc_no)
        row = book.row("position", t.subject) if book is not None else None
        snapshot = row.view((t.due_at, ""), inclusive=False) if row is not None else t.snapshot
        roots = {
            "position": snapshot,
            "timer": {"days": t.days, "due_at": t.due_at.isoformat(), "started_at": t.started_at.isoformat()},
        }
        ctx = build_context(rule.condition.leaves, roots, rule.condition.functions)
        try:
            if not run_condition(rule.condition, ctx, rule.ref):
                return
            named = {}
            have = {leaf.name for leaf in rule.condition.leaves}
            for name, expr in rule.evidence.items():
                ensure_leaves(ctx, have, expr.leaves, roots)
                named[name] = run(expr, ctx, rule.ref)
        except EvaluationError as exc:
            out.errors.append(exc)
            return
        v = build_violation(
            rule=rule.rule,
            triggering_event_id=t.trigger_event_id,
            occurred_at=t.due_at,
            published_at=t.due_at,
            source_bureau=TIMER_BUREAU,
            level=t.level,
            region_code=t.region_code,
            fund_doc_no=t.fund_doc_no,
            project_id=None,
            evidence_event_ids=[t.trigger_event_id],
            named=named,
            read=read_values(rule.condition.leaves, roots),
            params=dict(rule.params),
            trace_id=t.trace_id,
        )
        out.violations.append(v)
        # A timer can fire before an earlier-dated outflow is read (a partition the adapter took
        # for idle, a timer restored behind the clock): the grace runs from when it fired.
        if rule.refutation is not None and t.fund_doc_no:
            fired_at = max(t.due_at, st.clock.watermark or t.due_at)
            self.state.add_refutable(
                Refutable(v.violation_id, rule.ref, t.fund_doc_no, t.due_at, fired_at + self.grace, jsonable(named))
            )

    def _sweep(self) -> None:
        """Once per event-time day: forget expired refutables and window entries out of reach."""
        st = self.state
        wm = st.clock.watermark
        if wm is None or (self._next_sweep is not None and wm < self._next_sweep):
            return
        self._next_sweep = wm + _SWEEP_EVERY
        # Late evidence is awaited on each fund's own event time, never on other funds' traffic: a
        # refutable goes once its fund's latest event is past its deadline (a fund not seen since a
        # restart keeps its refutables until it moves).
        for fund, bucket in list(st.refutables.items()):
            book = st.books.get(fund)
            if book is None or book.clock is None:
                continue
            for r in list(bucket.values()):
                if r.deadline < book.clock:
                    st.close_refutable(r)
        for fund, book in list(st.books.items()):
            if book.clock is None:
                continue
            if book.clock < wm - _BOOK_QUIET and fund not in st.refutables:
                st.drop_book(fund)  # a fund quiet for long: a later event starts a new book from its state
            else:
                st.note_swept(fund, book, book.forget_before(book.clock - self.grace))
        # Whole days past the grace period (an event of an earlier day is older than its start).
        st.drop_judged_before(local_date(wm - self.grace))
        self._prune_windows(wm)


class PlainConditions:
    """The plain (stateless) conditions of each event, evaluated ahead of an `Engine`.

    They read only the event, its before/after states and the reference data, so a process that
    reads the same log in the same order, applying the reference events as the engine does, gets
    the results the engine would: a replay's reader process computes them on the other core and the
    engine is handed them (`Engine.process(..., plain_results=...)`).
    """

    def __init__(self, packs: PackSet) -> None:
        self.packs = packs
        self.reference = ReferenceData()
        self._live: dict[str, LiveContext] = {}

    def observe(self, doc: Mapping[str, Any]) -> None:
        """Take in an event without evaluating it (its reference data, if any)."""
        ev = doc["event"]
        if ev["event_type"] in REFERENCE_TYPES:
            self.reference.apply(ev)

    def results(self, doc: Mapping[str, Any]) -> list[Any] | None:
        """The results of the event's plain conditions (None: a condition failed)."""
        self.observe(doc)
        ev = doc["event"]
        et = ev["event_type"]
        on = local_date(parse_time(ev["occurred_at"]))
        idx = self.packs.by_type.get(et)
        if idx is None:
            return []
        selected = idx.effective(on)
        if selected.combined is None:
            return []
        roots: dict[str, Any] = {"event": ev, "before": doc.get("before"), "after": doc.get("after")}
        if idx.uses_ref:
            roots["ref"] = {"vendor": self.reference.vendor_view(event_vendor(ev), on)}
        return run_plain(selected, live_context(self._live, et, idx.leaves, idx.functions).bind(roots))
