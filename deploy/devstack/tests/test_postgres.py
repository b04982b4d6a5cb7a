"""The devstack PostgreSQL node: a real PostgreSQL 18 on 127.0.0.1."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from fundtrail_devstack import PostgresNode, free_port
from fundtrail_devstack.testing import ExternalPostgres, remove_tree, world_traversable_tmpdir

pytestmark = pytest.mark.integration


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_server_is_postgres_18_on_loopback(pg_node: object) -> None:
    if not isinstance(pg_node, PostgresNode):
        pytest.skip("external database configured")
    with psycopg.connect(pg_node.conninfo()) as conn:
        version = conn.execute("select version()").fetchone()[0]  # type: ignore[index]
        assert version.startswith("PostgreSQL 18."), version
        assert conn.execute("show server_version").fetchone()[0].startswith("18.")  # type: ignore[index]
        assert conn.execute("show listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("select host(inet_server_addr())").fetchone() == ("127.0.0.1",)
        assert conn.execute("show port").fetchone() == (str(pg_node.port),)
        assert conn.execute("show unix_socket_directories").fetchone() == ("",)
        assert conn.execute("show max_connections").fetchone() == ("200",)
        assert conn.execute("show fsync").fetchone() == ("on",)
        assert conn.execute("show server_encoding").fetchone() == ("UTF8",)
    if os.geteuid() == 0:  # never as root: the postmaster belongs to the unprivileged user
        pid = pg_node.pid()
        assert pid is not None
        uid_line = next(
            line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:")
        )
        assert int(uid_line.split()[1]) != 0


def test_database_url_is_a_working_sqlalchemy_url(database_url: str) -> None:
    import sqlalchemy as sa

    assert database_url.startswith("postgresql+psycopg://")
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("create table if not exists probe (id bigint primary key, note text)"))
            conn.execute(sa.text("insert into probe values (1, '乡村振兴') on conflict do nothing"))
            assert conn.execute(sa.text("select note from probe where id = 1")).scalar_one() == "乡村振兴"
    finally:
        engine.dispose()


def test_fresh_database_is_new_and_empty(fresh_database_url: str, database_url: str) -> None:
    assert fresh_database_url != database_url
    with psycopg.connect(_libpq(fresh_database_url)) as conn:
        tables = conn.execute("select count(*) from pg_tables where schemaname = 'public'").fetchone()
        assert tables == (0,)


def test_external_postgres_adapter_urls() -> None:
    ext = ExternalPostgres("postgresql+psycopg://u:p@db.example:5433/app")
    assert ext.url("other") == "postgresql+psycopg://u:p@db.example:5433/other"
    with pytest.raises(ValueError):
        ext.create_database("bad name; drop")


def test_lifecycle_start_stop_status_restart(record_property: Callable[[str, object], None]) -> None:
    home = world_traversable_tmpdir("fundtrail-pg-lifecycle-")
    node = PostgresNode(home, free_port())
    try:
        st = node.status()
        assert not st.running and not st.initialized
        assert node.stop() is False
        t0 = time.monotonic()
        node.start()
        record_property("pg_cold_start_seconds", round(time.monotonic() - t0, 2))
        st = node.status()
        assert st.running and st.ready and st.initialized and st.pid
        url = node.create_database("fundtrail")
        assert url == f"postgresql+psycopg://fundtrail@127.0.0.1:{node.port}/fundtrail"
        assert node.create_database("fundtrail") == url  # idempotent
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute("create table kept (v int)")
            conn.execute("insert into kept values (42)")

        assert node.stop() is True
        st = node.status()
        assert not st.running and not st.ready and st.pid is None

        t0 = time.monotonic()
        node.start()
        record_property("pg_warm_start_seconds", round(time.monotonic() - t0, 2))
        with psycopg.connect(_libpq(url)) as conn:
            assert conn.execute("select v from kept").fetchone() == (42,)
        node.drop_database("fundtrail")
        assert not node.database_exists("fundtrail")
    finally:
        node.stop()
        remove_tree(home)
