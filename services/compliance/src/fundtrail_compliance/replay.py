"""Replay / backtest: re-evaluate history from the Kafka log under candidate packs, diff the verdicts.

The enriched topic is read by throw-away consumers (no group, no commits), one per partition,
merged in fund-tracker's acceptance order (`sequence`). Every event from the start of the log is
evaluated, so windows, timers and reference data are rebuilt in memory exactly as they were live;
only violations whose event time falls in [start, end) are compared with the `violation` table.
Nothing is published and nothing is written.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from fundtrail_schemas.events import ViolationRaised

from .core.engine import COMPUTE, Engine, PlainConditions
from .core.evaluator import PackSet
from .core.helpers import parse_time

if TYPE_CHECKING:
    from .adapters.postgres import Verdict


@dataclass
class ReplayResult:
    events: int = 0
    duplicates: int = 0
    undecodable: int = 0
    errors: int = 0
    violations: dict[tuple[str, str], ViolationRaised] = field(default_factory=dict)
    errors_by_rule: Counter[str] = field(default_factory=Counter)




class Prejudge:
    """The reader process's share of a parallel replay (`logreader.read_log_prejudged`).

    Records are decoded and deduplicated as `evaluate` does, and every reference event is applied,
    so the plain conditions see what the engine would. For the records it is asked to evaluate the
    verdict is b"0" (none fired), b"!" (one failed: the engine runs them one by one to say which)
    or the JSON list of results; b"" leaves the record to the engine.
    """

    def __init__(self, packs: PackSet) -> None:
        self.conditions = PlainConditions(packs)
        self.seen: set[str] = set()

    def __call__(self, value: bytes, evaluate: bool) -> bytes:
        doc = _new_event(value, self.seen)
        if isinstance(doc, str):
            return b""
        try:
            if not evaluate:
                self.conditions.observe(doc)
                return b""
            results = self.conditions.results(doc)
        except (KeyError, TypeError, ValueError):
            return b""  # the engine says what is wrong with it
        if results is None:
            return b"!"
        if all(r is False for r in results):
            return b"0"
        try:
            return orjson.dumps(results)
        except TypeError:
            return b"!"


UNDECODABLE, DUPLICATE = "undecodable", "duplicate"


def _new_event(value: bytes, seen: set[str]) -> dict[str, Any] | str:
    """The decoded record, if its event id is new (noted in `seen`); else UNDECODABLE or DUPLICATE.
    The replay and its reader process must skip exactly the same records."""
    try:
        doc = orjson.loads(value)
        eid = str(doc["event"]["event_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return UNDECODABLE
    if eid in seen:
        return DUPLICATE
    seen.add(eid)
    return doc


def _plain_results(verdict: bytes) -> Any:
    if not verdict:
        return COMPUTE
    if verdict == b"0":
        return ()
    if verdict == b"!":
        return None
    return orjson.loads(verdict)


def evaluate(
    values: Iterator[bytes] | Iterator[tuple[bytes, bytes]],
    packs: PackSet,
    *,
    start: datetime | None,
    end: datetime | None,
    grace: timedelta,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Evaluate every record with in-memory state; keep the violations that occurred in [start, end).

    `values` are records, or (record, verdict) pairs from `read_log_prejudged` (see `Prejudge`)."""
    engine = Engine(packs, grace=grace)
    seen: set[str] = set()
    res = ReplayResult()
    with collector_paused():
        n = 0
        for n, item in enumerate(values, 1):
            if n % 1000 == 0:
                engine.state.discard_changes()
                if progress is not None:
                    progress(1000)
            plain = COMPUTE
            if isinstance(item, tuple):
                value, verdict = item
                plain = _plain_results(verdict)
            else:
                value = item
            doc = _new_event(value, seen)
            if isinstance(doc, str):
                if doc == UNDECODABLE:
                    res.undecodable += 1
                else:
                    res.duplicates += 1
                continue
            res.events += 1
            try:
                outcome = engine.process(doc, plain_results=plain, raw=value)
            except (KeyError, TypeError, ValueError):
                res.undecodable += 1
                continue
            for err in outcome.errors:
                res.errors += 1
                res.errors_by_rule[err.rule_ref] += 1
            for v in outcome.violations:
                if (start is None or v.occurred_at >= start) and (end is None or v.occurred_at < end):
                    res.violations[(v.rule_id, str(v.triggering_event_id))] = v
        if progress is not None:
            progress(n % 1000)
    return res


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off for a replay loop: evaluation makes next to no cyclic garbage
    (measured: ~160 objects in 100,000 events), so collecting would only keep walking the growing
    state (windows, violations; ~3 % of a serial replay)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def recorded_verdicts(database_url: str, start: datetime | None, end: datetime | None) -> list[Verdict]:
    """The verdicts actually given (the `violation` table) for events that occurred in [start, end)."""
    import psycopg  # here, not at the top: the replay's reader process imports this module

    from .adapters.postgres import Verdict, conninfo

    with psycopg.connect(conninfo(database_url)) as conn:
        rows = conn.execute(
            "SELECT violation_id, rule_id, rule_version, triggering_event_id, severity, status, occurred_at, evidence"
            " FROM violation WHERE (%s::timestamptz IS NULL OR occurred_at >= %s)"
            " AND (%s::timestamptz IS NULL OR occurred_at < %s)",
            (start, start, end, end),
        ).fetchall()
    return [Verdict(*r) for r in rows]


