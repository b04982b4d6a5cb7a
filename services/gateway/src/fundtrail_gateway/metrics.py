"""Prometheus request metrics as a pure ASGI middleware (cheap on the hot path)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class GatewayMetrics:
    """One registry per app so several apps (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fundtrail_gateway_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "fundtrail_gateway_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.published = Counter(
            "fundtrail_gateway_published", "Messages published to Kafka", ["topic"], registry=self.registry
        )
        self.streams = Gauge("fundtrail_gateway_sse_streams", "Open SSE streams", registry=self.registry)


def _route_template(app: Any, scope: Scope) -> str:
    """The template of the route a request was never routed to (e.g. refused by the guard in front)."""
    for route in app.router.routes:
        # FastAPI keeps included routers as one entry each (no `path`): look at their own routes.
        for candidate in getattr(getattr(route, "original_router", None), "routes", None) or [route]:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                return str(getattr(candidate, "path", "other"))
    return "unmatched"


class MetricsMiddleware:
    """Counts requests and observes latency by method and route template (never the raw path)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics, fastapi_app: Any) -> None:
        self.app, self.metrics, self.fastapi_app = app, metrics, fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or _route_template(self.fastapi_app, scope)
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
