"""Replica equality on the real broker: one compliance worker against three in one consumer group,
one of the three killed with SIGKILL mid-stream and restarted.

One broker, one fund-tracker and one enriched topic: group A (one worker, database A) and group B
(three workers, database B) both read the whole topic. A demo year subset (the generator seeds a
violation of every rule) is published through the tracker. Both databases must end with the same
violations (ids, rule ids, statuses) and the same timer outcomes, window rules included (each window
is judged by the replica owning its partition of the repartition topic, in event time: docs/scaling.md
§1), except idle-funds checks refuted by late evidence (`_verdicts`).
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from fundtrail_devstack._util import free_port
from fundtrail_devstack.run import write_demo
from fundtrail_devstack.stack import ServiceProcess, Stack, publish_file
from fundtrail_devstack.testing import PostgresServer, dedicated_test_kafka
from fundtrail_runtime.db import sync_engine, upgrade

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SEED, SIZE = 11, 0.1
WINDOW_RULES = ("trading.split_purchase", "trading.split_tender", "finance.similar_payment_review")


def _rows(url: str, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params or {}).all())
    finally:
        engine.dispose()


def _count(url: str, sql: str) -> int:
    return int(_rows(url, sql)[0][0])


def _wait(what: str, probe: Any, timeout: float, detail: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            more = f": {detail()}" if detail else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{more}")
        time.sleep(1.0)


def _verdicts(url: str) -> set[tuple[str, str, str]]:
    """Violations compared, with one equivalence: an idle-funds check refuted by late evidence counts
    as one that did not fire. Each replica fires a fund's check on the watermark of its own partitions
    (ahead of one worker's minimum over all six), so it may fire before an earlier-dated outflow of
    that fund is read and be resolved by it, where one worker read the outflow first and raised
    nothing. Checks that would wait for the grace period before firing would remove the difference."""
    rows = _rows(url, "SELECT violation_id::text, rule_id, status FROM violation")
    return {(r[0], r[1], r[2]) for r in rows
            if (r[1], r[2]) != ("audit.idle_funds", "resolved")}


def _timers(url: str) -> set[tuple[str, str]]:
    return {(r[0], r[1]) for r in _rows(url, "SELECT timer_id::text, status FROM compliance_timer")}


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def test_three_workers_with_a_crash_judge_as_one(
    pg_node: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = Path(tmp_path_factory.mktemp("replicas"))
    tag = uuid.uuid4().hex[:8]
    with dedicated_test_kafka(home / "kafka") as bootstrap:
        db_a = pg_node.create_database(f"ra_{tag}")
        db_b = pg_node.create_database(f"rb_{tag}")
        stack = Stack(home=home / "stack", bootstrap=bootstrap, database_url=db_a, group_suffix=f"-ra-{tag}")
        stack.prepare()
        upgrade(db_b)
        base = stack.service_env("compliance")

        def worker_b(n: int) -> ServiceProcess:
            port = free_port()
            env = {**base, "DATABASE_URL": db_b, "FUNDTRAIL_COMPLIANCE_APP_ID": f"fundtrail-compliance-rb-{tag}",
                   "FUNDTRAIL_COMPLIANCE_METRICS_PORT": str(port),
                   "FUNDTRAIL_COMPLIANCE_DATA_DIR": str(home / f"b{n}-{time.monotonic_ns()}")}
            return ServiceProcess(f"compliance-b{n}", stack.process("compliance").argv, env,
                                  home / "logs" / f"compliance-b{n}.log")

        def start(w: ServiceProcess) -> ServiceProcess:
            w.start()
            port = int(w.env["FUNDTRAIL_COMPLIANCE_METRICS_PORT"])
            _wait(f"{w.name} to serve metrics", lambda: _ready(port) or not w.alive(), 180)
            assert w.alive(), w.tail()
            return w

        workers: list[ServiceProcess] = []
        stack.start(("fund-tracker", "compliance"))
        try:
            stack.wait_ready(timeout=180)
            workers = [start(worker_b(n)) for n in range(3)]

            work = home / "demo"
            path = work / "demo.jsonl"
            total, _ = write_demo(path, SEED, SIZE)
            lines = path.read_text(encoding="utf-8").splitlines()
            ref_types = ('"event_type":"VendorRegistered"', '"event_type":"VendorDebarred"',
                         '"event_type":"RelationDeclared"')
            reference = [line for line in lines if any(t in line for t in ref_types)]
            refs = set(reference)
            transactions = [x for x in lines if x not in refs]
            half = len(transactions) // 2
            (work / "reference.jsonl").write_text("\n".join(reference) + "\n", encoding="utf-8")
            (work / "first.jsonl").write_text("\n".join(transactions[:half]) + "\n", encoding="utf-8")
            (work / "second.jsonl").write_text("\n".join(transactions[half:]) + "\n", encoding="utf-8")
            processed_b = "SELECT count(DISTINCT event_id) FROM compliance_processed"
            for name, count in (("reference.jsonl", len(reference)), ("first.jsonl", len(reference) + half)):
                result = publish_file(work / name, bootstrap, work / "publisher")
                assert result.returncode == 0, result.stdout + result.stderr
                _wait(f"{name} judged by group B", lambda count=count: _count(db_b, processed_b) >= count, 600)
            # The second half is published while one of group B's workers is killed and restarted.
            done: list[Any] = []
            publisher = threading.Thread(target=lambda: done.append(
                publish_file(work / "second.jsonl", bootstrap, work / "publisher")))
            publisher.start()
            before = _count(db_b, processed_b)
            _wait("the second half to reach group B", lambda: _count(db_b, processed_b) > before, 300)
            workers[1].kill9()  # mid-stream: its partitions move, its uncommitted batch is read again
            at_kill = _count(db_b, processed_b)
            workers[1] = start(worker_b(1))
            publisher.join(600)
            assert done and done[0].returncode == 0, done

            _wait(f"{total} events recorded by fund-tracker", lambda: _count(
                db_a, "SELECT count(*) FROM processed_event") >= total, 600)
            accepted = _count(db_a, "SELECT count(*) FROM processed_event")
            for url in (db_a, db_b):
                _wait("every event judged", lambda url=url: _count(url, processed_b) >= accepted, 600,
                      lambda url=url: f"{_count(url, processed_b)} of {accepted}")
            # Timers fire once every partition is idle (10 s) past their due time: both must agree,
            # and keep agreeing for longer than that, so a state both merely pass through is not taken.
            agreed: list[float] = []

            def settled() -> bool:
                same = _verdicts(db_a) == _verdicts(db_b) and _timers(db_a) == _timers(db_b)
                agreed[:] = (agreed or [time.monotonic()]) if same else []
                return bool(agreed) and time.monotonic() - agreed[0] > 20

            _wait("the same violations and timer outcomes", settled, 300, lambda: (
                sorted(_verdicts(db_a) ^ _verdicts(db_b))[:10], len(_timers(db_a) ^ _timers(db_b))))
        finally:
            for w in workers:
                w.stop()
            codes = stack.stop()
        crashed = {n: c for n, c in codes.items() if c not in (0, -15, None)}
        assert not crashed, f"services exited abnormally: {crashed}"

    a, b = _verdicts(db_a), _verdicts(db_b)
    assert a == b, (sorted(a - b)[:10], sorted(b - a)[:10])
    windows = {url: _rows(url, "SELECT rule_id, count(*) FROM violation WHERE rule_id = ANY(:r) GROUP BY rule_id",
                          {"r": list(WINDOW_RULES)}) for url in (db_a, db_b)}
    print(f"\nreplicas: {accepted} events, group B killed at {at_kill}; {len(a)} violations of "
          f"{len({r for _, r, _ in a})} rules and {len(_timers(db_a))} timers equal; window rules one worker "
          f"{sorted(windows[db_a])}, three {sorted(windows[db_b])}")
    assert len({r for _, r, _ in a}) >= 15  # the subset raises most rules, not a trivial few
    assert any(r == "audit.idle_funds" for _, r, _ in a) and _timers(db_a) == _timers(db_b)
    # The demo seeds every window rule: they are compared above, not left out.
    assert {r for _, r, _ in a} >= set(WINDOW_RULES), sorted(windows[db_a])