def _comparable(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, ensure_ascii=False, default=str)


def diff(candidate: dict[tuple[str, str], ViolationRaised], actual: list[Verdict], examples: int = 3) -> dict[str, Any]:
    """New, vanished and changed violations per rule, with a few examples of each."""
    recorded = {(v.rule_id, str(v.triggering_event_id)): v for v in actual}
    per_rule: dict[str, Counter[str]] = {}
    samples: dict[str, list[dict[str, Any]]] = {"new": [], "vanished": [], "changed": []}

    def count(rule: str, kind: str) -> None:
        per_rule.setdefault(rule, Counter())[kind] += 1

    for key, v in sorted(candidate.items()):
        old = recorded.get(key)
        if old is None:
            count(v.rule_id, "new")
            if len(samples["new"]) < examples * 10:
                samples["new"].append({"rule": f"{v.rule_id}@{v.rule_version}", "triggering_event_id": key[1],
                                       "explanation_en": v.explanation_en})
            continue
        changes = []
        if old.rule_version != v.rule_version:
            changes.append(f"version {old.rule_version} → {v.rule_version}")
        if old.severity != v.severity.value:
            changes.append(f"severity {old.severity} → {v.severity.value}")
        if _comparable(old.evidence.get("values", {})) != _comparable(v.evidence.model_dump(mode="json")["values"]):
            changes.append("evidence")
        if changes:
            count(v.rule_id, "changed")
            if len(samples["changed"]) < examples * 10:
                samples["changed"].append({"rule": v.rule_id, "triggering_event_id": key[1],
                                           "violation_id": str(old.violation_id), "changes": changes})
        else:
            count(v.rule_id, "unchanged")
    for key, old in sorted(recorded.items()):
        if key not in candidate:
            count(old.rule_id, "vanished")
            if len(samples["vanished"]) < examples * 10:
                samples["vanished"].append({"rule": f"{old.rule_id}@{old.rule_version}", "triggering_event_id": key[1],
                                            "violation_id": str(old.violation_id), "status": old.status})
    totals = Counter[str]()
    for c in per_rule.values():
        totals.update(c)
    return {
        "totals": {k: totals.get(k, 0) for k in ("new", "vanished", "changed", "unchanged")},
        "per_rule": {r: {k: c.get(k, 0) for k in ("new", "vanished", "changed", "unchanged")}
                     for r, c in sorted(per_rule.items())},
        "examples": {k: _per_rule_examples(v, examples) for k, v in samples.items()},
    }


def _per_rule_examples(items: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    out, seen = [], Counter[str]()
    for it in items:
        rule = it["rule"].split("@")[0]
        if seen[rule] < n:
            seen[rule] += 1
            out.append(it)
    return out


def parse_bound(text: str | None) -> datetime | None:
    """A --from/--to bound: an ISO date (Asia/Shanghai midnight) or timestamp."""
    if not text:
        return None
    if len(text) == 10:
        from .core.helpers import LOCAL_TZ

        return datetime.fromisoformat(text).replace(tzinfo=LOCAL_TZ)
    return parse_time(text)


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
