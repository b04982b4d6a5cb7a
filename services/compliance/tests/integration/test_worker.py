"""The worker against the real broker and database: violations out, redelivery, timers across a
restart, broken packs, case actions, late evidence, and the replay diff.

One worker process (python -m fundtrail_compliance worker) serves the module; the tests run in
file order and the timer test restarts it. Events are dated 2031 with fresh ids, so events other
tests leave on the shared broker neither collide with nor move the clock past these.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import psycopg
import pytest
import yaml

from fundtrail_compliance import scenario as sc
from fundtrail_compliance.adapters.postgres import conninfo
from fundtrail_compliance.core.helpers import parse_time
from fundtrail_schemas.events import ViolationAcknowledged, ViolationRectified
from fundtrail_schemas.topics import CASES, ENRICHED_EVENTS, RULE_PACKS, VIOLATIONS, VIOLATIONS_DLQ, department_topic

RULEPACK_DIR = Path(__file__).resolve().parents[2] / "rulepacks"

pytestmark = pytest.mark.integration
T = TypeVar("T")
G = sc.golden()
YEAR = "2031"
FUND = f"江财农〔{YEAR}〕{uuid.uuid4().hex[:6]}号"


def fresh(ev: dict[str, Any], *, days: int = 0, **changes: Any) -> dict[str, Any]:
    """A copy of a golden event with a new id, moved to 2031 (+days) and onto this module's fund."""
    out = dict(ev, event_id=str(uuid.uuid4()), **changes)
    for f in ("occurred_at", "published_at"):
        out[f] = sc.shift(YEAR + ev[f][4:], days=days)
    if out.get("fund_doc_no"):
        out["fund_doc_no"] = FUND
    return out


def enriched(ev: dict[str, Any], before: dict[str, Any] | None = None, after: dict[str, Any] | None = None):
    doc = sc.enriched(ev)
    for part, value in (("before", before), ("after", after)):
        if value is not None:
            doc[part] = value
    for state in (doc["before"], doc["after"]):
        for name in ("fund", "position", "counterparty"):
            if state.get(name):
                state[name] = {**state[name], "fund_doc_no": FUND}
        if state.get("contract") and ev.get("contract_id"):
            state["contract"] = {**state["contract"], "contract_id": ev["contract_id"]}
    return doc


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll a condition until it holds (the worker is asynchronous); fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo(url)) as conn:
        return conn.execute(sql, params).fetchall()


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value in records:
            producer.send(topic, value, key=key)
        producer.flush()
    finally:
        producer.close()


def produce_to(bootstrap: str, topic: str, partition: int, docs: list[dict[str, Any]]) -> None:
    """Enriched documents onto one partition, in order."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    try:
        for d in docs:
            producer.send(topic, orjson.dumps(d), key=FUND.encode(), partition=partition)
        producer.flush()
    finally:
        producer.close()


def send_enriched(bootstrap: str, *docs: dict[str, Any]) -> None:
    produce(bootstrap, ENRICHED_EVENTS, [(FUND.encode(), orjson.dumps(d)) for d in docs])


def messages(bootstrap: str, topic: str) -> list[Any]:
    """Every record of a topic (throw-away consumer, up to the current end)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for recs in consumer.poll(timeout_ms=500).values():
                out.extend(recs)
        return out
    finally:
        consumer.close()


def violations_on(bootstrap: str, topic: str, trigger: str) -> list[Any]:
    return [m for m in messages(bootstrap, topic) if json.loads(m.value)["triggering_event_id"] == trigger]


