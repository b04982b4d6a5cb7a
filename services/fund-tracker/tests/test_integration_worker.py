"""The worker against real Kafka and PostgreSQL: publishing files twice, parking, trace context, the trail."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from fundtrail_runtime.trail_nodes import TrailNodeStore, psycopg_rows
from fundtrail_schemas.enriched import DeadLetter, EnrichedEvent
from fundtrail_schemas.examples import load_examples
from fundtrail_schemas.leaf import decode_leaf
from fundtrail_tracker.keys import public_key_path
from fundtrail_verify import merkle
from fundtrail_verify.checkpoint import Checkpoint, load_public_key, verify_checkpoint

pytestmark = pytest.mark.integration

FUNDTRAIL = Path(sys.executable).parent / "fundtrail"


def _at(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=40 - days)).strftime("%Y-%m-%d %H:%M:%S")


def bureau_rows(fund: str) -> list[dict[str, Any]]:
    """A fund's first weeks as a finance system would export them (yuan, China time, Chinese-free columns)."""
    county, town = "440705", "440705101"
    project, contract = f"P-{fund}", f"HT-{fund}"
    rows: list[dict[str, Any]] = [
        {"event_type": "FundAllocated", "occurred_at": _at(0), "source_bureau": "440700-CZJ", "region_code": "440700",
         "fund_doc_no": fund, "amount_yuan": "1000000.00", "purpose_category": "infrastructure",
         "recipient_level": "county", "recipient_region_code": county, "deadline": "2027-12-31", "title": "测试资金"},
        {"event_type": "FundTransferred", "occurred_at": _at(1), "source_bureau": "440705-CZJ", "region_code": county,
         "fund_doc_no": fund, "transfer_id": "ZF-1", "amount_yuan": "600000", "to_level": "town",
         "to_region_code": town},
        {"event_type": "FundTransferred", "occurred_at": _at(2), "source_bureau": "440705-CZJ", "region_code": county,
         "fund_doc_no": fund, "transfer_id": "ZF-2", "amount_yuan": "150000.50", "to_level": "town",
         "to_region_code": "440705102"},
        {"event_type": "ProjectApproved", "occurred_at": _at(3), "source_bureau": f"{town}-CZS", "region_code": town,
         "fund_doc_no": fund, "project_id": project, "project_name": "村道硬底化", "owner_unit": "JSB",
         "category": "infrastructure", "budget_yuan": "500000", "planned_procurement_method": "open_tender",
         "procurement_category": "construction", "approval_doc_no": "AP-1", "approving_official_id": "OFF-1"},
        {"event_type": "ContractSigned", "occurred_at": _at(4), "source_bureau": f"{town}-CZS", "region_code": town,
         "fund_doc_no": fund, "project_id": project, "contract_id": contract, "vendor_id": "V-1",
         "amount_yuan": "480000"},
    ]
    for k in range(4):
        rows.append({
            "event_type": "PaymentDisbursed", "occurred_at": _at(5 + k), "source_bureau": f"{town}-CZS",
            "region_code": town, "fund_doc_no": fund, "project_id": project, "contract_id": contract,
            "payment_id": f"ZF-{fund}-{k}", "payee_vendor_id": "V-1", "payee_name": "绿野建设",
            "payee_account": "6222-1", "account_kind": "corporate", "amount_yuan": f"{50000 + k}.25",
            "invoice_no": f"INV-{fund}-{k}", "payment_kind": "prepayment" if k == 0 else "progress",
            "handler_id": "H-1", "approver_id": "A-1", "purpose": "工程款",
        })
    # Two bad rows: a sub-fen amount and an unknown account kind.
    rows.append({**rows[-1], "payment_id": f"ZF-{fund}-bad1", "amount_yuan": "1.001"})
    rows.append({**rows[-1], "payment_id": f"ZF-{fund}-bad2", "amount_yuan": "1.00", "account_kind": "offshore"})
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    header = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


def write_xlsx(path: Path, rows: list[dict[str, Any]]) -> None:
    header = list(dict.fromkeys(k for r in rows for k in r))
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append([r.get(h) for h in header])
    wb.save(path)


def publish_cli(s: Any, path: Path, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**s.env(), "FUNDTRAIL_TRACKER_STATE_DIR": str(state_dir), "COLUMNS": "200"}
    return subprocess.run([str(FUNDTRAIL), "publish", str(path)], env=env, capture_output=True, text=True,
                          timeout=120)


