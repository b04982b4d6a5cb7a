"""Aggregates for the console: violations per department, the county overview, the monthly report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from starlette.responses import Response

from fundtrail_schemas.regions import counties, full_name, is_known

from ...adapters import stats
from ...core.overview import aggregate
from ...core.problems import not_found
from ..deps import Reader, SessionDep
from ..openapi import problem_responses
from ..paging import json_response, read_prefix
from ..violation_query import ViolationQuery

router = APIRouter(prefix="/v1/stats", tags=["violations"])

ZONE = ZoneInfo(stats.ZONE)
MonthQuery = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM (Asia/Shanghai)")]
CountyQuery = Annotated[str | None, Query(pattern=r"^\d{6}$", description="A county-level region code")]


@router.get("/violations/by-department", responses=problem_responses(400), summary="Violations per department")
async def by_department(principal: Reader, session: SessionDep, flt: ViolationQuery) -> Response:
    """How many violations match the filters (those of GET /v1/violations) in each department."""
    counts = {} if flt is None else await stats.department_counts(session, flt)
    return json_response({"counts": counts, "total": sum(counts.values())})


def _scope(principal: Reader, county: str | None) -> str | None:
    prefix = read_prefix(principal)
    if county is None:
        return prefix
    if not is_known(county) or (prefix is not None and not county.startswith(prefix) and not prefix.startswith(county)):
        raise not_found(f"no county {county} in your region")
    return county if prefix is None or len(prefix) <= len(county) else prefix


async def _cells(
    principal: Reader, session: SessionDep, county: str | None, month_from: str | None, month_until: str | None
) -> list[dict[str, Any]]:
    prefix = _scope(principal, county)
    today = datetime.now(ZONE).date()
    rows = await stats.overview_rows(session, prefix, month_from, month_until, today)
    return [cell.as_dict(full_name(cell.county)) for cell in aggregate(rows)]


@router.get("/overview", responses=problem_responses(404), summary="County overview per month")
async def overview(
    principal: Reader,
    session: SessionDep,
    county: CountyQuery = None,
    month_from: MonthQuery = None,
    month_until: MonthQuery = None,
) -> Response:
    """Per county and month (of the triggering event): violations by department, severity and status, the
    amounts concerned (fen, from the rules' `amount` evidence), rectification rate and overdue cases."""
    cells = await _cells(principal, session, county, month_from, month_until)
    names = {c.code: c.name for c in counties()}
    return json_response({"counties": names, "items": cells})


@router.get("/monthly-report", responses=problem_responses(404), summary="Monthly report of one county")
async def monthly_report(
    principal: Reader,
    session: SessionDep,
    county: Annotated[str, Query(pattern=r"^\d{6}$")],
    month: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")],
) -> Response:
    """The figures of the printable monthly report: the month's cell and the year to date."""
    cells = await _cells(principal, session, county, f"{month[:4]}-01", month)
    this_month = next((c for c in cells if c["month"] == month), None)
    return json_response({
        "county": county,
        "county_name": full_name(county),
        "month": month,
        "generated_at": datetime.now(ZONE).isoformat(timespec="seconds"),
        "month_figures": this_month,
        "year_to_date": cells,
    })
