"""Readiness against the real PostgreSQL and Kafka, and against ports where nothing listens."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis

from fundtrail_gateway.main import create_app
from fundtrail_gateway.settings import GatewaySettings
from fundtrail_gateway.testing import free_port, running

pytestmark = pytest.mark.integration


def _closed_database_url() -> str:
    return f"postgresql+psycopg://fundtrail@127.0.0.1:{free_port()}/fundtrail"


async def test_ready_when_postgresql_and_kafka_answer(
    settings_factory: Callable[..., GatewaySettings], kafka_bootstrap: str
) -> None:
    app = create_app(settings_factory(kafka_bootstrap_servers=kafka_bootstrap))
    async with running(app) as c:
        r = await c.get("/ready")
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ready", "checks": {"postgresql": "ok", "kafka": "ok"}}
        # The producer bootstrapped by the probe is the one publishing uses afterwards.
        assert app.state.runtime.publisher._producer is not None
        assert (await c.get("/ready")).status_code == 200
        schemathesis.openapi.from_dict(app.openapi())["/ready"]["GET"].validate_response(r)


async def test_not_ready_when_postgresql_does_not_answer(
    settings_factory: Callable[..., GatewaySettings], kafka_bootstrap: str
) -> None:
    settings = settings_factory(
        database_url=_closed_database_url(), kafka_bootstrap_servers=kafka_bootstrap, ready_timeout_seconds=2
    )
    app = create_app(settings)
    async with running(app) as c:
        # Liveness has no dependencies: the process is fine, it just cannot serve yet.
        assert (await c.get("/health")).status_code == 200
        r = await c.get("/ready")
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == "5"
        problem = r.json()
        assert problem["type"] == "urn:fundtrail:problem:not-ready" and problem["status"] == 503
        assert problem["failing"] == ["postgresql"]
        assert problem["checks"] == {"postgresql": "unavailable", "kafka": "ok"}
        assert "postgresql" in problem["detail"] and problem["instance"] == "/ready"
        schemathesis.openapi.from_dict(app.openapi())["/ready"]["GET"].validate_response(r)


async def test_not_ready_when_kafka_does_not_answer(settings_factory: Callable[..., GatewaySettings]) -> None:
    settings = settings_factory(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", ready_timeout_seconds=0.5)
    async with running(create_app(settings)) as c:
        r = await c.get("/ready")
        assert r.status_code == 503
        assert r.json()["failing"] == ["kafka"]
        assert r.json()["checks"] == {"postgresql": "ok", "kafka": "unavailable"}


async def test_not_ready_names_every_failing_dependency(settings_factory: Callable[..., GatewaySettings]) -> None:
    settings = settings_factory(
        database_url=_closed_database_url(), kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        ready_timeout_seconds=0.5,
    )
    async with running(create_app(settings)) as c:
        r = await c.get("/ready")
        assert r.status_code == 503
        assert r.json()["failing"] == ["postgresql", "kafka"]
        assert r.json()["detail"] == "not ready: postgresql and kafka unavailable"
