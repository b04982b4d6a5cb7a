"""The violation filters of the console's aggregate and export endpoints, read like GET /v1/violations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from fundtrail_schemas.cases import CaseStatus
from fundtrail_schemas.types import Department, Severity

from ..adapters.repository import ViolationFilter
from ..core.problems import FieldProblem, unprocessable
from ..core.regions import DISJOINT, intersect, region_prefix
from .deps import Reader
from .paging import read_prefix

RegionQuery = Annotated[
    str | None, Query(pattern=r"^(\d{6}|\d{9}|\d{12})$", description="Only this region and the regions inside it")
]
# ISO-8601 with an explicit offset; a bare number is not a time here (pydantic would read epoch seconds).
TimeQuery = Annotated[
    str | None,
    Query(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$",
        description="ISO-8601 date-time with offset, e.g. 2026-03-01T00:00:00+08:00",
        json_schema_extra={"format": "date-time"},
    ),
]


def instant(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        errors = [FieldProblem(field=f"query.{name}", message=str(exc))]
        raise unprocessable(f"{name} is not a date-time", errors) from exc


async def violation_query(
    principal: Reader,
    department: Department | None = None,
    severity: Severity | None = None,
    rule_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    region: RegionQuery = None,
    status: CaseStatus | None = None,
    fund_doc_no: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    raised_from: TimeQuery = None,
    raised_until: TimeQuery = None,
) -> ViolationFilter | None:
    """The filter inside the caller's region, or None when the region asked for lies outside it."""
    scope = intersect(read_prefix(principal), region_prefix(region) if region else None)
    if scope is DISJOINT:
        return None
    return ViolationFilter(
        prefix=scope if isinstance(scope, str) else None,
        department=department.value if department else None,
        severity=severity.value if severity else None,
        rule_id=rule_id,
        status=status.value if status else None,
        raised_from=instant("raised_from", raised_from),
        raised_until=instant("raised_until", raised_until),
        fund_doc_no=fund_doc_no,
    )


ViolationQuery = Annotated[ViolationFilter | None, Depends(violation_query)]
