"""Run the app behind a real uvicorn server on loopback (tests, benchmark)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
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
