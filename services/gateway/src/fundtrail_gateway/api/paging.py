"""Page sizes, next links and JSON responses shared by the listing routes."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import Query, Request
from starlette.responses import Response

from ..core.auth import Principal
from ..core.regions import region_prefix
from ..settings import GatewaySettings

# The hard ceiling in the OpenAPI document; settings.max_page_size caps it further at run time.
MAX_LIMIT = 1000

LimitQuery = Annotated[
    int | None, Query(ge=1, le=MAX_LIMIT, description="Page size (capped by the server's maximum page size)")
]
CursorQuery = Annotated[
    str | None, Query(min_length=1, max_length=1024, description="Opaque cursor from a previous page's `next`")
]


def page_size(settings: GatewaySettings, limit: int | None) -> int:
    """The effective page size."""
    return min(limit or settings.default_page_size, settings.max_page_size)


# Characters a path may hold as they are (RFC 3986 pchar and "/"); everything else is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;="


def next_link(settings: GatewaySettings, request: Request, cursor: str) -> str:
    """Link to the next page: the same query with the new cursor."""
    url = request.url.include_query_params(cursor=cursor)
    # The path arrives decoded; ids may be non-ASCII (江财农〔2026〕18号) and a Link header is ASCII only.
    return f"{settings.public_base_url}{quote(url.path, safe=_PATH_SAFE)}?{url.query}"


def link(settings: GatewaySettings, path: str) -> str:
    """Absolute-or-relative link to an API path."""
    return settings.public_base_url + path


def seg(value: str) -> str:
    """A path segment, percent-encoded."""
    return quote(value, safe="")


def read_prefix(principal: Principal) -> str | None:
    """Region prefix every read of this principal is restricted to (None: everything)."""
    region = principal.read_region()
    return None if region is None else region_prefix(region)


def json_response(body: Any, *, status_code: int = 200, next_url: str | None = None) -> Response:
    """orjson-encoded JSON, with an RFC 8288 Link header when there is a next page."""
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else None
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers)
