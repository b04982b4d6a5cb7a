"""Run the app behind a real uvicorn server on loopback (tests, benchmark)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: Any, *, timeout: float = 30.0) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 in a background thread; yield its base URL; stop it on exit."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to `app` in process, with its lifespan running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client




# A valid two-version pack for tests (the real packs live in services/compliance/rulepacks).
SAMPLE_RULEPACK = """\
format: fundtrail.rulepack/v1
department: inspection
pack_version: 1
description: test pack
rules:
  - id: inspection.same_handler_approver
    version: 1
    catalogue_no: 17
    title_zh: 经办审批同一人
    title_en: Same handler and approver
    explanation_zh: "支付 {payment_id} 经办与审批相同"
    explanation_en: "Payment {payment_id} handled and approved by the same person"
    severity: high
    applies_to: [PaymentDisbursed]
    condition: "event.handler_id == event.approver_id"
    evidence:
      payment_id: "event.payment_id"
    legal_basis: 内部控制规范第十二条
    effective_from: 2020-01-01
    effective_until: 2026-01-01
  - id: inspection.same_handler_approver
    version: 2
    catalogue_no: 17
    title_zh: 经办审批同一人
    title_en: Same handler and approver
    explanation_zh: "支付 {payment_id} 经办与审批相同"
    explanation_en: "Payment {payment_id} handled and approved by the same person"
    severity: critical
    applies_to: [PaymentDisbursed]
    condition: "event.handler_id == event.approver_id"
    evidence:
      payment_id: "event.payment_id"
    legal_basis: 内部控制规范第十二条
    effective_from: 2026-01-01
"""


@dataclass(frozen=True)
class SeededGateway:
    """A gateway serving a seeded trail over real HTTP (the Go interop and witness tests)."""

    base_url: str
    database_url: str
    world: Any  # fundtrail_gateway.seed.World
    auditor_token: str
    log_vkey: str


@contextlib.contextmanager
def seeded_gateway(
    pg_node: Any, migrated_template: str, log_key: Any, workdir: Path, **overrides: Any
) -> Iterator[SeededGateway]:
    """Copy the migrated template, seed three counties with checkpoints, serve a gateway on loopback."""
    from datetime import UTC, datetime, timedelta

    import psycopg
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fundtrail_runtime.db import sync_engine
    from fundtrail_verify.note import NoteVerifier

    from .core.auth import Role
    from .core.tokens import TokenCodec
    from .main import create_app
    from .seed import LOG_ID, seed_world
    from .settings import GatewaySettings

    name = f"gw_{uuid.uuid4().hex}"
    admin = pg_node.url("postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    url = pg_node.url(name)
    try:
        engine = sync_engine(url)
        try:
            world = seed_world(engine, log_key)
        finally:
            engine.dispose()
        jwt_key = Ed25519PrivateKey.generate()
        (workdir / "jwt.pub.pem").write_bytes(jwt_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        (workdir / "inspection.yaml").write_text(SAMPLE_RULEPACK, encoding="utf-8")
        vkey = NoteVerifier.ed25519(LOG_ID, log_key.public_key()).vkey
        values: dict[str, Any] = {
            "database_url": url, "kafka_bootstrap_servers": "127.0.0.1:9", "environment": "test",
            "jwt_algorithm": "EdDSA", "jwt_public_key_file": workdir / "jwt.pub.pem", "rulepack_dir": workdir,
            "ensure_topics": False, "enable_tracing": False, "rate_limit_per_second": 1000.0,
            "rate_limit_burst": 10_000, "trail_vkey": vkey,
        }
        values.update(overrides)
        codec = TokenCodec("EdDSA", jwt_key.public_key(), signing_key=jwt_key, audience="fundtrail-gateway",
                           issuer="fundtrail")
        token = codec.issue("test-auditor", [Role.AUDITOR], None, now=datetime.now(UTC), ttl=timedelta(hours=2))
        with serve_in_thread(create_app(GatewaySettings(**values))) as base:
            yield SeededGateway(base, url, world, token, vkey)
    finally:
        with contextlib.suppress(Exception):
            pg_node.drop_database(name, force=True)
