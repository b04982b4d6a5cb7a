"""RFC 9457 problem documents: the one shape of every error the gateway answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Problem types are URNs: stable identifiers that need no web site to exist.
TYPE_PREFIX = "urn:fundtrail:problem:"


class FieldProblem(BaseModel):
    """One invalid field (or item) of a request."""

    model_config = ConfigDict(extra="allow")

    field: str = Field(description="Dotted path of the offending field, e.g. body.0.amount_fen")
    message: str


class Problem(BaseModel):
    """application/problem+json (RFC 9457). Extension members are allowed."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:fundtrail:problem:not-found",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "no fund 江财农〔2026〕18号 in your region",
                    "instance": "/v1/funds/江财农〔2026〕18号/trail",
                }
            ]
        },
    )

    type: str = Field(description="URI reference identifying the problem type")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] | None = Field(None, description="Field-level problems (validation errors)")


class ProblemError(Exception):
    """Raised anywhere below a route; the app answers with the problem document."""

    def __init__(self, problem: Problem, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(problem.detail or problem.title)
        self.problem = problem
        self.headers = dict(headers or {})


def slug_for(status: int) -> str:
    """Default problem-type slug of an HTTP status (e.g. 404 → not-found)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return phrase.lower().replace(" ", "-").replace("'", "")


def title_for(status: int) -> str:
    """Standard reason phrase of an HTTP status."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def make_problem(
    status: int,
    detail: str | None = None,
    *,
    slug: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    errors: Sequence[FieldProblem] | None = None,
    **extensions: Any,
) -> Problem:
    """Build a problem document; `slug` names the specific problem type."""
    return Problem(
        type=TYPE_PREFIX + (slug or slug_for(status)),
        title=title or title_for(status),
        status=status,
        detail=detail,
        instance=instance,
        errors=list(errors) if errors is not None else None,
        **extensions,
    )


def not_found(detail: str, instance: str | None = None) -> ProblemError:
    """404; also the answer for ids outside the caller's region, so existence does not leak."""
    return ProblemError(make_problem(404, detail, instance=instance))


def conflict(detail: str, *, slug: str = "conflict", **extensions: Any) -> ProblemError:
    """409 for impossible state transitions."""
    return ProblemError(make_problem(409, detail, slug=slug, **extensions))


def bad_request(detail: str, *, slug: str = "bad-request") -> ProblemError:
    """400."""
    return ProblemError(make_problem(400, detail, slug=slug))


def unprocessable(detail: str, errors: Sequence[FieldProblem] = (), *, slug: str = "validation-error",
                  **extensions: Any) -> ProblemError:
    """422 with field-level errors."""
    return ProblemError(make_problem(422, detail, slug=slug, errors=list(errors), **extensions))


def unauthorized(detail: str, reason: str | None = "invalid-token") -> ProblemError:
    """401 with the Bearer challenge (RFC 6750); `reason` None means no token was presented at all."""
    if reason is None:
        # RFC 6750 3.1: a request without credentials gets the challenge without an error code.
        return ProblemError(make_problem(401, detail, slug="unauthorized"),
                            headers={"WWW-Authenticate": 'Bearer realm="fundtrail"'})
    description = "".join(c for c in detail if c.isascii() and c.isprintable() and c not in '"\\')
    return ProblemError(
        make_problem(401, detail, slug="unauthorized", reason=reason),
        headers={"WWW-Authenticate": f'Bearer realm="fundtrail", error="invalid_token", '
                                     f'error_description="{description}"'},
    )


def forbidden(detail: str) -> ProblemError:
    """403: authenticated but the role does not allow the operation."""
    return ProblemError(make_problem(403, detail, slug="forbidden"))


def too_many_requests(retry_after: float) -> ProblemError:
    """429 with Retry-After in whole seconds (at least 1)."""
    seconds = max(1, int(retry_after + 0.999))
    return ProblemError(
        make_problem(429, f"rate limit exceeded; retry after {seconds} s", slug="rate-limited"),
        headers={"Retry-After": str(seconds)},
    )


def unavailable(detail: str, retry_after: int = 5) -> ProblemError:
    """503 when a dependency (Kafka, PostgreSQL) is not reachable."""
    return ProblemError(make_problem(503, detail, slug="unavailable"), headers={"Retry-After": str(retry_after)})