class WorkerProcess:
    """`python -m fundtrail_compliance worker` as a child process, stopped by its pid."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, database_url: str) -> None:
        before = len(query(database_url, "SELECT 1 FROM rule_pack_load WHERE status = 'accepted'"))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fundtrail_compliance", "worker"], env=self.env, stdout=out,
                stderr=subprocess.STDOUT, cwd=self.env["FUNDTRAIL_COMPLIANCE_DATA_DIR"],
            )
        wait_for("the worker to start", lambda: self._alive() and len(
            query(database_url, "SELECT 1 FROM rule_pack_load WHERE status = 'accepted'")) >= before + 9, 90)

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
        return True

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def module_db(pg_node: Any, migrated_template: str) -> Iterator[str]:
    name = f"c_{uuid.uuid4().hex}"
    admin = pg_node.url("postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    try:
        yield pg_node.url(name)
    finally:
        with contextlib.suppress(Exception):
            pg_node.drop_database(name, force=True)


@pytest.fixture(scope="module")
def packs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("packs") / "rulepacks"
    shutil.copytree(RULEPACK_DIR, target)
    return target


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, module_db: str, packs_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    data = tmp_path_factory.mktemp("compliance-data")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": module_db,
        "FUNDTRAIL_COMPLIANCE_APP_ID": f"compliance-test-{uuid.uuid4().hex[:8]}",
        "FUNDTRAIL_COMPLIANCE_RULEPACK_DIR": str(packs_dir),
        "FUNDTRAIL_COMPLIANCE_DATA_DIR": str(data),
        "FUNDTRAIL_COMPLIANCE_BATCH_TIMEOUT": "0.05",
        "FUNDTRAIL_COMPLIANCE_TICK_SECONDS": "0.5",
        "FUNDTRAIL_COMPLIANCE_IDLE_AFTER": "1",
        "FUNDTRAIL_COMPLIANCE_LOG_LEVEL": "warning",
    }
    w = WorkerProcess(env, data / "worker.log")
    w.start(module_db)
    try:
        yield w
    finally:
        w.stop()


def _violation_rows(url: str, trigger: str) -> list[tuple[Any, ...]]:
    return query(url, "SELECT violation_id, rule_id, status FROM violation WHERE triggering_event_id = %s",
                 uuid.UUID(trigger))


PAY = G["PaymentDisbursed"]


def payment(days: int, **changes: Any) -> dict[str, Any]:
    """A payment to a payee and under a contract of its own (so no two tests' payments look alike to
    the review window, nor add up on one contract: the engine sums a fund's payments by date)."""
    changes.setdefault("contract_id", f"HT-{uuid.uuid4().hex[:12]}")
    return fresh(PAY, days=days, payee_account=f"6222-{uuid.uuid4().hex[:12]}", **changes)


def test_violations_reach_both_topics_and_the_database(worker, kafka_bootstrap: str, module_db: str) -> None:
    ev = payment(0, handler_id=PAY["approver_id"])
    send_enriched(kafka_bootstrap, enriched(ev))
    rows = wait_for("the violation row", lambda: _violation_rows(module_db, ev["event_id"]))
    assert [(r[1], r[2]) for r in rows] == [("inspection.same_handler_approver", "raised")]
    on_all = wait_for("the all-violations topic", lambda: violations_on(kafka_bootstrap, VIOLATIONS, ev["event_id"]))
    on_dept = violations_on(kafka_bootstrap, department_topic("inspection"), ev["event_id"])
    assert len(on_all) == 1 and len(on_dept) == 1
    assert on_all[0].key == FUND.encode() and on_all[0].value == on_dept[0].value
    body = json.loads(on_all[0].value)
    assert body["violation_id"] == str(rows[0][0]) and body["rule_version"] == 1
    assert "STAFF-101-02" in body["explanation_zh"] and body["legal_basis"]
    assert query(module_db, "SELECT violations FROM compliance_processed WHERE event_id = %s",
                 uuid.UUID(ev["event_id"])) == [(1,)]


def test_violations_continue_the_trace_of_their_event_when_nothing_exports(
    worker, kafka_bootstrap: str, module_db: str
) -> None:
    # The worker runs without OTEL_* variables: no span is recorded, but the trace goes on.
    from kafka import KafkaProducer

    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    ev = payment(0, handler_id=PAY["approver_id"])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        producer.send(ENRICHED_EVENTS, orjson.dumps(enriched(ev)), key=FUND.encode(),
                      headers=[("traceparent", f"00-{trace_id}-{parent}-01".encode())])
        producer.flush()
    finally:
        producer.close()
    wait_for("the violation row", lambda: _violation_rows(module_db, ev["event_id"]))
    for topic in (VIOLATIONS, department_topic("inspection")):
        [record] = wait_for(topic, lambda topic=topic: violations_on(kafka_bootstrap, topic, ev["event_id"]))
        version, tid, span, flags = dict(record.headers)["traceparent"].decode().split("-")
        assert (version, tid, flags) == ("00", trace_id, "01")
        assert span != parent and int(span, 16) != 0


def test_redelivery_raises_nothing_twice(worker, kafka_bootstrap: str, module_db: str) -> None:
    ev = payment(1, handler_id=PAY["approver_id"])
    doc = enriched(ev)
    marker = payment(2, handler_id=PAY["approver_id"])
    send_enriched(kafka_bootstrap, doc)
    wait_for("the first evaluation", lambda: _violation_rows(module_db, ev["event_id"]))
    send_enriched(kafka_bootstrap, doc, enriched(marker))  # the same message again, then a marker behind it
    wait_for("the marker", lambda: _violation_rows(module_db, marker["event_id"]))
    assert len(_violation_rows(module_db, ev["event_id"])) == 1
    assert len(violations_on(kafka_bootstrap, VIOLATIONS, ev["event_id"])) == 1


def test_case_loop_and_rejected_step(worker, kafka_bootstrap: str, module_db: str) -> None:
    ev = payment(3, handler_id=PAY["approver_id"])
    send_enriched(kafka_bootstrap, enriched(ev))
    ((vid, _, _),) = wait_for("the violation", lambda: _violation_rows(module_db, ev["event_id"]))
    env = {k: ev[k] for k in ("occurred_at", "published_at", "source_bureau", "level", "region_code", "fund_doc_no")}
    ack = ViolationAcknowledged(event_id=uuid.uuid4(), violation_id=vid, actor="USER-440705-HG-03", **env)
    bad = ViolationAcknowledged(event_id=uuid.uuid4(), violation_id=vid, actor="USER-440705-HG-03", **env)
    fix = ViolationRectified(event_id=uuid.uuid4(), violation_id=vid, actor="USER-440705-HG-03", note="已整改",
                             document_sha256="a" * 64, **env)
    produce(kafka_bootstrap, CASES, [(FUND.encode(), e.model_dump_json().encode()) for e in (ack, ack, bad, fix)])
    wait_for("the rectification", lambda: _violation_rows(module_db, ev["event_id"])[0][2] == "rectified")
    rows = query(module_db, "SELECT event_id, outcome, reason FROM case_action WHERE violation_id = %s", vid)
    by_id = {r[0]: (r[1], r[2]) for r in rows}
    assert by_id == {ack.event_id: ("applied", None), bad.event_id: ("rejected", "invalid_transition"),
                     fix.event_id: ("applied", None)}
    dead = wait_for("the dead letter", lambda: [m for m in messages(kafka_bootstrap, VIOLATIONS_DLQ)
                                                 if json.loads(m.value).get("event_id") == str(bad.event_id)])
    assert json.loads(dead[0].value)["reason"] == "invalid_transition"


def test_late_contract_resolves_the_violation(worker, kafka_bootstrap: str, module_db: str) -> None:
    pay = payment(4)
    doc = enriched(pay)
    # What fund-tracker sends for a payment naming a contract it does not know yet.
    doc["before"]["contract"] = None
    doc["after"]["contract"] = {**doc["after"]["contract"], "signed": False, "signed_at": None, "amount_fen": 0}
    contract = fresh(G["ContractSigned"], days=4 + 109 - 45,  # the golden contract is 45 days, the payment 50
                     contract_id=pay["contract_id"])
    # Entered 10 days after the payment, dated 3 days before it (a contract dated after the payment
    # would not resolve it: the payment came first, in event time).
    contract["occurred_at"] = sc.shift(pay["occurred_at"], days=-3)
    contract["published_at"] = sc.shift(pay["occurred_at"], days=10)
    send_enriched(kafka_bootstrap, doc)
    rows = wait_for("the violation", lambda: _violation_rows(module_db, pay["event_id"]))
    vid = next(r[0] for r in rows if r[1] == "finance.payment_without_approval_or_contract")
    send_enriched(kafka_bootstrap, enriched(contract))
    wait_for("the resolution", lambda: query(module_db, "SELECT status FROM violation WHERE violation_id = %s", vid)
             == [("resolved",)])
    ((reason, refuting),) = query(
        module_db, "SELECT payload->>'reason', payload->>'refuting_event_id' FROM case_action"
        " WHERE violation_id = %s AND outcome = 'applied'", vid)
    assert refuting == contract["event_id"] and "dated on or before the payment" in reason
    resolved = [m for m in messages(kafka_bootstrap, CASES) if json.loads(m.value).get("violation_id") == str(vid)]
    assert [json.loads(m.value)["event_type"] for m in resolved] == ["ViolationResolved"]


def test_broken_pack_file_does_not_replace_the_running_pack(
    worker, kafka_bootstrap: str, module_db: str, packs_dir: Path
) -> None:
    inspection = packs_dir / "inspection.yaml"
    good = inspection.read_text(encoding="utf-8")
    inspection.write_text(good.replace("condition: event.handler_id == event.approver_id",
                                       "condition: event.handler_id == "), encoding="utf-8")
    refused = wait_for("the refusal", lambda: query(
        module_db, "SELECT source, error FROM rule_pack_load WHERE status = 'refused'"))
    assert "inspection.yaml" in refused[0][1] and "inspection.same_handler_approver@1" in refused[0][1]
    produce(kafka_bootstrap, RULE_PACKS, [(b"inspection", b"format: fundtrail.rulepack/v1\ndepartment: inspection\n")])
    wait_for("the refused topic document", lambda: len(query(
        module_db, "SELECT 1 FROM rule_pack_load WHERE status = 'refused'")) >= 2)
    ev = payment(5, handler_id=PAY["approver_id"])
    send_enriched(kafka_bootstrap, enriched(ev))
    rows = wait_for("a violation from the running pack", lambda: _violation_rows(module_db, ev["event_id"]))
    assert [r[1] for r in rows] == ["inspection.same_handler_approver"]
    inspection.write_text(good, encoding="utf-8")


def test_new_version_goes_live_and_history_stays(worker, kafka_bootstrap: str, module_db: str, packs_dir: Path) -> None:
    inspection = packs_dir / "inspection.yaml"
    doc = yaml.safe_load(inspection.read_text(encoding="utf-8"))
    v1 = doc["rules"][0]
    v1["effective_until"] = f"{YEAR}-06-01"
    doc["rules"].insert(1, {**v1, "version": 2, "severity": "critical", "effective_from": f"{YEAR}-06-01",
                            "effective_until": None})
    doc["pack_version"] = 2
    inspection.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    wait_for("version 2 to be recorded", lambda: query(
        module_db, "SELECT 1 FROM rule_version WHERE rule_id = 'inspection.same_handler_approver' AND version = 2"))
    assert query(module_db, "SELECT effective_until::text FROM rule_version"
                 " WHERE rule_id = 'inspection.same_handler_approver' AND version = 1") == [(f"{YEAR}-06-01",)]
    june = payment(120, handler_id=PAY["approver_id"])  # the golden payment is in April: +120 days is August
    march = payment(-40, handler_id=PAY["approver_id"])
    send_enriched(kafka_bootstrap, enriched(june), enriched(march))
    for ev, version, severity in ((june, 2, "critical"), (march, 1, "high")):
        wait_for("the violation", lambda ev=ev: _violation_rows(module_db, ev["event_id"]))
        assert query(module_db, "SELECT rule_version, severity FROM violation WHERE triggering_event_id = %s",
                     uuid.UUID(ev["event_id"])) == [(version, severity)]


def test_pack_published_on_the_topic_goes_live(worker, kafka_bootstrap: str, module_db: str) -> None:
    doc = yaml.safe_load((RULEPACK_DIR / "natural_resources.yaml").read_text(encoding="utf-8"))
    v1 = doc["rules"][0]
    v1["effective_until"] = f"{YEAR}-09-01"
    v2 = {**v1, "version": 2, "effective_from": f"{YEAR}-09-01", "effective_until": None,
          "parameters": {"exempt_categories": {**v1["parameters"]["exempt_categories"], "default": ["farmland"]}}}
    doc["rules"].append(v2)
    doc["pack_version"] = 2
    produce(kafka_bootstrap, RULE_PACKS, [(b"natural_resources", yaml.safe_dump(doc, allow_unicode=True).encode())])
    wait_for("the topic document to be accepted", lambda: query(
        module_db, "SELECT 1 FROM rule_pack_load WHERE status = 'accepted' AND source LIKE 'fundtrail.rules/%%'"
        " AND department = 'natural_resources'"))
    assert query(module_db, "SELECT content->'parameters'->'exempt_categories'->'default' FROM rule_version"
                 " WHERE rule_id = 'natural_resources.no_land_use_approval' AND version = 2") == [(["farmland"],)]


def test_timer_fires_after_a_restart(worker, kafka_bootstrap: str, module_db: str) -> None:
    transfer = fresh(G["FundTransferred"], days=300)  # after every earlier test's events: the clock is behind it
    # A fund of its own: the idle check reads the position as of its due time, and the town position
    # of this module's fund has the earlier tests' payments on it.
    doc = enriched(transfer)
    transfer["fund_doc_no"] = doc["event"]["fund_doc_no"] = f"江财农〔{YEAR}〕{uuid.uuid4().hex[:6]}号"
    for state in (doc["before"], doc["after"]):
        for name in ("fund", "position", "counterparty"):
            if state.get(name):
                state[name] = {**state[name], "fund_doc_no": transfer["fund_doc_no"]}
    # On partition 0, whatever the fund's hash: the replay test reads this log merged by `sequence`
    # (1 on every hand-made record, so partition by partition) and must read this transfer before
    # the next test's events 200-400 days later on partitions 4 and 5. Read after them, its check
    # would start behind the clock, wait for a clock that never comes, and the replay would not
    # raise what the worker raised (one run in a few, as the random fund hashed to 4 or 5).
    produce_to(kafka_bootstrap, ENRICHED_EVENTS, 0, [doc])
    wait_for("the pending timer", lambda: query(
        module_db, "SELECT due_at FROM compliance_timer WHERE trigger_event_id = %s AND status = 'pending'",
        uuid.UUID(transfer["event_id"])))
    worker.stop()
    worker.start(module_db)
    later = fresh(G["VendorRegistered"], fund_doc_no=None, vendor_id=f"91440705MA{uuid.uuid4().hex[:8].upper()}")
    later["occurred_at"] = later["published_at"] = sc.shift(transfer["occurred_at"], days=100)
    produce(kafka_bootstrap, ENRICHED_EVENTS,
            [(f"vendor:{later['vendor_id']}".encode(), orjson.dumps(sc.enriched(later, sc.ledger(), sc.ledger())))])
    rows = wait_for("the idle-funds violation", lambda: _violation_rows(module_db, transfer["event_id"]))
    assert [r[1] for r in rows] == ["audit.idle_funds"]
    assert violations_on(kafka_bootstrap, department_topic("audit"), transfer["event_id"])


def test_a_partition_read_ahead_does_not_fire_the_idle_check_early(
    worker, kafka_bootstrap: str, module_db: str
) -> None:
    # A bulk load: partition A holds a transfer and an event 200 days later; partition B a backlog
    # and, at its end, the receiving town's payment 40 days after the transfer. One watermark for
    # all partitions would fire the 90-day idle check as soon as A is read, before B's payment.
    a, b = 4, 5
    fund = f"江财农〔{YEAR}〕{uuid.uuid4().hex[:6]}号"  # a position of its own: one idle check per position
    transfer = fresh(G["FundTransferred"], days=500, fund_doc_no=fund)
    start = transfer["occurred_at"]

    def on_fund(doc: dict[str, Any]) -> dict[str, Any]:
        doc["event"]["fund_doc_no"] = fund
        for state in (doc["before"], doc["after"]):
            for name in ("fund", "position", "counterparty"):
                if state.get(name):
                    state[name] = {**state[name], "fund_doc_no": fund}
        return doc

    def unrelated(days: int, minutes: int = 0) -> dict[str, Any]:
        ev = fresh(G["VendorRegistered"], fund_doc_no=None, vendor_id=f"91440705MA{uuid.uuid4().hex[:8].upper()}")
        ev["occurred_at"] = ev["published_at"] = sc.shift(start, days=days, minutes=minutes)
        return sc.enriched(ev, sc.ledger(), sc.ledger())

    spend = payment(0)
    spend["occurred_at"] = spend["published_at"] = sc.shift(start, days=40)
    spent = enriched(spend)
    spent["after"]["position"] = sc.position(paid_fen=37_200_000)
    spent["sequence"] = 2  # fund-tracker recorded it after the transfer (sequence 1)
    on_fund(spent)
    backlog = [unrelated(1, minutes=i) for i in range(3000)]
    produce_to(kafka_bootstrap, ENRICHED_EVENTS, b, [*backlog, spent])
    produce_to(kafka_bootstrap, ENRICHED_EVENTS, a, [on_fund(enriched(transfer)), unrelated(200)])
    timer = uuid.UUID(transfer["event_id"])
    wait_for("the idle check to be made", lambda: query(
        module_db, "SELECT 1 FROM compliance_timer WHERE trigger_event_id = %s AND status = 'fired'", timer), 120)
    assert query(module_db, "SELECT 1 FROM compliance_processed WHERE event_id = %s",
                 uuid.UUID(spend["event_id"])) == [(1,)]
    assert _violation_rows(module_db, transfer["event_id"]) == []
    clocks = dict(query(module_db, "SELECT name, at FROM compliance_watermark"))
    assert clocks[f"partition/{a}"] == parse_time(sc.shift(start, days=200))
    assert clocks[f"partition/{b}"] == parse_time(spend["occurred_at"])


def _unjudged(bootstrap: str, url: str) -> set[uuid.UUID]:
    """The events of this module's years on the enriched log the worker has not judged yet."""
    from fundtrail_compliance.logreader import read_log
    from fundtrail_compliance.service import BadEnriched, decode_enriched

    wanted: set[uuid.UUID] = set()
    for value in read_log(bootstrap)[0]:
        try:
            doc = decode_enriched(value)
        except BadEnriched:
            continue  # dead-lettered: never recorded as judged
        ev = doc["event"]
        if str(ev["occurred_at"])[:4] in (YEAR, str(int(YEAR) + 1)):
            wanted.add(uuid.UUID(str(ev["event_id"])))
    judged = {r[0] for r in query(url, "SELECT event_id FROM compliance_processed WHERE event_id = ANY(%s)",
                                  list(wanted))}
    return wanted - judged


def test_replay_reports_changed_verdicts(worker, kafka_bootstrap: str, module_db: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fundtrail_compliance.cli import app

    # The replay diffs against what the worker stored: under load the worker may still be reading the
    # previous tests' backlog (3,000 records on one partition), and verdicts it has not stored yet
    # would count as new, not changed. Wait until it has judged every event the replay will read.
    wait_for("the worker to judge every event on the log", lambda: not _unjudged(kafka_bootstrap, module_db), 300)

    candidate = tmp_path / "candidate"
    shutil.copytree(RULEPACK_DIR, candidate)
    text = (candidate / "inspection.yaml").read_text(encoding="utf-8")
    (candidate / "inspection.yaml").write_text(text.replace("severity: high", "severity: critical", 1),
                                               encoding="utf-8")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app, ["replay", "--packs", str(candidate), "--from", f"{YEAR}-01-01", "--to", f"{int(YEAR) + 2}-01-01",
              "--out", str(out)],
        env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": module_db},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    same = report["per_rule"]["inspection.same_handler_approver"]
    assert same["changed"] >= 5 and same["vanished"] == 0
    assert report["per_rule"]["audit.idle_funds"]["unchanged"] >= 1, (report["per_rule"]["audit.idle_funds"],
                                                                       report["examples"])
    assert any(e["changes"] == ["severity high → critical"] for e in report["examples"]["changed"])
    assert "inspection.same_handler_approver" in result.output


def test_parallel_replay_reads_and_judges_as_the_serial_one(worker, kafka_bootstrap: str) -> None:
    """The reader process hands over the same records in the same order, and the violations of a
    replay it pre-judges are those of a serial one."""
    from kafka import KafkaProducer

    from fundtrail_compliance.logreader import read_log, read_log_prejudged
    from fundtrail_compliance.packs import load_dir
    from fundtrail_compliance.replay import evaluate
    from fundtrail_runtime.kafka_admin import ensure_topics
    from fundtrail_schemas.topics import TopicSpec

    # A copy of the log on a topic of our own: other suites may append to the shared one.
    topic = f"{ENRICHED_EVENTS}.replay-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, [TopicSpec(topic, 3, "tests", "replay copy")])
    records = list(read_log(kafka_bootstrap)[0])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for i, r in enumerate(records):
        producer.send(topic, r, key=str(i % 7).encode())
    producer.flush()
    producer.close()
    _, packs = load_dir(RULEPACK_DIR)

    def slowly(items: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
        for i, item in enumerate(items):
            if i % 100 == 0:
                time.sleep(0.05)  # a caller slower than the reader: it judges what it reads meanwhile
            yield item

    pairs_read, total = read_log_prejudged(kafka_bootstrap, RULEPACK_DIR, packs.fingerprint(), topic)
    pairs = list(slowly(pairs_read))
    in_order = list(read_log(kafka_bootstrap, topic)[0])
    assert total == len(records) >= 10 and [r for r, _ in pairs] == in_order
    assert sorted(in_order) == sorted(records)
    assert any(v not in (b"", b"0") for _, v in pairs)  # some conditions fired in the reader

    grace = timedelta(days=15)
    serial = evaluate(iter(in_order), packs, start=None, end=None, grace=grace)
    parallel = evaluate(iter(pairs), packs, start=None, end=None, grace=grace)
    assert len(serial.violations) >= 5
    assert {k: v.model_dump_json() for k, v in parallel.violations.items()} == {
        k: v.model_dump_json() for k, v in serial.violations.items()
    }
    assert (parallel.events, parallel.duplicates, parallel.errors) == (serial.events, serial.duplicates, serial.errors)

    stale, _ = read_log_prejudged(kafka_bootstrap, RULEPACK_DIR, "packs-as-they-were", topic)
    with pytest.raises(RuntimeError, match="changed"):
        next(stale)


def _reset_group_to_earliest(bootstrap: str, group: str, topic: str) -> None:
    """What `kafka-consumer-groups.sh --reset-offsets --to-earliest --execute` does (group stopped)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        first = consumer.beginning_offsets(tps)
        consumer.commit({tp: OffsetAndMetadata(first[tp], "", -1) for tp in tps})
    finally:
        consumer.close()


def test_re_evaluation_under_a_new_pack_set_re_judges_events(
    worker, kafka_bootstrap: str, module_db: str, packs_dir: Path
) -> None:
    """docs/operations.md §5: stop, change the packs, reset the group's offsets, start: events read
    again are judged again under the new set (deduplication is per event and pack-set version)."""
    ev = payment(30, account_kind="personal", amount_fen=50_000)  # 500 CNY: under the shipped limit
    send_enriched(kafka_bootstrap, enriched(ev))
    first = wait_for("the event to be judged", lambda: query(
        module_db, "SELECT pack_version FROM compliance_processed WHERE event_id = %s", uuid.UUID(ev["event_id"])))
    assert not query(module_db, "SELECT 1 FROM violation WHERE triggering_event_id = %s AND rule_id = %s",
                     uuid.UUID(ev["event_id"]), "finance.personal_account_payment")
    earlier = query(module_db, "SELECT count(*) FROM violation")[0][0]
    worker.stop()
    finance = packs_dir / "finance.yaml"
    doc = yaml.safe_load(finance.read_text(encoding="utf-8"))
    versions = [r for r in doc["rules"] if r["id"] == "finance.personal_account_payment"]
    live = next(r for r in versions if r.get("effective_until") is None)
    live["effective_until"] = f"{YEAR}-01-01"
    new_version = max(r["version"] for r in versions) + 1
    doc["rules"].append({**live, "version": new_version, "effective_from": f"{YEAR}-01-01", "effective_until": None,
                         "parameters": {**live["parameters"], "max_fen": {**live["parameters"]["max_fen"],
                                                                          "default": 10_000}}})
    doc["pack_version"] += 1
    finance.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _reset_group_to_earliest(kafka_bootstrap, f"{worker.env['FUNDTRAIL_COMPLIANCE_APP_ID']}-enriched", ENRICHED_EVENTS)
    worker.start(module_db)
    rows = wait_for("the re-judged violation", lambda: query(
        module_db, "SELECT rule_version, pack_version FROM violation WHERE triggering_event_id = %s AND rule_id = %s",
        uuid.UUID(ev["event_id"]), "finance.personal_account_payment"), 120)
    versions_seen = {r[0] for r in query(
        module_db, "SELECT pack_version FROM compliance_processed WHERE event_id = %s", uuid.UUID(ev["event_id"]))}
    assert rows == [(new_version, rows[0][1])] and rows[0][1] not in {first[0][0], None}
    assert versions_seen == {first[0][0], rows[0][1]}
    # Verdicts already recorded are not raised twice: every earlier violation is still there once.
    wait_for("every earlier event to be judged again", lambda: query(
        module_db, "SELECT count(*) FROM compliance_processed WHERE pack_version = %s", rows[0][1])[0][0] >= query(
        module_db, "SELECT count(*) FROM compliance_processed WHERE pack_version = %s", first[0][0])[0][0], 120)
    assert query(module_db, "SELECT count(*) FROM violation WHERE rule_id <> 'finance.personal_account_payment'"
                 " OR rule_version <> %s", new_version)[0][0] == earlier


def test_a_pack_published_on_the_topic_reaches_every_replica(
    worker, kafka_bootstrap: str, module_db: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The rules topic is broadcast (read outside the consumer group): with two workers in one
    group, both take the document, not only the one a group would give its partition to."""
    from kafka import KafkaProducer

    data = tmp_path_factory.mktemp("compliance-data-2")
    second = WorkerProcess({**worker.env, "FUNDTRAIL_COMPLIANCE_DATA_DIR": str(data)}, data / "worker.log")
    second.start(module_db)
    try:
        doc = yaml.safe_load((RULEPACK_DIR / "agriculture.yaml").read_text(encoding="utf-8"))
        doc["description"] = f"republished {uuid.uuid4().hex[:6]}"  # same rules, a new document
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        try:
            meta = producer.send(RULE_PACKS, yaml.safe_dump(doc, allow_unicode=True).encode(),
                                 key=b"agriculture").get(timeout=30)
        finally:
            producer.close()
        source = f"{RULE_PACKS}/{meta.partition}@{meta.offset}"
        loads = wait_for("both replicas to take the document", lambda: (rows := query(
            module_db, "SELECT status FROM rule_pack_load WHERE source = %s", source)) and len(rows) >= 2 and rows)
        assert [r[0] for r in loads] == ["accepted", "accepted"]
    finally:
        second.stop()
# Last in the module: the hostile records stay on the shared topics, which the tests above read whole.
def test_null_and_hostile_records_are_dead_lettered_and_the_partition_goes_on(
    worker, kafka_bootstrap: str, module_db: str
) -> None:
    from kafka import KafkaProducer

    marker = payment(2, handler_id=PAY["approver_id"])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        sent = {}
        for topic, value, reason in (
            (ENRICHED_EVENTS, None, "empty"), (ENRICHED_EVENTS, b"", "empty"),
            (ENRICHED_EVENTS, b"[" * 5000 + b"]" * 5000, "malformed_json"),
            (ENRICHED_EVENTS, b'{"event": ' * 900 + b"1" + b"}" * 900, "invalid_field"),
            (CASES, None, "empty"), (CASES, b"[" * 5000, "invalid_field"),
            # PostgreSQL cannot store U+0000: dead-lettered instead of failing the insert on every retry.
            (CASES, ViolationAcknowledged(
                event_id=uuid.uuid4(), violation_id=uuid.uuid4(), actor="USER-440705-HG-03", note="a\x00b",
                **{k: PAY[k] for k in ("occurred_at", "published_at", "source_bureau", "level", "region_code")},
            ).model_dump_json().encode(), "invalid_field"),
        ):
            md = producer.send(topic, value, key=FUND.encode()).get(timeout=30)
            sent[(topic, md.partition, md.offset)] = reason
        # A rule-pack tombstone is ignored (packs are replaced, never deleted) and stops nothing.
        producer.send(RULE_PACKS, None, key=b"no-such-department").get(timeout=30)
        producer.send(ENRICHED_EVENTS, orjson.dumps(enriched(marker)), key=FUND.encode()).get(timeout=30)
    finally:
        producer.close()
    wait_for("the event behind the hostile records", lambda: _violation_rows(module_db, marker["event_id"]))

    def letters() -> dict[tuple[str, int, int], str] | None:
        got = {}
        for m in messages(kafka_bootstrap, VIOLATIONS_DLQ):
            doc = json.loads(m.value)
            where = (doc["source_topic"], doc["source_partition"], doc["source_offset"])
            if where in sent:
                got[where] = doc["reason"]
        return got if len(got) == len(sent) else None

    assert wait_for("the dead letters", letters) == sent
    assert worker._alive()


def test_a_back_dated_contract_is_judged_after_a_sigkill_as_without_one(
    worker, kafka_bootstrap: str, module_db: str
) -> None:
    """The fund's event-time book comes back after kill -9: a contract dated 30 days before it was
    recorded, then (after the restart) a payment against it dated between the two: the contract is
    judged again and found back-dated, as an uninterrupted worker finds it (tests/test_verdict_order.py
    has both arrival orders, and every restart point, against PostgreSQL)."""
    fund = f"江财农〔{YEAR}〕{uuid.uuid4().hex[:6]}号"
    cid = f"HT-{uuid.uuid4().hex[:12]}"
    contract = fresh(G["ContractSigned"], days=500, contract_id=cid, fund_doc_no=fund)
    contract["published_at"] = sc.shift(contract["occurred_at"], days=30)
    pay = payment(0, contract_id=cid, fund_doc_no=fund)
    pay["occurred_at"] = pay["published_at"] = sc.shift(contract["occurred_at"], days=5)
    docs = []
    for ev in (contract, pay):
        doc = enriched(ev)
        for state in (doc["before"], doc["after"]):
            for name in ("fund", "position", "counterparty"):
                if state.get(name):
                    state[name] = {**state[name], "fund_doc_no": fund}
        docs.append(doc)
    send_enriched(kafka_bootstrap, docs[0])
    wait_for("the contract judged", lambda: query(
        module_db, "SELECT 1 FROM compliance_processed WHERE event_id = %s", uuid.UUID(contract["event_id"])))
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGKILL)  # nothing flushed, nothing closed
    worker.proc.wait(timeout=30)
    worker.start(module_db)
    send_enriched(kafka_bootstrap, docs[1])
    wait_for("the payment judged", lambda: query(
        module_db, "SELECT 1 FROM compliance_processed WHERE event_id = %s", uuid.UUID(pay["event_id"])))
    rows = wait_for("the back-dating violation", lambda: [
        r for r in _violation_rows(module_db, contract["event_id"]) if r[1] == "audit.backdated_entry"], 30)
    assert len(rows) == 1
