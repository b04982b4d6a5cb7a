"""A replay spread over processes by partition, with verdicts identical to the serial replay.

The enriched topic is keyed by fund, so every fund's events are on one partition and the state of a
fund (its book, timers, positions, refutable violations, events kept for re-judging) concerns its
partition only. Three kinds of state are not per fund, and each is kept identical to `replay.evaluate`
(one merged stream, one clock):

- The event-time clock: it is the maximum over *every* record read so far, and it decides when timers
  fire, what the sweeps forget and how far re-judging reaches. Every worker is handed, in the merged
  order, the `occurred_at` of each record it does not evaluate (a clock entry), so it observes the
  same clock at the same points as the serial replay would.
- Reference data (vendors), keyed by vendor on other partitions: every reference record goes to every
  worker, in the merged order (counted once, by the worker owning its partition).
- Windows (an owner's awards, a payee's payments) cross funds and so partitions: the window rules are
  judged by one more worker that reads every record of the event types they apply to (and the
  reference data and the clock), in the merged order: the serial pass for the cross-partition rules.
  The partition workers run every other rule. This is exact when the window rules read only the event,
  the reference data and their window (not the ledger state a fund's book may re-date, nor `deps`)
  and have no `refuted_by` (late evidence is awaited per fund); `split_packs` checks it, and a pack set
  that does not qualify is replayed serially.

One process (the caller's) reads the log once (`logreader`, merged on `sequence`) and routes framed
batches to the workers' stdin; each worker answers with its result as JSON on stdout. A log whose
funds are not each on one partition (so state would be split) is detected after the run (each worker
reports the funds it evaluated) and refused (`NotPartitionedByFund`; `fundtrail replay` then replays
it again as one stream).

Known differences from the serial replay, for records that cannot be evaluated only: such a record
still moves the clock of the workers it is a clock entry for, and its window rules are judged apart
from its other rules (the serial replay drops every verdict of a record on which the engine raised).
Positions are remembered per worker (a bound of `MAX_POSITIONS` each instead of in all).
"""

from __future__ import annotations

import os
import queue
import re
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from .core.evaluator import STATEFUL_ROOTS, PackSet
from .core.reference import REFERENCE_TYPES

FRAME_RECORDS = 2000
OWN, COPY, CLOCK = 0, 1, 2  # a record this worker evaluates and counts, evaluates only, or only its time
WINDOWS = "windows"  # the worker role judging the window rules

# The event is the first field of an enriched document (`EnrichedEvent`), and no ledger-state field
# bears these names: the first match is the event's own.
_OCCURRED = re.compile(rb'"occurred_at":\s*"([^"]+)"')
_TYPE = re.compile(rb'"event_type":\s*"([A-Za-z]+)"')


class NotPartitionedByFund(RuntimeError):
    """The log's funds are spread over several partitions: a partitioned replay would split their state."""


def window_types(packs: PackSet) -> frozenset[str] | None:
    """The event types the window rules apply to, when the window rules can be judged apart from the
    partitions (they read no ledger state and await no late evidence); None when they cannot."""
    types: set[str] = set()
    for r in packs.rules:
        if r.window is None:
            continue
        w = r.window
        exprs = [r.condition, *r.evidence.values(), *w.key, w.amount, *([w.include] if w.include else [])]
        if r.rule.refuted_by is not None or any(leaf.root in STATEFUL_ROOTS for e in exprs for leaf in e.leaves):
            return None
        types.update(r.rule.applies_to)
    return frozenset(types)


def split_packs(packs: PackSet, role: str) -> PackSet:
    """The rules a worker runs: the window rules (role `windows`), or every other rule."""
    windows = role == WINDOWS
    return PackSet(
        (p.model_copy(update={"rules": [r for r in p.rules if (r.kind == "window") == windows]}), p.department.value)
        for p in packs.packs
    )


# --- frames -----------------------------------------------------------------------------------


def _frame(kinds: bytearray, values: list[bytes]) -> bytes:
    n = len(values)
    return b"D" + struct.pack(f"<I{n}I", n, *map(len, values)) + bytes(kinds) + b"".join(values)


