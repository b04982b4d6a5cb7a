"""Trails: every leaf of the log about a fund, project, payment or vendor, in order."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from ...adapters.trails import TrailStoreUnavailable
from ...core.cursor import cursor_or_problem, encode_cursor
from ...core.pagecache import RenderedPage, TrailEnd, etag_matches, etag_of
from ...core.problems import not_found, unavailable
from ...core.scoping import evidence_rules
from ...runtime import Runtime
from ...settings import GatewaySettings
from ..deps import Reader
from ..models import TrailPage
from ..openapi import problem_responses
from ..paging import CursorQuery, LimitQuery, link, next_link, page_size, read_prefix, seg

router = APIRouter(prefix="/v1", tags=["trails"])

IdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
Subject = Literal["fund", "project", "payment", "vendor"]
_CURSOR_SHAPE = (int,)
# A final page never changes; the cache is private because what a page holds depends on the token's region.
FINAL_CACHE_CONTROL = "private, max-age=3600, immutable"
LIVE_CACHE_CONTROL = "private, no-cache"


def page_headers(page: RenderedPage, *, final: bool) -> dict[str, str]:
    """Validators, caching rules and the next link of a trail page (200 and 304 alike)."""
    headers = {
        "ETag": page.etag,
        "Cache-Control": FINAL_CACHE_CONTROL if final else LIVE_CACHE_CONTROL,
        "Vary": "Authorization",
    }
    if page.next_url:
        headers["Link"] = f'<{page.next_url}>; rel="next"'
    return headers


async def still_current(runtime: Runtime, page: RenderedPage) -> bool:
    """Whether a cached page is what rendering it now would give: a final page always is, the end of a
    trail while nothing follows it (TrailStoreUnavailable when PostgreSQL does not answer)."""
    if page.end is None:
        return True
    if runtime.trails is None:
        raise TrailStoreUnavailable("the database is not connected")
    return not await runtime.trails.continues_after(page.end.subject, page.end.key, page.end.last_seq)


def _page_response(request: Request, page: RenderedPage, final: bool) -> Response:
    headers = page_headers(page, final=final)
    if etag_matches(request.headers.get("if-none-match"), page.etag):
        return Response(status_code=304, headers=headers)
    return Response(page.body, media_type="application/json", headers=headers)


async def trail_response(
    subject: Subject,
    key: str,
    request: Request,
    principal: Reader,
    cursor: str | None,
    limit: int | None,
) -> Response:
    """One page of a trail; 404 when nothing of it lies in the caller's region."""
    # The runtime straight from the app: every dependency node costs FastAPI time on each request.
    runtime: Runtime = request.app.state.runtime
    prefix = read_prefix(principal)
    # The region scope is part of the key: a county user never gets a page rendered for the auditor.
    # Only pages of valid requests are cached, so a hit needs no cursor check.
    cache_key = (prefix, request.scope["path"], request.scope["query_string"])
    cache = runtime.page_cache
    cached = cache.get(cache_key)
    if cached is not None and runtime.trails is not None and cache.claim_probe(now := time.monotonic()):
        cache.observe(await runtime.trails.change_count(), now)
        cached = cache.get(cache_key)
    if cached is not None:
        try:
            if await still_current(runtime, cached):
                return _page_response(request, cached, final=cached.end is None)
        except TrailStoreUnavailable as exc:
            raise unavailable("the database is not reachable") from exc
        cache.discard(cache_key, cached)
    after = cursor_or_problem("trail", cursor, _CURSOR_SHAPE)
    settings = runtime.settings
    if runtime.trails is None:
        raise unavailable("the database is not connected")
    try:
        chunk = await runtime.trails.page(subject, key, prefix, after[0] if after else -1, page_size(settings, limit),
                                          evidence_rules(runtime.packs) if prefix is not None else None)
    except TrailStoreUnavailable as exc:
        raise unavailable("the database is not reachable") from exc
    if not chunk.count and after is None:
        raise not_found(f"no {subject} {key!r} in your region")
    next_cursor = encode_cursor("trail", [chunk.last_seq]) if chunk.more else None
    next_url = next_link(settings, request, next_cursor) if next_cursor else None
    body = orjson.dumps({
        "subject": subject,
        "id": key,
        # Entries come rendered by PostgreSQL (see adapters.trails); they are spliced in, not re-encoded.
        "items": orjson.Fragment(b"[" + chunk.items + b"]"),
        "next": next_url,
        "next_cursor": next_cursor,
    })
    # A page is final once an entry follows it (one writer appends in leaf order) and nothing on it can change;
    # the trail's last page is kept too, checked against the trail's end on each use.
    end = None if chunk.more or chunk.last_seq is None else TrailEnd(subject, key, chunk.last_seq)
    page = RenderedPage(body, etag_of(body), next_url, end)
    if chunk.settled and chunk.count:
        if cache.claim_probe(now := time.monotonic()):
            cache.observe(await runtime.trails.change_count(), now)
        cache.put(cache_key, page)
    return _page_response(request, page, final=chunk.settled and chunk.more)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A page of the trail",
        "headers": {
            "ETag": {"description": "Strong validator of the page (send it back in If-None-Match)",
                     "schema": {"type": "string"}},
            "Cache-Control": {"description": f"`{FINAL_CACHE_CONTROL}` once the page can no longer change, "
                              f"otherwise `{LIVE_CACHE_CONTROL}`", "schema": {"type": "string"}},
            "Link": {"description": 'RFC 8288 `rel="next"` link when there is a next page',
                     "schema": {"type": "string"}},
        },
    },
    304: {"description": "Not modified: If-None-Match names the page's current ETag"},
    **problem_responses(400, 404),
}

