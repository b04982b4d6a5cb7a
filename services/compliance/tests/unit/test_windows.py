"""Windows read only the entries in range: checked against a brute-force scan of every entry."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from fundtrail_compliance.core.windows import WindowEntry, Windows

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def brute(entries: dict[str, WindowEntry], entry: WindowEntry, days: int, reach: int,
          bps: int | None) -> tuple[tuple[int, int, list[str]], list[str]]:
    """The event-time window of `entry` (itself and the entries ordered before it within `days`, within
    the tolerance) and the entries ordered after it within `reach` days, by scanning every entry."""
    span, me = timedelta(days=days), (entry.at, entry.event_id)
    hits = sorted(
        (e for e in entries.values()
         if (e.at, e.event_id) < me and entry.at - span <= e.at
         and (bps is None or abs(e.amount_fen - entry.amount_fen) * 10_000 <= entry.amount_fen * bps)),
        key=lambda e: (e.at, e.event_id),
    )
    reach_to = entry.at + timedelta(days=reach)
    later = sorted((e for e in entries.values() if (e.at, e.event_id) > me and e.at <= reach_to),
                   key=lambda e: (e.at, e.event_id))
    return (1 + len(hits), entry.amount_fen + sum(e.amount_fen for e in hits), [e.event_id for e in hits]), [
        e.event_id for e in later]


@pytest.mark.parametrize("bps", [None, 0, 100, 2500])
@pytest.mark.parametrize("in_order", [True, False])
def test_placing_matches_a_full_scan_in_any_order_with_redelivery_and_pruning(bps: int | None, in_order: bool) -> None:
    rnd = random.Random((bps or 7) + in_order)
    w = Windows()
    stored: dict[str, WindowEntry] = {}
    placed_ids: list[str] = []
    for i in range(600):
        eid = f"e{rnd.randrange(450)}"  # some ids come again: a redelivery must not count twice
        at = (T0 + timedelta(hours=8 * i, seconds=rnd.randrange(3_600)) if in_order  # the fast path
              else T0 + timedelta(days=rnd.randrange(200), seconds=rnd.randrange(86_400)))
        amount = rnd.choice([10_000, 10_050, 9_990, 20_000, rnd.randrange(1, 50_000)])
        entry = stored.get(eid) or WindowEntry(eid, at, amount)
        expected = brute(stored, entry, 30, 45, bps)
        placed = w.place("r", ("k",), entry, days=30, tolerance_bps=bps, reach=45)
        if eid in stored:
            assert placed is None
        else:
            assert placed is not None
            view, later = placed
            placed_ids.append(eid)
            assert ((view.count, view.total_fen, view.event_ids), [e.event_id for e in later]) == expected
        stored[eid] = entry
        assert w.earlier("r", ("k",), entry, days=30, tolerance_bps=bps).event_ids == brute(
            {k: e for k, e in stored.items() if k != eid}, entry, 30, 45, bps)[0][2]
        if i % 150 == 149:
            cutoff = min(e.at for e in stored.values()) + timedelta(days=20)
            gone = [k for k, e in stored.items() if e.at < cutoff]
            assert w.prune(cutoff) == len(gone)
            for k in gone:
                del stored[k]
    assert [e.event_id for _, _, e in w.drain()] == placed_ids  # each new entry recorded once, for persistence


def test_restored_entries_are_not_recorded_again_and_a_bucket_empties() -> None:
    w = Windows()
    w.load([("r", ("k",), WindowEntry("a", T0, 5)), ("r", ("k",), WindowEntry("a", T0, 5))])
    assert w.drain() == []
    view = w.earlier("r", ("k",), WindowEntry("x", T0 + timedelta(hours=1), 5), days=1)
    assert (view.count, view.event_ids) == (2, ["a"])
    assert w.prune(T0 + timedelta(days=1)) == 1
    assert w.entries == {}
