"""The workers run as login roles in fundtrail_writer (migrations 0003 and 0011), as the deploy manifests
run them: both judge a demo subset on the real broker, and the role can neither rewrite the trail nor
switch off or drop its append-only triggers (issue 19)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fundtrail_devstack._util import wait_until
from fundtrail_devstack.run import write_demo
from fundtrail_devstack.stack import Stack, publish_file
from fundtrail_devstack.testing import PostgresServer
from fundtrail_runtime.db import SchemaBehind, conninfo, upgrade_or_check

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SEED, SIZE = 11, 0.05
TRAIL = ("trail_entry", "trail_node", "trail_checkpoint", "processed_event")


def _as(url: str, role: str) -> str:
    """`url` logged in as `role` (password = role name: test roles only)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{role}:{role}@{rest.partition('@')[2]}"


def _scalar(url: str, sql: str) -> Any:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def _wait(what: str, probe: Callable[[], bool], timeout: float, detail: Callable[[], str]) -> None:
    assert wait_until(probe, timeout, poll=0.5), f"timed out after {timeout:.0f}s waiting for {what}: {detail()}"


@pytest.fixture
def writer_roles(pg_node: PostgresServer, migrated_template: str) -> Iterator[dict[str, str]]:
    """A login role per worker, each a member of fundtrail_writer (what deploy's db-roles creates; the
    group itself is created by migration 0003, which the template has run)."""
    tag = uuid.uuid4().hex[:8]
    roles = {"fund-tracker": f"fundtrail_tracker_{tag}", "compliance": f"fundtrail_compliance_{tag}"}
    admin = conninfo(pg_node.url("postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        for role in roles.values():
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{role}' IN ROLE fundtrail_writer")
    try:
        yield roles
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for role in roles.values():
                conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_writer_role_workers_judge_events_and_cannot_rewrite_the_trail(
    pg_node: PostgresServer, kafka_bootstrap: str, writer_roles: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home = Path(tmp_path_factory.mktemp("writer-role"))
    owner_url = pg_node.create_database(f"wr_{uuid.uuid4().hex[:12]}")
    urls = {name: _as(owner_url, role) for name, role in writer_roles.items()}
    stack = Stack(home=home / "stack", bootstrap=kafka_bootstrap, database_url=owner_url,
                  group_suffix=f"-wr-{uuid.uuid4().hex[:6]}",
                  extra_env={name: {"DATABASE_URL": url} for name, url in urls.items()})
    stack.prepare()  # the owner migrates (the deploy's `migrate` one-shot)
    stack.start(("fund-tracker", "compliance"))
    try:
        stack.wait_ready(timeout=180)
        path = home / "demo.jsonl"
        total, expected = write_demo(path, SEED, SIZE)
        assert expected, "the demo subset seeds violations"
        result = publish_file(path, kafka_bootstrap, home / "publisher")
        assert result.returncode == 0, result.stdout + result.stderr

        def count(sql: str) -> int:
            return int(_scalar(owner_url, sql))

        def tails() -> str:
            return "\n".join(f"--- {n}:\n{s.tail()}" for n, s in stack.services.items())

        _wait(f"{total} events in the trail", lambda: count("SELECT count(*) FROM processed_event") >= total,
              240, tails)
        _wait("violations judged", lambda: count("SELECT count(*) FROM violation") > 0, 180, tails)
        # A signed checkpoint too (every 2 s in the stack): the UPDATE refused below then has a row to hit.
        _wait("a checkpoint", lambda: count("SELECT count(*) FROM trail_checkpoint") > 0, 120, tails)
        assert count("SELECT count(*) FROM trail_entry") >= total
        # A window rule's owner may commit its violation before the batch that routed the event
        # commits its processed marks (the routed record is acknowledged before that commit): wait.
        _wait("events marked judged", lambda: count("SELECT count(*) FROM compliance_processed") > 0, 120, tails)
        # Both workers really are connected as their own writer roles, not as the owner.
        with psycopg.connect(conninfo(owner_url), autocommit=True) as conn:
            users = {r for (r,) in conn.execute(
                "SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = current_database()")}
        assert set(writer_roles.values()) <= users, users
        assert all(s.alive() for s in stack.services.values()), tails()
    finally:
        codes = stack.stop()
    assert {n: c for n, c in codes.items() if c not in (0, -15, None)} == {}

    refused = [f"UPDATE {t} SET {c} = {c}" for t, c in
               (("trail_entry", "seq"), ("processed_event", "event_id"), ("trail_node", "hash"))]
    refused += ["UPDATE trail_checkpoint SET signed_at = signed_at"]  # the trigger admits only a new note
    refused += [f"DELETE FROM {t}" for t in TRAIL] + [f"TRUNCATE {t}" for t in TRAIL]
    refused += [f"ALTER TABLE {t} DISABLE TRIGGER {t}_append_only" for t in TRAIL]
    refused += [f"ALTER TABLE {t} DISABLE TRIGGER ALL" for t in TRAIL]
    refused += [f"DROP TRIGGER {t}_append_only ON {t}" for t in TRAIL]
    refused += [f"DROP TRIGGER {t}_no_truncate ON {t}" for t in TRAIL]
    refused += ["DROP TABLE trail_entry", "SET session_replication_role = replica"]
    for url in urls.values():
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            assert conn.execute("SELECT pg_has_role('fundtrail_writer', 'MEMBER')").fetchone() == (True,)
            for statement in refused:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    sizes = {t: int(_scalar(owner_url, f"SELECT count(*) FROM {t}")) for t in TRAIL}
    assert sizes["processed_event"] >= total and sizes["trail_checkpoint"] > 0, sizes


def test_a_writer_role_worker_refuses_to_start_on_a_schema_it_may_not_migrate(
    pg_node: PostgresServer, migrated_database_url: str, writer_roles: dict[str, str],
) -> None:
    writer = _as(migrated_database_url, writer_roles["fund-tracker"])
    upgrade_or_check(writer)  # current: nothing to do, and no attempt to migrate
    upgrade_or_check(migrated_database_url)  # the owner: an idempotent upgrade
    with psycopg.connect(conninfo(migrated_database_url), autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0010'")
    with pytest.raises(SchemaBehind, match=r"\['0010'\].*fundtrail db upgrade"):
        upgrade_or_check(writer)
    assert _scalar(migrated_database_url, "SELECT version_num FROM alembic_version") == "0010"
