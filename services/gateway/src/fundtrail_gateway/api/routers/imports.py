"""Spreadsheet imports: CSV / XLSX (or JSONL) files mapped row by row with the shared tabular mapping."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import Response

from fundtrail_schemas.decode import ReasonCode
from fundtrail_schemas.events import now_utc
from fundtrail_schemas.tabular import RowDefaults, RowError, detect_format, map_file

from ...core.ingest import Item, Outcome
from ...core.problems import FieldProblem, ProblemError, make_problem
from ..deps import Bureau, PublisherDep, RuntimeDep, SessionDep
from ..models import ImportReport
from ..openapi import problem_responses
from ..paging import json_response
from .events import publish_items

router = APIRouter(prefix="/v1/imports", tags=["events"])


@router.post(
    "",
    status_code=202,
    response_model=ImportReport,
    responses=problem_responses(400, 413, 415, 503),
    summary="Import a CSV or XLSX file",
    description=(
        "Maps each row of the bureau's export to a contract event with the same mapping and row-level report "
        "as `fundtrail publish FILE` (`fundtrail_schemas.tabular`), then publishes the valid rows of the "
        "bureau's region like `POST /v1/events`. Event ids derive from the source records, so importing the "
        "same file again publishes nothing new (those rows are listed in `already_recorded`). With "
        "`dry_run` nothing is published. 202 when at least one row was accepted or already recorded (or, "
        "for a dry run, is valid); otherwise 422 with the report in the problem's `report` member."
    ),
)
async def import_file(
    request: Request,
    principal: Bureau,
    runtime: RuntimeDep,
    publisher: PublisherDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="The .csv, .xlsx or .jsonl export")],
    source_bureau: Annotated[str | None, Form(max_length=128, description="Default source bureau")] = None,
    region_code: Annotated[
        str | None, Form(pattern=r"^(\d{6}|\d{9}|\d{12})$", description="Default region code of the rows")
    ] = None,
    event_type: Annotated[str | None, Form(max_length=64, description="Event type of every row")] = None,
    sheet: Annotated[str | None, Form(max_length=128, description="XLSX sheet name (default: the first)")] = None,
    dry_run: Annotated[bool, Form(description="Validate and report only")] = False,
    file_format: Annotated[
        Literal["csv", "xlsx", "jsonl"] | None,
        Form(alias="format", description="File format; by default the file name's extension decides"),
    ] = None,
) -> Response:
    """Import a bureau's file and publish its valid rows."""
    try:
        fmt = file_format or detect_format(file.filename or "")
    except ValueError as exc:
        raise ProblemError(make_problem(422, str(exc), slug="unsupported-file", errors=[
            FieldProblem(field="body.file", message="name a .csv, .xlsx or .jsonl file, or give `format`")
        ])) from exc
    data = await file.read()
    defaults = RowDefaults(source_bureau=source_bureau, region_code=region_code, event_type=event_type)
    mapped = map_file(data, fmt, defaults=defaults, published_at=now_utc(), sheet=sheet)
    errors: list[RowError] = list(mapped.errors)
    items: list[Item] = []
    rows_of: dict[int, int] = {}
    for row in mapped.rows:
        if not principal.can_publish_for(row.event.region_code):
            errors.append(RowError(row.row, "region_code", f"region {row.event.region_code} is outside your "
                                   f"bureau's region {principal.region}", ReasonCode.REGION_FORBIDDEN.value))
            continue
        rows_of[len(items)] = row.row
        items.append(Item(len(items), Outcome.ACCEPTED, event=row.event, event_id=row.event.event_id))
    if not dry_run:
        await publish_items(items, runtime, publisher, session, request.url.path)
    for item in items:
        if item.outcome is Outcome.REJECTED and item.problem is not None:
            detail = item.problem.detail or "not published"
            errors.append(RowError(rows_of[item.index], "(row)", detail, "not_published"))

    def listed(outcome: Outcome) -> list[dict[str, Any]]:
        return [{"row": rows_of[i.index], "event_id": i.event_id} for i in items if i.outcome is outcome]

    body = {
        "format": mapped.format,
        "total_rows": mapped.total_rows,
        "valid_rows": len(mapped.rows),
        "rejected_rows": sorted({e.row for e in errors}),
        "errors": [e.as_dict() for e in sorted(errors, key=lambda e: (e.row, e.field))],
        "dry_run": dry_run,
        "accepted": listed(Outcome.ACCEPTED),
        "already_recorded": listed(Outcome.ALREADY_RECORDED),
    }
    if body["accepted"] or body["already_recorded"]:
        return json_response(body, status_code=202)
    only_region = errors and all(e.reason == ReasonCode.REGION_FORBIDDEN.value for e in errors)
    status = 403 if only_region else 422
    raise ProblemError(make_problem(status, f"no row of {file.filename!r} could be published",
                                    slug="import-rejected", report=body))
