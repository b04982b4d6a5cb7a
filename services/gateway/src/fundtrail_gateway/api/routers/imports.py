"""Spreadsheet imports: CSV / XLSX (or JSONL) files mapped row by row with the shared tabular mapping."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from fundtrail_schemas.decode import ReasonCode
from fundtrail_schemas.events import now_utc
from fundtrail_schemas.headers import event_headers
from fundtrail_schemas.tabular import TOO_MANY_ROWS, RowError

from ...adapters.importer import FormProblem, ImportForm, ImportInterrupted, ImportTooExpensive, ImportUnreadable
from ...core.ingest import Item, Outcome, publish_refusal
from ...core.problems import FieldProblem, ProblemError, make_problem, unavailable
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
    responses=problem_responses(400, 413, 415, 422, 503),
    summary="Import a CSV or XLSX file",
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "The .csv, .xlsx or .jsonl export"},
            **ImportForm.model_json_schema()["properties"],
        },
    }}}}},
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
    request: Request, principal: Bureau, runtime: RuntimeDep, publisher: PublisherDep, session: SessionDep,
) -> Response:
    """Import a bureau's file and publish its valid rows."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise ProblemError(make_problem(415, f"send multipart/form-data, not {ctype or 'no content type'}"))
    body = await request.body()
    settings = runtime.settings
    # The form is parsed and the file mapped in a worker process within a time budget: neither a large
    # upload nor a hostile cell holds the event loop.
    try:
        result = await runtime.imports.map(body, ctype, now_utc(), settings.max_import_rows)
    except ImportTooExpensive as exc:
        raise ProblemError(make_problem(413, f"{exc}; split the file or check its cells",
                                        slug="import-too-costly")) from exc
    except ImportInterrupted as exc:
        raise unavailable(str(exc), retry_after=1) from exc
    except ImportUnreadable as exc:
        raise ProblemError(make_problem(422, str(exc), slug="unreadable-file")) from exc
    if isinstance(result, FormProblem):
        errors_out = [FieldProblem(field=f, message=m) for f, m in result.errors] or None
        raise ProblemError(make_problem(result.status, result.message, slug=result.slug, errors=errors_out))
    mapped, form, filename = result.mapped, result.form, result.filename
    dry_run = form.dry_run
    if any(e.reason == TOO_MANY_ROWS for e in mapped.errors):
        raise ProblemError(make_problem(413, mapped.errors[0].message, slug="too-many-rows"))
    errors: list[RowError] = list(mapped.errors)
    items: list[Item] = []
    rows_of: dict[int, int] = {}
    for row in mapped.rows:
        refusal = publish_refusal(principal, row.region_code, row.source_bureau)
        if refusal is not None:
            field = refusal.errors[0].field if refusal.errors else "region_code"
            errors.append(RowError(row.row, field, refusal.message, ReasonCode.REGION_FORBIDDEN.value))
            continue
        rows_of[len(items)] = row.row
        event_id = uuid.UUID(row.event_id)
        items.append(Item(len(items), Outcome.ACCEPTED, event_id=event_id, wire=(
            row.key, row.value,
            event_headers(row.event_type, row.schema_version),
        )))
    if not dry_run:
        await publish_items(items, runtime, publisher, session, request.url.path, principal.subject)
    for item in items:
        if item.outcome is Outcome.REJECTED and item.problem is not None:
            detail = item.problem.detail or "not published"
            errors.append(RowError(rows_of[item.index], "(row)", detail, "not_published"))

    def listed(outcome: Outcome) -> list[dict[str, Any]]:
        return [{"row": rows_of[i.index], "event_id": i.event_id} for i in items if i.outcome is outcome]

    report = {
        "format": mapped.format,
        "total_rows": mapped.total_rows,
        "valid_rows": len(mapped.rows),
        "rejected_rows": sorted({e.row for e in errors}),
        "errors": [e.as_dict() for e in sorted(errors, key=lambda e: (e.row, e.field))],
        "dry_run": dry_run,
        "accepted": listed(Outcome.ACCEPTED),
        "already_recorded": listed(Outcome.ALREADY_RECORDED),
    }
    if report["accepted"] or report["already_recorded"]:
        return json_response(report, status_code=202)
    only_region = errors and all(e.reason == ReasonCode.REGION_FORBIDDEN.value for e in errors)
    status = 403 if only_region else 422
    raise ProblemError(make_problem(status, f"no row of {filename!r} could be published",
                                    slug="import-rejected", report=report))