def fund_state(s: Any, fund: str) -> dict[str, Any]:
    with s.db() as conn:
        positions = conn.execute(
            "SELECT level, region_code, received_fen, passed_down_fen, paid_fen, returned_fen, contracted_fen"
            " FROM fund_position WHERE fund_doc_no = %s ORDER BY 1, 2", (fund,)).fetchall()
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM processed_event WHERE fund_doc_no = %(f)s),"
            " (SELECT count(*) FROM trail_entry WHERE fund_doc_no = %(f)s),"
            " (SELECT count(*) FROM payment WHERE fund_doc_no = %(f)s),"
            " (SELECT sum(amount_fen) FROM payment WHERE fund_doc_no = %(f)s)", {"f": fund}).fetchone()
        project = conn.execute("SELECT state FROM project WHERE fund_doc_no = %s", (fund,)).fetchall()
    return {"positions": positions, "counts": counts, "projects": project}


def test_publishing_the_same_file_twice_changes_nothing(module_scenario: Any, kafka_tools: Any,
                                                        tmp_path: Path) -> None:
    s, worker = module_scenario
    fund = f"测财〔2026〕{uuid.uuid4().hex[:6]}号"
    rows = bureau_rows(fund)
    csv_path = tmp_path / "export.csv"
    write_csv(csv_path, rows)
    state = tmp_path / "state"

    first = publish_cli(s, csv_path, state)
    assert first.returncode == 1, first.stderr  # two rows rejected
    assert "published 9, rejected 2, already published 0" in first.stderr
    # The rejected rows by their spreadsheet numbers (header is row 1, the nine good rows are 2-10).
    assert re.search(r"\b11\b.*amount_yuan.*two decimals", first.stderr)
    assert re.search(r"\b12\b.*account_kind", first.stderr)
    kafka_tools.wait_until(lambda: fund_state(s, fund)["counts"][0] == 9, 60, what="9 events recorded",
                           alive=worker)
    before = fund_state(s, fund)
    county = next(p for p in before["positions"] if p[0] == "county")
    assert county[2:4] == (100_000_000, 75_000_050)  # received 1,000,000.00 yuan; passed down 750,000.50
    assert before["counts"] == (9, 9, 4, sum(5_000_025 + 100 * k for k in range(4)))

    again = publish_cli(s, csv_path, state)
    assert "published 0, rejected 2, already published 9" in again.stderr, again.stderr

    # The same rows as XLSX derive the same event ids: nothing new either.
    xlsx_path = tmp_path / "export.xlsx"
    write_xlsx(xlsx_path, rows)
    as_xlsx = publish_cli(s, xlsx_path, state)
    assert "published 0, rejected 2, already published 9" in as_xlsx.stderr, as_xlsx.stderr

    # Journal lost: everything is sent again, and the worker's dedup absorbs it.
    lost = publish_cli(s, csv_path, tmp_path / "fresh-state")
    assert "published 9, rejected 2, already published 0" in lost.stderr, lost.stderr
    kafka_tools.wait_until(lambda: kafka_tools.consumer_lag(s.bootstrap, s.group(), s.topics.raw) == 0, 60,
                           what="the re-sent events to be consumed", alive=worker)
    assert fund_state(s, fund) == before


def test_event_for_unknown_fund_waits_for_its_allocation(module_scenario: Any, kafka_tools: Any) -> None:
    s, worker = module_scenario
    ex = load_examples()
    fund = f"迟到〔2026〕{uuid.uuid4().hex[:6]}号"
    transfer = {**ex["FundTransferred"], "event_id": str(uuid.uuid4()), "fund_doc_no": fund}
    allocation = {**ex["FundAllocated"], "event_id": str(uuid.uuid4()), "fund_doc_no": fund}
    prod = kafka_tools.producer(s.bootstrap)
    prod.send(s.topics.raw, key=fund.encode(), value=json.dumps(transfer).encode()).get(timeout=30)
    kafka_tools.wait_until(
        lambda: s.scalar("SELECT waiting_for FROM parked_event WHERE event_id = %s", uuid.UUID(transfer["event_id"])),
        60, what="the transfer to be parked", alive=worker,
    )
    assert s.scalar("SELECT count(*) FROM processed_event WHERE fund_doc_no = %s", fund) == 0
    prod.send(s.topics.raw, key=fund.encode(), value=json.dumps(allocation).encode()).get(timeout=30)
    prod.close()
    kafka_tools.wait_until(lambda: s.scalar("SELECT count(*) FROM processed_event WHERE fund_doc_no = %s", fund) == 2,
                           60, what="both events recorded", alive=worker)
    assert s.scalar("SELECT count(*) FROM parked_event WHERE waiting_for = %s", f"fund:{fund}") == 0
    county = s.scalar("SELECT row(received_fen, passed_down_fen) FROM fund_position"
                      " WHERE fund_doc_no = %s AND level = 'county'", fund)
    assert county == (str(ex["FundAllocated"]["amount_fen"]), str(ex["FundTransferred"]["amount_fen"]))


