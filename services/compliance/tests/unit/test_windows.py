"""Windows read only the entries in range: checked against a brute-force scan of every entry."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from fundtrail_compliance.core.windows import WindowEntry, Windows

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def brute(entries: dict[str, WindowEntry], event_id: str, at: datetime, amount: int, days: int,
          bps: int | None) -> tuple[int, int, list[str]]:
    span = timedelta(days=days)
    hits = sorted(
        (e for e in entries.values()
         if e.event_id != event_id and at - span <= e.at <= at + span
         and (bps is None or abs(e.amount_fen - amount) * 10_000 <= amount * bps)),
        key=lambda e: (e.at, e.event_id),
    )
    return 1 + len(hits), amount + sum(e.amount_fen for e in hits), [e.event_id for e in hits]


@pytest.mark.parametrize("bps", [None, 0, 100, 2500])
def test_views_match_a_full_scan_out_of_order_with_redelivery_and_pruning(bps: int | None) -> None:
    rnd = random.Random(bps or 7)
    w = Windows()
    stored: dict[str, WindowEntry] = {}
    for i in range(600):
        eid = f"e{rnd.randrange(450)}"  # some ids come again: a redelivery must not count twice
        at = T0 + timedelta(days=rnd.randrange(200), seconds=rnd.randrange(86_400))
        amount = rnd.choice([10_000, 10_050, 9_990, 20_000, rnd.randrange(1, 50_000)])
        entry = stored.get(eid) or WindowEntry(eid, at, amount)
        expected = brute(stored, eid, entry.at, entry.amount_fen, 30, bps)
        view = w.observe("r", ("k",), entry, days=30, tolerance_bps=bps)
        assert (view.count, view.total_fen, view.event_ids) == expected
        stored[eid] = entry
        if i % 150 == 149:
            cutoff = T0 + timedelta(days=i // 150 * 20)
            gone = [k for k, e in stored.items() if e.at < cutoff]
            assert w.prune(cutoff) == len(gone)
            for k in gone:
                del stored[k]
    probe_at = T0 + timedelta(days=100)
    view = w.view("r", ("k",), event_id="probe", at=probe_at, amount_fen=10_000, days=45, tolerance_bps=bps)
    assert (view.count, view.total_fen, view.event_ids) == brute(stored, "probe", probe_at, 10_000, 45, bps)


def test_restored_entries_are_not_recorded_again_and_a_bucket_empties() -> None:
    w = Windows()
    w.load([("r", ("k",), WindowEntry("a", T0, 5)), ("r", ("k",), WindowEntry("a", T0, 5))])
    assert w.drain() == []
    assert w.view("r", ("k",), event_id="x", at=T0, amount_fen=5, days=1).count == 2
    assert w.prune(T0 + timedelta(days=1)) == 1
    assert w.entries == {}
