"""Kill -9 the worker three times while 50,000 events flow: every event exactly once, every balance exact."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fundtrail_runtime.trail_nodes import TrailNodeStore, psycopg_rows
from fundtrail_tracker.synthetic import encode, generate, key_of
from fundtrail_verify import merkle

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 50_000
KILLS = 3


def expected_figures(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The ledger's sums computed straight from the published events (independently of the tracker's code)."""
    pos: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # recv, down, paid, ret, contr
    vendors: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # awards, awarded, paid
    projects: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # paid, contracted
    payments = 0
    for e in events:
        t, f = e["event_type"], e["fund_doc_no"]
        own = (f, e["level"], e["region_code"])
        if t == "FundAllocated":
            pos[own][0] += e["amount_fen"]
            pos[own][1] += e["amount_fen"]
            pos[(f, e["recipient_level"], e["recipient_region_code"])][0] += e["amount_fen"]
        elif t == "FundTransferred":
            pos[own][1] += e["amount_fen"]
            pos[(f, e["to_level"], e["to_region_code"])][0] += e["amount_fen"]
        elif t == "FundReturned":
            pos[own][3] += e["amount_fen"]
            pos[(f, e["to_level"], e["to_region_code"])][0] += e["amount_fen"]
        elif t == "PaymentDisbursed":
            payments += 1
            pos[own][2] += e["amount_fen"]
            vendors[e["payee_vendor_id"]][2] += e["amount_fen"]
            projects[e["project_id"]][0] += e["amount_fen"]
        elif t == "ContractSigned":
            pos[own][4] += e["amount_fen"]
            projects[e["project_id"]][1] += e["amount_fen"]
        elif t == "ContractAmended" and e["approved"]:
            pos[own][4] += e["delta_fen"]
            projects[e["project_id"]][1] += e["delta_fen"]
        elif t == "ProcurementAwarded":
            vendors[e["winner_vendor_id"]][0] += 1
            vendors[e["winner_vendor_id"]][1] += e["amount_fen"]
    return {
        "positions": {k: tuple(v) for k, v in pos.items()},
        "vendors": {k: tuple(v) for k, v in vendors.items()},
        "projects": {k: tuple(v) for k, v in projects.items()},
        "payments": payments,
    }


def test_kill9_three_times_while_50000_events_flow(
    migrated_database_url: str, scenario_factory: Any, workers: Any, kafka_tools: Any
) -> None:
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    s = scenario_factory(migrated_database_url)
    events = generate(N, seed=seed, start=datetime.now(UTC) - timedelta(days=30))
    expected = expected_figures(events)
    worker = workers(s)

    def publish() -> None:
        prod = kafka_tools.producer(s.bootstrap)
        for e in events:
            prod.send(s.topics.raw, key=key_of(e), value=encode(e))
        prod.flush()
        prod.close()

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    # Progress is the trail's last sequence number (an index lookup); count(*) would scan the table
    # every poll and compete with the worker for the CPU.
    count = lambda: s.scalar("SELECT coalesce(max(seq) + 1, 0) FROM trail_entry")  # noqa: E731
    # Kill points spread over the run, each at a random moment inside whatever batch is in flight.
    points = sorted(rng.uniform(0.1, 0.8) * N for _ in range(KILLS))
    killed_at = []
    for point in points:
        kafka_tools.wait_until(lambda p=point: count() >= p, 240, what=f"{point:.0f} events (seed {seed})",
                               alive=worker)
        time.sleep(rng.uniform(0.0, 0.6))
        killed_at.append(count())
        worker.kill9()
        worker.start()
    publisher.join(timeout=240)
    assert not publisher.is_alive()
    kafka_tools.wait_until(lambda: count() >= N, 300, poll=1.0, what=f"all {N} events (seed {seed}, kills at "
                           f"{killed_at})", alive=worker)
    kafka_tools.wait_until(lambda: kafka_tools.consumer_lag(s.bootstrap, s.group(), s.topics.raw) == 0, 60,
                           what="consumer lag 0", alive=worker)

    with s.db() as conn:
        # Exactly once: every event accepted once, one trail leaf each, a gapless sequence.
        assert conn.execute("SELECT count(*), count(DISTINCT event_id) FROM processed_event").fetchone() == (N, N)
        assert conn.execute("SELECT count(*), min(seq), max(seq) FROM trail_entry").fetchone() == (N, 0, N - 1)
        assert conn.execute("SELECT count(*) FROM trail_entry WHERE entry_id NOT IN"
                            " (SELECT event_id FROM processed_event)").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM processed_event p JOIN trail_entry t ON t.entry_id = p.event_id"
                            " WHERE t.seq <> p.sequence").fetchone() == (0,)
        # The stored subtree hashes survived the kills: one per completed subtree, agreeing with the leaves.
        assert conn.execute("SELECT count(*) FROM trail_node").fetchone() == (sum(N >> lv for lv in range(17)),)
        leaves = [merkle.leaf_hash(bytes(r[0])) for r in conn.execute("SELECT leaf_data FROM trail_entry ORDER BY seq")]
        assert merkle.root_from_store(TrailNodeStore(psycopg_rows(conn)), N) == merkle.root_from_leaf_hashes(leaves)
        # No effect applied twice: payments, positions, vendors and projects exact to the fen.
        assert conn.execute("SELECT count(*) FROM payment").fetchone() == (expected["payments"],)
        positions = {
            (r[0], r[1], r[2]): tuple(r[3:]) for r in conn.execute(
                "SELECT fund_doc_no, level, region_code, received_fen, passed_down_fen, paid_fen, returned_fen,"
                " contracted_fen FROM fund_position")
        }
        assert positions == expected["positions"]
        vendors = {r[0]: tuple(r[1:]) for r in conn.execute(
            "SELECT vendor_id, awards_count, awarded_fen, paid_fen FROM vendor_stats")}
        assert vendors == expected["vendors"]
        projects = {r[0]: ((r[1]["paid_fen"]), r[1]["contracted_fen"]) for r in conn.execute(
            "SELECT project_id, state FROM project")}
        assert projects == expected["projects"]
        assert conn.execute("SELECT count(*) FROM parked_event").fetchone() == (0,)

    # Outputs are at least once: every event's enriched record is on the topic (a kill may repeat some).
    ids = set()
    for record in kafka_tools.read_topic(s.bootstrap, s.topics.enriched, timeout=120):
        ids.add(uuid.UUID(record.value[22:58].decode()))  # {"event":{"event_id":"<uuid>",...
    assert ids == {uuid.UUID(e["event_id"]) for e in events}
    assert kafka_tools.read_topic(s.bootstrap, s.topics.dead_letters) == []
    assert worker.starts == KILLS + 1
