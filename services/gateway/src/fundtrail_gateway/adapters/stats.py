"""SQL aggregates over violations for the console: counts, the county overview, exports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, Row, and_, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from .repository import ViolationFilter, _region_clause, _where, vi

# Months and days are those of Jiangmen, whatever the server's zone.
ZONE = "Asia/Shanghai"
TERMINAL = ("rectified", "dismissed", "resolved")


def _filters(flt: ViolationFilter) -> list[Any]:
    return [
        _region_clause(vi.c.region_code, flt.prefix),
        None if flt.department is None else vi.c.department == flt.department,
        None if flt.severity is None else vi.c.severity == flt.severity,
        None if flt.rule_id is None else vi.c.rule_id == flt.rule_id,
        None if flt.status is None else vi.c.status == flt.status,
        None if flt.raised_from is None else vi.c.raised_at >= flt.raised_from,
        None if flt.raised_until is None else vi.c.raised_at < flt.raised_until,
        None if flt.fund_doc_no is None else vi.c.fund_doc_no == flt.fund_doc_no,
    ]


def _amount() -> Any:
    # Rules name the money they judged `amount` (fen) among the evidence values; not every rule has one.
    value = vi.c.evidence["values"]["amount"]
    return case((func.jsonb_typeof(value) == "number", cast(value.astext, BigInteger)), else_=None)


def _overdue(today: date) -> Any:
    # due_date (整改期限) arrives with the case-assignment change; without the column nothing is overdue.
    due = vi.c.get("due_date")
    if due is None:
        return literal(False)
    return and_(due.is_not(None), due < today, vi.c.status.not_in(TERMINAL))


async def department_counts(session: AsyncSession, flt: ViolationFilter) -> dict[str, int]:
    """How many violations match per department."""
    stmt = _where(select(vi.c.department, func.count()).group_by(vi.c.department), *_filters(flt))
    return {str(d): int(n) for d, n in (await session.execute(stmt)).all()}


async def overview_rows(
    session: AsyncSession, prefix: str | None, month_from: str | None, month_until: str | None, today: date
) -> Sequence[Row[Any]]:
    """Counts and amounts per county, month (of the event), department, severity and status."""
    county = func.substr(vi.c.region_code, 1, 6).label("county")
    month = func.to_char(func.timezone(ZONE, vi.c.occurred_at), "YYYY-MM").label("month")
    stmt = select(
        county,
        month,
        vi.c.department,
        vi.c.severity,
        vi.c.status,
        func.count().label("n"),
        func.coalesce(func.sum(_amount()), 0).label("amount_fen"),
        func.count().filter(_overdue(today)).label("overdue"),
    ).group_by(county, month, vi.c.department, vi.c.severity, vi.c.status)
    stmt = _where(
        stmt,
        _region_clause(vi.c.region_code, prefix),
        None if month_from is None else month >= month_from,
        None if month_until is None else month <= month_until,
    )
    return (await session.execute(stmt)).all()


async def export_rows(session: AsyncSession, flt: ViolationFilter, limit: int) -> Sequence[Row[Any]]:
    """Matching violations, newest first, at most `limit` (+1 to tell the caller it was cut)."""
    stmt = _where(select(vi), *_filters(flt))
    stmt = stmt.order_by(vi.c.raised_at.desc(), vi.c.violation_id.desc()).limit(limit + 1)
    return (await session.execute(stmt)).all()