def test_trace_context_flows_from_publisher_to_enriched_event(module_scenario: Any, kafka_tools: Any,
                                                              tmp_path: Path) -> None:
    from opentelemetry import trace

    from fundtrail_publish import Publisher
    from fundtrail_schemas.events import FundAllocated
    from fundtrail_schemas.telemetry import setup_tracing

    s, worker = module_scenario
    setup_tracing("fundtrail-tests")
    ex = load_examples()["FundAllocated"]
    event = FundAllocated.model_validate({**ex, "event_id": str(uuid.uuid4()),
                                          "fund_doc_no": f"追踪〔2026〕{uuid.uuid4().hex[:6]}号"})
    with trace.get_tracer("tests").start_as_current_span("bureau import") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        with Publisher(s.bootstrap, tmp_path, topic=s.topics.raw) as pub:
            summary = pub.publish_events([event])
    assert summary.published == 1
    kafka_tools.wait_until(lambda: s.scalar("SELECT trace_id FROM processed_event WHERE event_id = %s",
                                            event.event_id), 60, what="the event recorded", alive=worker)
    assert s.scalar("SELECT trace_id FROM processed_event WHERE event_id = %s", event.event_id) == trace_id
    assert s.scalar("SELECT trace_id FROM trail_entry WHERE entry_id = %s", event.event_id) == trace_id
    (record,) = [r for r in kafka_tools.read_topic(s.bootstrap, s.topics.enriched)
                 if EnrichedEvent.model_validate_json(r.value).event.event_id == event.event_id]
    enriched = EnrichedEvent.model_validate_json(record.value)
    assert enriched.trace_id == trace_id
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["traceparent"].split("-")[1] == trace_id
    assert headers["fundtrail-event-type"] == "FundAllocated"
    assert enriched.before.fund is None and enriched.after.fund is not None and enriched.after.fund.known


def test_violations_and_case_actions_join_the_trail(module_scenario: Any, kafka_tools: Any) -> None:
    s, worker = module_scenario
    ex = load_examples()
    fund = f"违规〔2026〕{uuid.uuid4().hex[:6]}号"
    allocation = {**ex["FundAllocated"], "event_id": str(uuid.uuid4()), "fund_doc_no": fund}
    payment = {**ex["PaymentDisbursed"], "event_id": str(uuid.uuid4()), "fund_doc_no": fund,
               "payment_id": f"ZF-{fund}", "invoice_no": f"INV-{fund}"}
    violation_id = uuid.uuid4()
    violation = {**ex["ViolationRaised"], "event_id": str(uuid.uuid4()), "fund_doc_no": fund,
                 "violation_id": str(violation_id), "triggering_event_id": payment["event_id"]}
    again = {**violation, "event_id": str(uuid.uuid4())}  # re-raised after a compliance restart
    ack = {**ex["ViolationAcknowledged"], "event_id": str(uuid.uuid4()), "fund_doc_no": fund,
           "violation_id": str(violation_id)}
    prod = kafka_tools.producer(s.bootstrap)
    for ev in (allocation, payment):
        prod.send(s.topics.raw, key=fund.encode(), value=json.dumps(ev).encode())
    prod.flush()
    kafka_tools.wait_until(lambda: s.scalar("SELECT count(*) FROM processed_event WHERE fund_doc_no = %s", fund) == 2,
                           60, what="the payment recorded", alive=worker)
    for ev in (violation, again):
        prod.send(s.topics.violations, key=fund.encode(), value=json.dumps(ev).encode())
    prod.send(s.topics.violations, key=fund.encode(), value=json.dumps(payment).encode())  # wrong topic
    prod.flush()
    prod.send(s.topics.cases, key=fund.encode(), value=json.dumps(ack).encode()).get(timeout=30)
    prod.close()
    kafka_tools.wait_until(lambda: s.scalar("SELECT count(*) FROM trail_entry WHERE violation_id = %s",
                                            violation_id) == 2, 60, what="violation and case in the trail",
                           alive=worker)
    with s.db() as conn:
        rows = conn.execute(
            "SELECT entry_kind, entry_id, payment_id, contract_id, vendor_id, fund_doc_no, project_id"
            " FROM trail_entry WHERE violation_id = %s ORDER BY seq", (violation_id,)).fetchall()
    assert [r[0] for r in rows] == ["violation", "case"]
    assert rows[0][1] == violation_id and rows[1][1] == uuid.UUID(ack["event_id"])
    for r in rows:  # queryable by the payment, contract and vendor of the triggering event
        assert r[2:5] == (payment["payment_id"], payment["contract_id"], payment["payee_vendor_id"])
        assert r[5] == fund
    letters = [DeadLetter.model_validate_json(r.value) for r in kafka_tools.read_topic(s.bootstrap,
                                                                                       s.topics.dead_letters)]
    assert any(d.source_topic == s.topics.violations and d.reason.value == "not_allowed_here" for d in letters)


