"""The app factory and the server entrypoint."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.routing import APIRoute

from fundtrail_runtime.kafka_admin import ensure_topics
from fundtrail_schemas.telemetry import setup_tracing

from .adapters.database import make_engine, make_sessionmaker
from .adapters.importer import ImportPool
from .adapters.keys import server_verifier, token_codec
from .adapters.publisher import KafkaPublisher
from .adapters.ratelimit import SharedRateLimiter
from .adapters.rulepacks import load_packs
from .adapters.trails import TrailStore
from .api.console_static import install_console
from .api.errors import install_error_handlers
from .api.fastpath import TrailFastPath
from .api.guard import RequestGuard
from .api.openapi import install_openapi
from .api.routers import (
    audit,
    checkpoints,
    console,
    dev,
    events,
    exports,
    funds,
    health,
    imports,
    proofs,
    rules,
    stats,
    trails,
    violations,
)
from .core.pagecache import PageCache
from .core.ratelimit import RateLimiter
from .core.recent import ExpiringMap
from .metrics import GatewayMetrics, MetricsMiddleware
from .runtime import Runtime
from .settings import GatewaySettings

log = logging.getLogger(__name__)

SERVICE_NAME = "fundtrail-gateway"
DESCRIPTION = """\
Tamper-evident audit trails of rural-revitalization special funds.

* **bureau** tokens publish events for their own region (`POST /v1/events`, `POST /v1/imports`);
* **compliance** tokens read trails and violations inside their region and act on cases there;
* **auditor** tokens read everything and fetch proofs;
* **admin** tokens publish rule packs.

Every error is an RFC 9457 problem document (`application/problem+json`). Ids outside the caller's
region answer 404, exactly like ids that do not exist.
"""

TAGS = [
    {"name": "events", "description": "Publishing events and reading accepted ones"},
    {"name": "trails", "description": "The log entries about a fund, project, payment or vendor"},
    {"name": "funds", "description": "Where the money of a fund is"},
    {"name": "violations", "description": "Violations, case actions and the live stream"},
    {"name": "proofs", "description": "Signed checkpoints, inclusion and consistency proofs (RFC 9162)"},
    {"name": "rules", "description": "Departments, rule packs and rule versions"},
    {"name": "operations", "description": "Health and metrics"},
]


def _runtime(settings: GatewaySettings) -> Runtime:
    verifier, key_source = server_verifier(settings)
    return Runtime(
        settings=settings,
        codec=verifier,
        key_source=key_source,
        publisher=KafkaPublisher(settings.kafka_bootstrap_servers, send_timeout=settings.kafka_send_timeout_seconds),
        limiter=(limiter := RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)),
        shared_limiter=SharedRateLimiter(
            settings.database_url if settings.rate_limit_backend == "postgresql" else None,
            settings.rate_limit_window_seconds, limiter,
        ),
        imports=ImportPool(settings.import_workers, settings.import_budget_seconds, settings.import_memory_bytes),
        recent_ids=ExpiringMap(settings.recent_ids_ttl_seconds, settings.recent_ids_max),
        pending_cases=ExpiringMap(settings.case_pending_ttl_seconds, 100_000),
        page_cache=PageCache(settings.trail_cache_bytes, settings.trail_cache_probe_seconds),
    )


async def _ensure_topics(bootstrap: str) -> None:
    try:
        created = await anyio.to_thread.run_sync(ensure_topics, bootstrap)
    except Exception as exc:
        # Reads work without Kafka; publishing answers 503 until the broker is back.
        log.warning("could not ensure Kafka topics at %s: %s", bootstrap, exc)
        return
    if created:
        log.info("created topics %s", ", ".join(created))


def create_app(settings: GatewaySettings) -> FastAPI:
    """Build the app; the database engine opens and the producer closes with the lifespan."""
    runtime = _runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime.key_source is not None:
            # Discovery and the first JWKS fetch: without keys no request could be authenticated.
            await runtime.key_source.start()
        runtime.packs = load_packs(settings.rulepack_dir)
        runtime.engine = make_engine(settings)
        runtime.sessions = make_sessionmaker(runtime.engine)
        runtime.trails = TrailStore(settings)
        await runtime.trails.open()
        await runtime.shared_limiter.open()
        if settings.ensure_topics:
            await _ensure_topics(settings.kafka_bootstrap_servers)
        # Everything built so far lives as long as the process: move it out of the collector's reach.
        # A full collection otherwise walks ~200k long-lived objects and stalls every request for ~60 ms.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            if runtime.key_source is not None:
                await runtime.key_source.stop()
            runtime.imports.close()
            await runtime.shared_limiter.close()
            await runtime.trails.close()
            await runtime.engine.dispose()
            runtime.engine = runtime.sessions = runtime.trails = None
            await anyio.to_thread.run_sync(runtime.publisher.close)

    app = FastAPI(
        title="fundtrail gateway",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.metrics = GatewayMetrics()
    install_error_handlers(app)
    for module in (events, imports, trails, funds, violations, proofs, audit, checkpoints, rules, health, console,
                   stats, exports):
        app.include_router(module.router)
    if settings.dev_sign_in:
        app.state.dev_signer = token_codec(settings, signing=True)
        app.include_router(dev.router)
    install_openapi(app)
    install_console(app, settings.console_dir)
    # Inside the metrics (and tracing) middleware: answers from the page cache are counted and traced too.
    trail_routes = {r.path.split("/")[2]: r for r in trails.router.routes if isinstance(r, APIRoute)}
    app.add_middleware(TrailFastPath, routes=trail_routes)
    # Before routing and authentication (NUL characters, rate limit, body size), inside the metrics.
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics, fastapi_app=app)
    if settings.enable_tracing:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        setup_tracing(SERVICE_NAME)
        # Probes and scrapes are not traced (patterns are searched in the URL without its query: anchor
        # them, or "/v1/funds/already-ready/trail" would not be traced either). No internal span per ASGI
        # send/receive message: together they cost more than the request's own span and add nothing to it.
        FastAPIInstrumentor.instrument_app(
            app, excluded_urls="/health$,/ready$,/metrics$", exclude_spans=["receive", "send"]
        )
    return app


def app_from_env() -> FastAPI:
    """App factory for `uvicorn --factory fundtrail_gateway.main:app_from_env` (several workers)."""
    settings = GatewaySettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(settings)


def run() -> None:
    """Console script: serve on the configured host and port with uvicorn."""
    import uvicorn

    settings = GatewaySettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower())
