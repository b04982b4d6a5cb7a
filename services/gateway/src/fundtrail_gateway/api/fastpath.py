"""Final trail pages answered from memory before FastAPI routes the request.

For a page already in the page cache, FastAPI's routing, dependency solving and parameter parsing cost
more than half of the request. This middleware answers such a request itself once it has made the
route's checks (a valid bearer token, a reader role; the guard in front took the rate limit) and found
the page under the caller's region scope, path and query. Anything else (no token, a bad one, another
role, a page not in the cache) goes on to the route, which answers it as always: this path only ever
repeats a 200 (or its 304) that the route gave for the same path, query and scope, and for the last
page of a trail only while the trail has not gone on past it (one indexed query).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..adapters.trails import TrailStoreUnavailable
from ..core.pagecache import etag_matches
from ..runtime import Runtime
from .deps import READER_ROLES
from .guard import verified_principal
from .paging import read_prefix
from .routers.trails import page_headers, still_current


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class TrailFastPath:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, routes: dict[str, Any]) -> None:
        self.app = app
        # Route objects by collection ("funds", ...), so metrics label hits with the route template.
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self._answer(scope, send):
            await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
        if scope["type"] != "http" or scope["method"] != "GET":
            return False
        path: str = scope["path"]
        if not path.endswith("/trail"):
            return False
        runtime: Runtime = scope["app"].state.runtime
        if not len(runtime.page_cache) or runtime.page_cache.probe_due(time.monotonic()):
            return False  # nothing cached, or the route must first check the trail rows did not change
        # The guard in front verified the token and took the rate limit already.
        verified = verified_principal(scope)
        if verified is None:
            return False
        principal = verified[1]
        if not principal.has_any(READER_ROLES):
            return False
        key = (read_prefix(principal), path, scope["query_string"])
        page = runtime.page_cache.get(key)
        if page is None:
            return False
        try:
            if not await still_current(runtime, page):
                runtime.page_cache.discard(key, page)
                return False
        except TrailStoreUnavailable:
            return False  # the route answers 503
        route = self.routes.get(path.split("/", 3)[2])
        if route is not None:
            scope["route"] = route
        headers = page_headers(page, final=page.end is None)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if_none_match = _header(scope, b"if-none-match")
        if etag_matches(if_none_match.decode("latin-1") if if_none_match else None, page.etag):
            await send({"type": "http.response.start", "status": 304, "headers": raw})
            await send({"type": "http.response.body", "body": b""})
            return True
        raw += [(b"content-length", str(len(page.body)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": page.body})
        return True
