"""Unit tests of the tabular mapping (fundtrail_schemas.tabular, used by the publisher and the gateway)."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import openpyxl
import pytest

from fundtrail_schemas.events import PaymentDisbursed, derive_event_id
from fundtrail_schemas.examples import load_examples
from fundtrail_schemas.tabular import RowDefaults, content_hash, detect_format, map_file

PUBLISHED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
BUREAU = "440705101-CZS"
TOWN = "440705101"

HEADER = ("事件类型,发生时间,指标文号,项目编号,支付编号,合同编号,收款单位编号,收款人,收款账号,账户类型,"
          "金额（元）,发票号,付款类型,经办人,审批人,用途")
GOOD = ("PaymentDisbursed,2026-04-21 09:30,江财农〔2026〕18号,P-1,ZF-1,HT-1,V-1,绿野建设,6222-1,corporate,"
        "1234.56,4407001,progress,S-1,S-2,进度款")


def csv_file(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode()


def report_of(data: bytes, fmt: str = "csv", **defaults: str):
    d = RowDefaults(**({"source_bureau": BUREAU, "region_code": TOWN} | defaults))
    return map_file(data, fmt, defaults=d, published_at=PUBLISHED)


def test_csv_row_becomes_a_payment_with_exact_fen_and_china_time() -> None:
    r = report_of(csv_file(GOOD))
    assert r.ok and r.total_rows == 1
    (row,) = r.rows
    ev = row.event
    assert isinstance(ev, PaymentDisbursed)
    assert ev.amount_fen == 123_456
    assert ev.occurred_at == datetime(2026, 4, 21, 1, 30, tzinfo=UTC)  # 09:30 China Standard Time
    assert ev.level.value == "town" and ev.source_bureau == BUREAU and ev.published_at == PUBLISHED
    assert row.row == 2 and row.record_key == "PaymentDisbursed:ZF-1"
    assert ev.event_id == derive_event_id(BUREAU, "PaymentDisbursed:ZF-1")


def test_same_file_twice_gives_the_same_ids_and_hashes() -> None:
    a = report_of(csv_file(GOOD)).rows[0]
    later = map_file(csv_file(GOOD), "csv", defaults=RowDefaults(source_bureau=BUREAU, region_code=TOWN),
                     published_at=datetime(2026, 6, 1, tzinfo=UTC)).rows[0]
    assert a.event.event_id == later.event.event_id
    assert a.content_hash == later.content_hash  # published_at is not part of the content


def test_row_errors_name_row_field_and_problem() -> None:
    bad_decimals = GOOD.replace("1234.56", "12.345").replace("ZF-1", "ZF-2")
    negative = GOOD.replace("1234.56", "-5").replace("ZF-1", "ZF-3")
    no_fund = GOOD.replace("江财农〔2026〕18号", "").replace("ZF-1", "ZF-4")
    bad_kind = GOOD.replace("progress", "bogus").replace("ZF-1", "ZF-5")
    r = report_of(csv_file(GOOD, bad_decimals, negative, "", no_fund, bad_kind, GOOD))
    errors = {(e.row, e.field): e for e in r.errors}
    assert errors[(3, "amount_yuan")].message.startswith("has more than two decimals")
    assert (4, "amount_yuan") in errors  # named by the column the user wrote
    assert errors[(6, "fund_doc_no")].message == "is required but missing"  # the blank line 5 is skipped
    assert (7, "payment_kind") in errors
    assert errors[(8, "event_id")].reason == "duplicate_row" and "row 2" in errors[(8, "event_id")].message
    assert r.rejected_rows == [3, 4, 6, 7, 8] and [x.row for x in r.rows] == [2]
    assert r.total_rows == 6  # non-empty data rows
    assert r.as_dict()["rejected_rows"] == [3, 4, 6, 7, 8]


def test_fen_columns_must_be_integers() -> None:
    header = HEADER.replace("金额（元）", "amount_fen")
    r = report_of(csv_file(GOOD.replace("1234.56", "12.5"), header=header))
    (e,) = r.errors
    assert (e.row, e.field) == (2, "amount_fen") and "integer" in e.message


def test_unknown_event_type_and_unreadable_file() -> None:
    r = report_of(csv_file(GOOD.replace("PaymentDisbursed", "PaymentMade")))
    assert [(e.row, e.field, e.reason) for e in r.errors] == [(2, "event_type", "unknown_type")]
    broken = report_of(b"not a zip", "xlsx")
    assert [(e.row, e.reason) for e in broken.errors] == [(0, "unreadable_file")]
    dup_header = report_of(b"event_type,event_type\nFundAllocated,FundAllocated\n")
    assert dup_header.errors[0].row == 0


def test_gb18030_csv_from_excel_is_read() -> None:
    r = report_of(csv_file(GOOD).decode().encode("gb18030"))
    assert r.ok and r.rows[0].event.payee_name == "绿野建设"


def test_xlsx_with_typed_cells() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["event_type", "occurred_at", "fund_doc_no", "transfer_id", "amount_yuan", "to_level", "to_region_code"])
    ws.append(["FundTransferred", datetime(2026, 3, 7, 9, 30), "江财农〔2026〕18号", "ZF-031", 4000000, "town",
               "440705101"])
    ws.append([])
    ws.append(["FundTransferred", datetime(2026, 3, 8, 9, 30), "江财农〔2026〕18号", "ZF-032", 1.005, "town",
               "440705101"])
    buf = io.BytesIO()
    wb.save(buf)
    r = report_of(buf.getvalue(), "xlsx", source_bureau="440705-CZJ", region_code="440705")
    (row,) = r.rows
    assert row.row == 2 and row.event.amount_fen == 400_000_000 and row.event.level.value == "county"
    assert [(e.row, e.field) for e in r.errors] == [(4, "amount_yuan")]  # sheet row numbers, blank row kept


def test_jsonl_lines_are_wire_events_with_optional_ids() -> None:
    ex = load_examples()["FundAllocated"]
    no_id = {k: v for k, v in ex.items() if k not in ("event_id", "published_at")}
    lines = [json.dumps(ex, ensure_ascii=False), "", json.dumps(no_id, ensure_ascii=False), "{oops", "[]"]
    r = map_file("\n".join(lines).encode(), "jsonl", published_at=PUBLISHED)
    assert [x.row for x in r.rows] == [1, 3]
    assert str(r.rows[0].event.event_id) == ex["event_id"]
    derived = r.rows[1].event
    key = f"FundAllocated:{ex['fund_doc_no']}:{ex['recipient_region_code']}"
    assert derived.event_id == derive_event_id(ex["source_bureau"], key)
    assert [(e.row, e.reason) for e in r.errors] == [(4, "malformed_json"), (5, "malformed_json")]


def test_booleans_dates_and_json_cells() -> None:
    header = ("event_type,occurred_at,fund_doc_no,project_id,award_id,owner_unit,method,procurement_category,"
              "amount_fen,winner_vendor_id,bidders,tender_published_on")
    bidders = json.dumps([{"vendor_id": "V1", "name": "甲", "legal_rep_id": "L1", "phone": "1", "bank_account": "b",
                           "address": "a", "bid_amount_fen": 100}], ensure_ascii=False).replace('"', '""')
    row = (f'ProcurementAwarded,2026-04-10,江财农〔2026〕18号,P-1,ZB-1,JSB,open_tender,construction,100,V1,'
           f'"{bidders}",2026/03/20')
    r = report_of(csv_file(row, header=header))
    assert r.ok, r.errors
    ev = r.rows[0].event
    assert ev.tender_published_on == date(2026, 3, 20) and ev.bidders[0].vendor_id == "V1"
    amended = report_of(csv_file(
        "ContractAmended,2026-05-01,江财农〔2026〕18号,P-1,HT-1,BG-1,-900.5,否,加量",
        header="事件类型,发生时间,指标文号,项目编号,合同编号,变更编号,变更金额（元）,是否批准,变更原因",
    ))
    assert amended.ok, amended.errors
    assert amended.rows[0].event.delta_fen == -90_050 and amended.rows[0].event.approved is False


def test_content_hash_changes_with_content() -> None:
    a = report_of(csv_file(GOOD)).rows[0]
    b = report_of(csv_file(GOOD.replace("1234.56", "1234.57"))).rows[0]
    assert a.event.event_id == b.event.event_id and a.content_hash != b.content_hash
    assert content_hash(a.event) == a.content_hash


@pytest.mark.parametrize(("name", "fmt"), [("a.jsonl", "jsonl"), ("B.CSV", "csv"), ("c.xlsx", "xlsx")])
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_detect_format_refuses_unknown_suffix() -> None:
    with pytest.raises(ValueError, match="cannot tell"):
        detect_format("payments.xls")
