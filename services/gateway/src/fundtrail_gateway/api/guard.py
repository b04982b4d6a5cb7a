"""The checks every request passes before routing and authentication, as one pure ASGI middleware.

1. A NUL character in the path or the query string is refused (400): PostgreSQL text cannot hold
   U+0000, so such a parameter would otherwise fail inside a query (a 500).
2. The rate limit, before anything costly: per authenticated subject when the bearer token is valid
   (the principal is kept in the request state, so the route does not verify the token again), else
   per client address. Counts are shared by every replica (`adapters.ratelimit`). Probes and the
   metrics scrape are not limited.
3. Bodies over the limit answer 413 as a problem document: at once when Content-Length declares
   it, or as soon as the streamed body passes it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.problems import PROBLEM_MEDIA_TYPE, Problem, make_problem, too_many_requests
from ..core.tokens import TokenError
from ..runtime import Runtime

PRINCIPAL_STATE = "fundtrail_principal"
UNLIMITED_PATHS = frozenset({"/health", "/ready", "/metrics"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def bearer_token(scope: Scope) -> str | None:
    """The credentials of an `Authorization: Bearer ...` header (the same parse as FastAPI's HTTPBearer)."""
    raw = _header(scope, b"authorization")
    if raw is None:
        return None
    scheme, _, credentials = raw.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


def verified_principal(scope: Scope) -> tuple[str, Any] | None:
    """(token, principal) the guard verified for this request, if any."""
    state = scope.get("state")
    return state.get(PRINCIPAL_STATE) if isinstance(state, dict) else None


async def _send_problem(send: Send, problem: Problem, path: str, headers: dict[str, str] | None = None) -> None:
    import orjson

    body = orjson.dumps({**problem.model_dump(mode="json", exclude_none=True), "instance": path})
    raw = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if "\x00" in path or b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            await _send_problem(send, make_problem(
                400, "the path or the query contains a NUL character (%00), which no parameter may hold",
                slug="nul-character"), path)
            return
        if path not in UNLIMITED_PATHS:
            wait = await self._rate_limit(scope)
            if wait is not None:
                err = too_many_requests(wait)
                await _send_problem(send, err.problem, path, err.headers)
                return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body_bytes:
            await _send_problem(send, _too_large(self.max_body_bytes), path, {"Connection": "close"})
            return
        await self.app(scope, self._counting(receive), send)

    async def _rate_limit(self, scope: Scope) -> float | None:
        runtime: Runtime = scope["app"].state.runtime
        key: str | None = None
        token = bearer_token(scope)
        # An oversized token is not parsed here either: the route refuses it for its size.
        if token is not None and len(token) <= runtime.settings.token_max_bytes:
            try:
                principal = runtime.codec.decode(token)
            except TokenError:
                pass  # the route answers 401; meanwhile the caller counts as anonymous
            else:
                scope.setdefault("state", {})[PRINCIPAL_STATE] = (token, principal)
                key = f"sub:{principal.subject}"
        settings = runtime.settings
        if key is not None:
            return await runtime.shared_limiter.hit(key, settings.rate_limit_per_second)
        client = scope.get("client")
        address = client[0] if client else "unknown"
        return await runtime.shared_limiter.hit(f"addr:{address}", settings.rate_limit_anonymous_per_second)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body_bytes

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the route: the app's handler turns it into the 413 problem document.
                    raise HTTPException(413, _too_large(limit).detail)
            return message

        return counted


def _too_large(limit: int) -> Problem:
    return make_problem(413, f"the request body is larger than {limit} bytes")
