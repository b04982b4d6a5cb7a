"""Exports of violations and their case status as XLSX or CSV (what the bureaus' spreadsheets take)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from openpyxl import Workbook
from starlette.responses import Response

from fundtrail_schemas.regions import full_name, is_known

from ...adapters import stats
from ...core.problems import ProblemError, make_problem
from ..deps import Reader, SessionDep
from ..openapi import problem_responses
from ..violation_query import ViolationQuery

router = APIRouter(prefix="/v1/exports", tags=["violations"])

ZONE = ZoneInfo(stats.ZONE)
MAX_ROWS = 50_000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Column header (zh / en) and how to read it from a row; times in Asia/Shanghai, amounts in yuan.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("违规编号", "violation_id"),
    ("规则", "rule_id"),
    ("规则版本", "rule_version"),
    ("部门", "department"),
    ("严重程度", "severity"),
    ("状态", "status"),
    ("地区代码", "region_code"),
    ("地区", "region_name"),
    ("指标文号", "fund_doc_no"),
    ("项目", "project_id"),
    ("涉及金额（元）", "amount_yuan"),
    ("发生时间", "occurred_at"),
    ("发现时间", "raised_at"),
    ("状态变更时间", "status_changed_at"),
    ("负责人", "assignee"),
    ("整改期限", "due_date"),
    ("说明", "explanation_zh"),
    ("Explanation", "explanation_en"),
    ("法律依据", "legal_basis"),
)


def _local(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")


def _record(row: Any) -> dict[str, Any]:
    amount = (row.evidence or {}).get("values", {}).get("amount") if isinstance(row.evidence, dict) else None
    mapping = row._mapping
    due = mapping.get("due_date")
    return {
        "violation_id": str(row.violation_id),
        "rule_id": row.rule_id,
        "rule_version": row.rule_version,
        "department": row.department,
        "severity": row.severity,
        "status": row.status,
        "region_code": row.region_code,
        "region_name": full_name(row.region_code) if is_known(row.region_code) else "",
        "fund_doc_no": row.fund_doc_no or "",
        "project_id": row.project_id or "",
        # Exact decimal text: fen are integers, yuan have two places.
        "amount_yuan": f"{amount // 100}.{amount % 100:02d}" if isinstance(amount, int) else "",
        "occurred_at": _local(row.occurred_at),
        "raised_at": _local(row.raised_at),
        "status_changed_at": _local(row.status_changed_at),
        "assignee": mapping.get("assignee") or "",
        "due_date": "" if due is None else str(due),
        "explanation_zh": row.explanation_zh,
        "explanation_en": row.explanation_en,
        "legal_basis": row.legal_basis,
    }


def _csv(records: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([h for h, _ in COLUMNS])
    for rec in records:
        writer.writerow([rec[k] for _, k in COLUMNS])
    # BOM: Excel opens UTF-8 CSV as Chinese text only with it.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _xlsx(records: list[dict[str, Any]]) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("违规清单")
    ws.append([h for h, _ in COLUMNS])
    for rec in records:
        ws.append([rec[k] for _, k in COLUMNS])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@router.get(
    "/violations",
    responses={**problem_responses(413), 200: {"content": {XLSX: {}, "text/csv": {}}}},
    summary="Export violations and case status",
)
async def export_violations(
    principal: Reader,
    session: SessionDep,
    flt: ViolationQuery,
    format: Annotated[Literal["xlsx", "csv"], Query(description="xlsx or csv")] = "xlsx",
) -> Response:
    """Violations matching the filters of GET /v1/violations, with their case status, newest first."""
    rows = [] if flt is None else list(await stats.export_rows(session, flt, MAX_ROWS))
    if len(rows) > MAX_ROWS:
        raise ProblemError(make_problem(413, f"more than {MAX_ROWS} violations match; narrow the filters",
                                        slug="export-too-large"))
    records = [_record(r) for r in rows]
    stamp = datetime.now(ZONE).strftime("%Y%m%d-%H%M")
    body, media = (_csv(records), "text/csv; charset=utf-8") if format == "csv" else (_xlsx(records), XLSX)
    headers = {"Content-Disposition": f'attachment; filename="violations-{stamp}.{format}"'}
    return Response(body, media_type=media, headers=headers)
