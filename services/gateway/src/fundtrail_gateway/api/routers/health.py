"""Liveness, readiness and Prometheus metrics (no authentication)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import Response

from ...core.problems import make_problem
from ...runtime import Runtime
from ..deps import RuntimeDep
from ..errors import problem_response
from ..models import Health, Readiness
from ..openapi import problem_responses

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

_OK = b'{"status":"ok"}'
POSTGRESQL, KAFKA = "postgresql", "kafka"
READY_RETRY_AFTER_SECONDS = 5

Probe = Callable[[Runtime, float], Awaitable[str | None]]


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Response:
    """Always ok while the process serves requests (also the benchmark baseline)."""
    return Response(_OK, media_type="application/json")


async def _check_postgresql(runtime: Runtime, within: float) -> str | None:
    """None when PostgreSQL answers `select 1` through the app's engine and the trail pool, else why not."""
    if runtime.engine is None or runtime.trails is None:
        return "not connected"
    try:
        with anyio.fail_after(within):
            async with runtime.engine.connect() as conn:
                await conn.execute(text("select 1"))
            await runtime.trails.ping(within)
    except TimeoutError:
        return f"no answer within {within:g} s"
    except Exception as exc:  # any failure of a probe is "not ready", never a 500
        return f"{type(exc).__name__}: {exc}"
    return None


async def _check_kafka(runtime: Runtime, within: float) -> str | None:
    """None when the producer has bootstrapped (the first probe bootstraps it), else why not."""
    try:
        # Waiting for another bootstrap and then bootstrapping could take twice the budget: the probe
        # stops waiting after it, and the thread finishes (bounded) on its own.
        with anyio.fail_after(within):
            await anyio.to_thread.run_sync(runtime.publisher.connect, within, abandon_on_cancel=True)
    except TimeoutError:
        return f"no answer within {within:g} s"
    except Exception as exc:  # any failure of a probe is "not ready", never a 500
        return f"{type(exc).__name__}: {exc}"
    return None


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: problem_responses(503)[503]},
    summary="Readiness",
)
async def ready(request: Request, runtime: RuntimeDep) -> Response:
    """200 when PostgreSQL answers and the Kafka producer is connected; otherwise a 503 naming what is not."""
    within = runtime.settings.ready_timeout_seconds
    failures: dict[str, str | None] = {}

    async def check(name: str, probe: Probe) -> None:
        failures[name] = await probe(runtime, within)

    async with anyio.create_task_group() as tg:
        tg.start_soon(check, POSTGRESQL, _check_postgresql)
        tg.start_soon(check, KAFKA, _check_kafka)
    failing = [name for name in (POSTGRESQL, KAFKA) if failures[name] is not None]
    is_ready = not failing
    if is_ready != runtime.ready:
        # Log transitions only: probes come every few seconds.
        if is_ready:
            log.info("ready: %s and %s answer", POSTGRESQL, KAFKA)
        else:
            log.warning("not ready: %s", "; ".join(f"{name}: {failures[name]}" for name in failing))
        runtime.ready = is_ready
    checks = {name: "ok" if failures[name] is None else "unavailable" for name in (POSTGRESQL, KAFKA)}
    if is_ready:
        return Response(orjson.dumps({"status": "ready", "checks": checks}), media_type="application/json")
    # Names only: the reasons (hosts, ports, driver messages) go to the log, not to an unauthenticated caller.
    problem = make_problem(
        503, f"not ready: {' and '.join(failing)} unavailable", slug="not-ready", checks=checks, failing=failing
    )
    return problem_response(problem, request, {"Retry-After": str(READY_RETRY_AFTER_SECONDS)})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
)
async def metrics(request: Request) -> Response:
    """Request counts and latencies in the Prometheus text format."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
