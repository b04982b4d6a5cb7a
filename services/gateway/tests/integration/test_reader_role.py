"""The gateway runs as a login role in fundtrail_reader (migrations 0003 and 0010): every read answers, and
the role can write nothing (the deploy manifests give the gateway such a role)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_gateway.main import create_app
from fundtrail_gateway.seed import seed_world
from fundtrail_gateway.testing import running
from fundtrail_runtime.db import sync_engine

pytestmark = pytest.mark.integration


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


async def test_a_reader_role_gateway_serves_every_read_and_cannot_write(
    pg_node: Any, fresh_database: str, settings_factory: Callable[..., Any], log_key: Ed25519PrivateKey,
    auth: Callable[..., dict[str, str]],
) -> None:
    role = f"gw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_plain(pg_node.url("postgres")), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'reader' IN ROLE fundtrail_reader")  # type: ignore[arg-type]
    try:
        engine = sync_engine(fresh_database)
        try:
            c = seed_world(engine, log_key).counties["440705"]
        finally:
            engine.dispose()
        scheme, _, rest = fresh_database.partition("://")
        reader_url = f"{scheme}://{role}:reader@{rest.partition('@')[2]}"
        with psycopg.connect(_plain(reader_url), autocommit=True) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
            for statement in ("INSERT INTO trail_node (level, idx, hash) VALUES (9, 9, '\\x00')",
                              "UPDATE violation SET status = 'dismissed'", "DELETE FROM fund_position",
                              "CREATE TABLE reader_made (x int)"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)  # type: ignore[arg-type]
        app = create_app(settings_factory(database_url=reader_url, rate_limit_backend="memory"))
        # (/ready also needs the broker, which this test does not start.)
        paths = ["/v1/funds", f"/v1/funds/{c.fund_doc_no}", f"/v1/funds/{c.fund_doc_no}/trail",
                 f"/v1/projects/{c.project_id}/trail", "/v1/violations", f"/v1/violations/{c.violation_id}",
                 f"/v1/events/{c.event_ids[0]}", "/v1/checkpoints", "/v1/checkpoints/latest/note",
                 "/v1/proofs/checkpoint", "/v1/proofs/entries/3", "/v1/audit/leaves",
                 "/v1/stats/violations/by-department"]
        async with running(app) as client:
            answers = {p: (await client.get(p, headers=auth("auditor"))).status_code for p in paths}
        assert {p: s for p, s in answers.items() if s != 200} == {}, answers
    finally:
        with psycopg.connect(_plain(pg_node.url("postgres")), autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")  # type: ignore[arg-type]
            conn.execute(f"DROP ROLE IF EXISTS {role}")  # type: ignore[arg-type]