def _frames(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    while True:
        tag = stream.read(1)
        if tag != b"D":
            return
        (n,) = struct.unpack("<I", stream.read(4))
        sizes = struct.unpack(f"<{n}I", stream.read(4 * n))
        kinds = stream.read(n)
        view = memoryview(stream.read(sum(sizes)))
        offset = 0
        for kind, size in zip(kinds, sizes, strict=True):
            yield kind, bytes(view[offset: offset + size])
            offset += size


# --- the workers ------------------------------------------------------------------------------


def run_worker(
    entries: Iterable[tuple[int, bytes]], packs: PackSet, role: str, *, start: datetime | None,
    end: datetime | None, grace: timedelta,
) -> dict[str, Any]:
    """Evaluate a worker's entries as `replay.evaluate` would (pure: no I/O); the result as JSON-ready data."""
    from .core.engine import Engine
    from .core.helpers import parse_time
    from .replay import DUPLICATE, UNDECODABLE, ReplayResult, _new_event, collector_paused

    engine = Engine(packs, grace=grace)
    seen: set[str] = set()
    res = ReplayResult()  # the counts (violations are kept serialized, below)
    errors_by_rule: dict[str, int] = {}
    violations: dict[tuple[str, str], bytes] = {}
    funds: set[str] = set()
    windows = role == WINDOWS

    def keep(outcome: Any, count_errors: bool) -> None:
        if count_errors:
            for err in outcome.errors:
                res.errors += 1
                errors_by_rule[err.rule_ref] = errors_by_rule.get(err.rule_ref, 0) + 1
        for v in outcome.violations:
            if (start is None or v.occurred_at >= start) and (end is None or v.occurred_at < end):
                violations[(v.rule_id, str(v.triggering_event_id))] = v.model_dump_json().encode()

    with collector_paused():
        for n, (kind, value) in enumerate(entries, 1):
            if n % 1000 == 0:
                engine.state.discard_changes()
            if kind == CLOCK:
                keep(engine.advance(parse_time(value.decode())), True)
                continue
            own = kind == OWN
            doc = _new_event(value, seen)
            if isinstance(doc, str):
                if own:
                    res.undecodable += doc == UNDECODABLE
                    res.duplicates += doc == DUPLICATE
                continue
            res.events += own
            ev = doc.get("event")
            if own and isinstance(ev, dict) and ev.get("fund_doc_no") and ev.get("event_type") not in REFERENCE_TYPES:
                funds.add(str(ev["fund_doc_no"]))
            try:
                outcome = engine.process(doc, raw=value)
            except (KeyError, TypeError, ValueError):
                res.undecodable += own
                continue
            # A reference record's copy: its own verdicts count where it is owned, timers it made due here.
            keep(outcome, own or windows or any(packs.by_ref[e.rule_ref].rule.kind == "timer"
                                                for e in outcome.errors if e.rule_ref in packs.by_ref))
    return {
        "events": res.events, "duplicates": res.duplicates, "undecodable": res.undecodable, "errors": res.errors,
        "errors_by_rule": errors_by_rule, "funds": sorted(funds),
        "violations": b"[" + b",".join(violations.values()) + b"]",
    }


def _worker_main(argv: list[str]) -> int:
    """A worker process: packs dir, their fingerprint, role, grace days, range; frames on stdin."""
    from fundtrail_runtime.worker import tune_gc

    from .packs import load_dir
    from .replay import parse_bound

    packs_dir, fingerprint, role, grace_days, start, end = argv
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the answer
    tune_gc()
    packs = load_dir(Path(packs_dir))[1]
    if packs.fingerprint() != fingerprint:
        out.write(orjson.dumps({"error": f"the packs in {packs_dir} changed while the replay started"}))
        return 1
    result = run_worker(
        _frames(sys.stdin.buffer), split_packs(packs, role), role, start=parse_bound(start or None),
        end=parse_bound(end or None), grace=timedelta(days=int(grace_days)),
    )
    blob = result.pop("violations")
    out.write(orjson.dumps(result) + b"\n" + blob)
    out.close()
    return 0


# --- the router -------------------------------------------------------------------------------


def route(
    records: Iterable[tuple[int, bytes]], workers: int, types: frozenset[str],
) -> Iterator[tuple[list[tuple[bytearray, list[bytes]]], int]]:
    """Batches of entries per worker (the partition workers, then the window worker), in the merged
    order, and how many records they hold."""
    wid = workers  # the window worker's index
    batches = [(bytearray(), list[bytes]()) for _ in range(workers + 1)]
    n = 0
    for partition, value in records:
        m = _TYPE.search(value)
        et = m.group(1).decode() if m else ""
        owner = partition % workers
        if et in REFERENCE_TYPES:
            for i, (kinds, values) in enumerate(batches):
                kinds.append(OWN if i == owner else COPY)
                values.append(value)
        else:
            c = _OCCURRED.search(value)
            clock = c.group(1) if c else None
            for i, (kinds, values) in enumerate(batches):
                if i == owner:
                    kinds.append(OWN)
                    values.append(value)
                elif i == wid and et in types:
                    kinds.append(COPY)
                    values.append(value)
                elif clock is not None:
                    kinds.append(CLOCK)
                    values.append(clock)
        n += 1
        if n % FRAME_RECORDS == 0:
            yield batches, FRAME_RECORDS
            batches = [(bytearray(), list[bytes]()) for _ in range(workers + 1)]
    yield batches, n % FRAME_RECORDS


def evaluate_partitioned(
    records: Iterable[tuple[int, bytes]],
    packs: PackSet,
    packs_dir: Path,
    *,
    start: datetime | None,
    end: datetime | None,
    grace: timedelta,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> Any:
    """`replay.evaluate` over (partition, record) pairs in the merged order, in `workers` partition
    processes and one window process; the same ReplayResult."""
    from pydantic import TypeAdapter

    from fundtrail_schemas.events import ViolationRaised

    from .replay import ReplayResult

    violation_list = TypeAdapter(list[ViolationRaised])

    types = window_types(packs)
    if types is None:
        raise ValueError("the window rules read ledger state or await late evidence: replay serially")
    roles = [f"partitions-{i}" for i in range(workers)] + [WINDOWS]
    args = [str(packs_dir), packs.fingerprint(), "", str(grace.days),
            start.isoformat() if start else "", end.isoformat() if end else ""]
    procs = []
    for role in roles:
        args[2] = role
        procs.append(subprocess.Popen([sys.executable, "-m", __name__, *args], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, bufsize=1 << 20))
    answers: list[bytes] = [b""] * len(procs)

    def collect(i: int) -> None:  # read each answer as it comes: a worker never blocks on a full pipe
        stdout = procs[i].stdout
        assert stdout is not None
        answers[i] = stdout.read()

    # One writer thread per worker: a frame outgrows a pipe, and a blocking write to one worker would
    # otherwise hold the others idle (the workers would run in turn, not together).
    inboxes: list[queue.Queue[bytes | None]] = [queue.Queue(maxsize=4) for _ in procs]
    failed: list[BaseException] = []

    def feed(i: int) -> None:
        stdin = procs[i].stdin
        assert stdin is not None
        try:
            while (frame := inboxes[i].get()) is not None:
                stdin.write(frame)
            stdin.write(b"X")
            stdin.close()
        except BaseException as exc:  # the worker died: its answer says why
            failed.append(exc)
            while inboxes[i].get() is not None:
                pass

    readers = [threading.Thread(target=collect, args=(i,), daemon=True) for i in range(len(procs))]
    writers = [threading.Thread(target=feed, args=(i,), daemon=True) for i in range(len(procs))]
    for t in (*readers, *writers):
        t.start()
    try:
        try:
            for batches, n in route(records, workers, types):
                for inbox, (kinds, values) in zip(inboxes, batches, strict=True):
                    if values:
                        inbox.put(_frame(kinds, values))
                if progress is not None:
                    progress(n)
        finally:
            for inbox in inboxes:
                inbox.put(None)
        for t in (*writers, *readers):
            t.join()
        for proc in procs:
            proc.wait()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    res = ReplayResult()
    owners: dict[str, int] = {}
    for i, (proc, answer) in enumerate(zip(procs, answers, strict=True)):
        head, _, blob = answer.partition(b"\n")
        if proc.returncode != 0 or not head:
            raise RuntimeError(f"replay worker {roles[i]} failed ({proc.returncode}): {head[-2000:].decode()}")
        got = orjson.loads(head)
        res.events += got["events"]
        res.duplicates += got["duplicates"]
        res.undecodable += got["undecodable"]
        res.errors += got["errors"]
        res.errors_by_rule.update(got["errors_by_rule"])
        for fund in got["funds"]:
            if owners.setdefault(fund, i) != i:
                raise NotPartitionedByFund(
                    f"fund {fund} was read from partitions of two workers: the log is not keyed by fund"
                )
        for v in violation_list.validate_json(blob):
            res.violations[(v.rule_id, str(v.triggering_event_id))] = v
    return res


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