_DOC = (
    "Each entry is one leaf of the tamper-evident log, in log order: accepted events with the ledger state "
    "before and after them, violations and case actions interleaved, with trace ids. Everything shown is "
    "parsed from the leaf bytes (`leaf_data`, base64), whose hash `leaf_hash` the inclusion proof covers; "
    "`prev` names the previous entry of each subject, and `verification` lists the checks the entry failed "
    "(leaf_hash, leaf_unparseable, column_mismatch, chain_gap). In region-filtered views each entry declares "
    "the trail's entries outside the region since the entry shown before it (`withheld_before`), and `prev` "
    "must name the last of them. "
    "Compliance users see only entries inside their region; an id with nothing in their region is a 404."
)


@router.get(
    "/funds/{fund_doc_no}/trail",
    response_model=TrailPage,
    responses=_RESPONSES,
    summary="Trail of a fund",
    description=_DOC,
)
async def fund_trail(
    fund_doc_no: IdPath, request: Request, principal: Reader,
    cursor: CursorQuery = None, limit: LimitQuery = None,
) -> Response:
    """The trail of a fund (by allocation document number) across every level."""
    return await trail_response("fund", fund_doc_no, request, principal, cursor, limit)


@router.get(
    "/projects/{project_id}/trail",
    response_model=TrailPage,
    responses=_RESPONSES,
    summary="Trail of a project",
    description=_DOC,
)
async def project_trail(
    project_id: IdPath, request: Request, principal: Reader,
    cursor: CursorQuery = None, limit: LimitQuery = None,
) -> Response:
    """The trail of a project."""
    return await trail_response("project", project_id, request, principal, cursor, limit)


@router.get(
    "/payments/{payment_id}/trail",
    response_model=TrailPage,
    responses=_RESPONSES,
    summary="Trail of a payment",
    description=_DOC,
)
async def payment_trail(
    payment_id: IdPath, request: Request, principal: Reader,
    cursor: CursorQuery = None, limit: LimitQuery = None,
) -> Response:
    """The trail of a payment."""
    return await trail_response("payment", payment_id, request, principal, cursor, limit)


@router.get(
    "/vendors/{vendor_id}/trail",
    response_model=TrailPage,
    responses=_RESPONSES,
    summary="Trail of a vendor",
    description=_DOC,
)
async def vendor_trail(
    vendor_id: IdPath, request: Request, principal: Reader,
    cursor: CursorQuery = None, limit: LimitQuery = None,
) -> Response:
    """The trail of a vendor."""
    return await trail_response("vendor", vendor_id, request, principal, cursor, limit)


def fund_links(settings: GatewaySettings, fund_doc_no: str) -> dict[str, str]:
    """Links from a fund to its trail and violations."""
    return {
        "trail": link(settings, f"/v1/funds/{seg(fund_doc_no)}/trail"),
        "violations": link(settings, f"/v1/violations?fund_doc_no={seg(fund_doc_no)}"),
    }
