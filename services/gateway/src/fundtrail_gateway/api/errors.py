"""Every error becomes an RFC 9457 problem document (application/problem+json)."""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..core.problems import PROBLEM_MEDIA_TYPE, FieldProblem, Problem, ProblemError, make_problem

log = logging.getLogger(__name__)


def problem_response(
    problem: Problem, request: Request | None = None, headers: dict[str, str] | None = None
) -> Response:
    """Serialise a problem; `instance` defaults to the request path."""
    body = problem.model_dump(mode="json", exclude_none=True)
    if request is not None and "instance" not in body:
        body["instance"] = request.url.path
    return Response(orjson.dumps(body), status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(request)"


async def _problem_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.problem, request, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
        headers["Allow"] = ", ".join(_allowed_methods(request))
    problem = make_problem(exc.status_code, detail)
    return problem_response(problem, request, headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every documented method at this path (Starlette's 405 names only the first matching route's)."""
    patterns = getattr(request.app.state, "allow_patterns", None)
    if patterns is None:
        patterns = [
            (re.compile("^" + re.sub(r"\{[^/{}]+\}", "[^/]+", path) + "$"), sorted(m.upper() for m in item))
            for path, item in request.app.openapi().get("paths", {}).items()
        ]
        request.app.state.allow_patterns = patterns
    path = request.url.path
    return sorted({m for regex, methods in patterns if regex.match(path) for m in methods})


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [FieldProblem(field=_field(tuple(e.get("loc", ()))), message=str(e.get("msg", ""))) for e in exc.errors()]
    problem = make_problem(422, "the request is not valid", slug="validation-error", errors=errors)
    return problem_response(problem, request)


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(make_problem(500, "an unexpected error occurred; it has been logged"), request)


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem handlers."""
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unhandled)