def test_signed_checkpoints_prove_inclusion_and_consistency(module_scenario: Any, kafka_tools: Any) -> None:
    s, worker = module_scenario
    ex = load_examples()
    fund = f"检查点〔2026〕{uuid.uuid4().hex[:6]}号"
    prod = kafka_tools.producer(s.bootstrap)
    events = [{**ex["FundAllocated"], "event_id": str(uuid.uuid4()), "fund_doc_no": fund}]
    events += [{**ex["FundTransferred"], "event_id": str(uuid.uuid4()), "fund_doc_no": fund,
                "transfer_id": f"ZF-{i}", "amount_fen": 1000 + i} for i in range(40)]
    for ev in events:
        prod.send(s.topics.raw, key=fund.encode(), value=json.dumps(ev).encode())
    prod.flush()
    prod.close()
    kafka_tools.wait_until(lambda: s.scalar("SELECT count(*) FROM processed_event WHERE fund_doc_no = %s", fund) == 41,
                           60, what="41 events recorded", alive=worker)
    size = s.scalar("SELECT count(*) FROM trail_entry")
    kafka_tools.wait_until(lambda: s.scalar("SELECT max(tree_size) FROM trail_checkpoint") == size, 30,
                           what=f"a checkpoint at size {size}", alive=worker)
    public_key = load_public_key(public_key_path(s.key_path))
    with s.db() as conn:
        cps = [Checkpoint(log_id=r[0], tree_size=r[1], root_hash=r[2], timestamp=r[3], note=r[4])
               for r in conn.execute("SELECT log_id, tree_size, root_hash, signed_at, note"
                                     " FROM trail_checkpoint ORDER BY tree_size")]
        leaves = [bytes(r[0]) for r in conn.execute("SELECT leaf_data FROM trail_entry ORDER BY seq")]
        store = TrailNodeStore(psycopg_rows(conn))
        latest = cps[-1]
        assert all(verify_checkpoint(cp, public_key) for cp in cps)
        assert len(leaves) == latest.tree_size
        assert merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in leaves]) == latest.root
        for index in (0, latest.tree_size // 2, latest.tree_size - 1):
            proof = merkle.inclusion_proof_from_store(store, index, latest.tree_size)
            assert merkle.verify_inclusion(merkle.leaf_hash(leaves[index]), index, latest.tree_size, proof, latest.root)
        if len(cps) > 1:
            old = cps[0]
            proof = merkle.consistency_proof_from_store(store, old.tree_size, latest.tree_size)
            assert merkle.verify_consistency(old.tree_size, latest.tree_size, old.root, latest.root, proof)
        # Leaves are the contract's canonical JSON (fundtrail_schemas.leaf): the fund's entries chain without
        # a gap, and each event commits the ledger state around it.
        entry = json.loads(leaves[-1])
        assert leaves[-1] == json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        chain = [(i, decode_leaf(x)) for i, x in enumerate(leaves) if decode_leaf(x).fund_doc_no == fund]
        assert len(chain) == 41
        assert [leaf.prev["fund"] for _, leaf in chain] == [None] + [i for i, _ in chain[:-1]]
        assert all(leaf.before is not None and leaf.after is not None and leaf.after != leaf.before
                   for _, leaf in chain)
