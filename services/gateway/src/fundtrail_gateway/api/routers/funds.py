"""Funds: where the money of a fund is, level by level."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...adapters import repository
from ...core.cursor import cursor_or_problem, encode_cursor
from ...core.positions import build_tree
from ...core.problems import not_found
from ..deps import Reader, SessionDep, SettingsDep
from ..models import FundOut, FundsPage
from ..openapi import problem_responses
from ..paging import CursorQuery, LimitQuery, json_response, next_link, page_size, read_prefix
from .trails import IdPath, fund_links

router = APIRouter(prefix="/v1/funds", tags=["funds"])


def _fund_fields(row: Any) -> dict[str, Any]:
    return {
        "fund_doc_no": row.fund_doc_no,
        "title": row.title,
        "purpose_category": row.purpose_category,
        "allocated_fen": row.allocated_fen,
        "deadline": row.deadline,
        "region_code": row.region_code,
    }


@router.get("", response_model=FundsPage, responses=problem_responses(400), summary="Funds in your region")
async def list_funds(
    request: Request, principal: Reader, session: SessionDep, settings: SettingsDep,
    cursor: CursorQuery = None, limit: LimitQuery = None,
) -> Response:
    """Funds that hold money somewhere in the caller's region, by document number."""
    after = cursor_or_problem("funds", cursor, (str,))
    size = page_size(settings, limit)
    rows = await repository.funds_page(session, read_prefix(principal), after[0] if after else None, size)
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor("funds", [rows[-1].fund_doc_no]) if more else None
    next_url = next_link(settings, request, next_cursor) if next_cursor else None
    items = [{**_fund_fields(r), "links": fund_links(settings, r.fund_doc_no)} for r in rows]
    return json_response({"items": items, "next": next_url, "next_cursor": next_cursor}, next_url=next_url)


@router.get(
    "/{fund_doc_no}",
    response_model=FundOut,
    responses=problem_responses(404),
    summary="Where is the money",
)
async def get_fund(fund_doc_no: IdPath, principal: Reader, session: SessionDep, settings: SettingsDep) -> Response:
    """A tree city → county → town → village: received, passed down, contracted, paid and idle at each node."""
    prefix = read_prefix(principal)
    positions = await repository.fund_positions(session, fund_doc_no, prefix)
    row = await repository.fund(session, fund_doc_no)
    if row is None or (prefix is not None and not positions):
        raise not_found(f"no fund {fund_doc_no!r} in your region")
    body = {
        **_fund_fields(row),
        "allocated_at": row.allocated_at,
        "positions": [node.as_dict() for node in build_tree(positions)],
        "links": fund_links(settings, fund_doc_no),
    }
    return json_response(body)
