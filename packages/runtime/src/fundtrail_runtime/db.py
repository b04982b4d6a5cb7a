"""Database helpers: engines and migrations (alembic history in schemas/migrations)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver whatever the URL says (postgres://, postgresql://)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def conninfo(database_url: str) -> str:
    """A libpq connection string from the shared SQLAlchemy-style DATABASE_URL."""
    return normalize_url(database_url).replace("postgresql+psycopg://", "postgresql://", 1)


async def connect_worker(database_url: str, application_name: str) -> psycopg.AsyncConnection[Any]:
    """A worker's connection (not autocommit: every batch is one explicit transaction).

    psycopg prepares a statement after 5 runs, and PostgreSQL then settles on a generic plan made
    while the tables were small: `invoice_no = ANY(%s)` stayed a sequential scan and grew to 30 ms
    a batch at 20,000 payments. A fresh plan per batch statement costs well under 1 ms.
    """
    conn = await psycopg.AsyncConnection.connect(conninfo(database_url), application_name=application_name)
    await conn.execute("SET plan_cache_mode = force_custom_plan")
    await conn.commit()
    return conn


def unnest_insert(table: str, columns: Sequence[tuple[str, str]]) -> str:
    """`INSERT … SELECT FROM unnest(arrays)`: a whole batch in one statement which, unlike COPY or
    executemany (a Bind/Execute and psycopg's per-row work for each row), shares a pipeline with the
    batch's other writes. Every array goes in binary (`%b`): psycopg's text arrays quote each JSON
    document in Python. JSON columns take text (already serialized) cast by PostgreSQL; so do array
    columns (`uuid[]`: each row's array as its literal, see `array_literal`), because unnest would
    flatten an array of arrays."""
    arrays, picks = [], []
    for n, (_, t) in enumerate(columns):
        if t in ("json", "jsonb"):
            arrays.append(f"%b::text[]::{t}[]")
            picks.append(f"c{n}")
        elif t.endswith("[]"):
            arrays.append("%b::text[]")
            picks.append(f"c{n}::{t}")
        else:
            arrays.append(f"%b::{t}[]")
            picks.append(f"c{n}")
    names = ", ".join(f"c{n}" for n in range(len(columns)))
    return (
        f"INSERT INTO {table} ({', '.join(name for name, _ in columns)})"
        f" SELECT {', '.join(picks)} FROM unnest({', '.join(arrays)}) AS u({names})"
    )


def json_rows(table: str, columns: Sequence[tuple[str, str]], source: str = "%s::json") -> str:
    """`SELECT … FROM json_to_recordset(<one JSON parameter>)`: a whole batch of rows as one JSON
    array of objects keyed by column name (see `json_param`), typed by PostgreSQL's input functions
    (timestamptz from RFC 3339, bytea from "\\x<hex>"; json and jsonb columns take the nested
    JSON as it is). One parameter instead of one array per column: psycopg's per-element work for
    ~80 arrays a batch was the tracker's largest cost; orjson writes the rows in native code."""
    names = ", ".join(name for name, _ in columns)
    typed = ", ".join(f"{name} {t}" for name, t in columns)
    return f"SELECT {names} FROM json_to_recordset({source}) AS {table}({typed})"


def json_insert(table: str, columns: Sequence[tuple[str, str]], suffix: str = "") -> str:
    """`INSERT INTO table … SELECT … FROM json_to_recordset(%s::json)` (see `json_rows`), then `suffix`
    (an ON CONFLICT clause)."""
    names = ", ".join(name for name, _ in columns)
    return f"INSERT INTO {table} ({names}) {json_rows(table, columns)}{' ' + suffix if suffix else ''}"


def upsert_suffix(key: Sequence[str], columns: Sequence[tuple[str, str]]) -> str:
    """`ON CONFLICT (key) DO UPDATE SET` every other column to the new row's value."""
    sets = ", ".join(f"{name} = EXCLUDED.{name}" for name, _ in columns if name not in key)
    return f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"


def bytea_text(value: bytes | None) -> str | None:
    """bytea in PostgreSQL's hex input format, for a JSON row."""
    return None if value is None else "\\x" + value.hex()


def array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of values whose text needs no quoting (uuids, numbers)."""
    return "{" + ",".join(str(v) for v in values) + "}"


def columns(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Rows turned into one list per column (the parameters of an `unnest_insert`)."""
    return [list(column) for column in zip(*rows, strict=True)]


def sync_engine(url: str, **kwargs: object) -> Engine:
    """A synchronous engine (migrations, tools, tests)."""
    return create_engine(normalize_url(url), pool_pre_ping=True, **kwargs)


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at our migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Apply migrations up to `revision` (idempotent)."""
    command.upgrade(alembic_config(url), revision)


class SchemaBehind(RuntimeError):
    """A service that may not migrate found the schema short of the migrations it was built with."""


def upgrade_or_check(url: str) -> None:
    """At a service's start: migrate when logged in as the schema's owner, else insist the schema is current.

    The workers log in as members of fundtrail_writer (migration 0011), which own nothing and so can
    neither migrate nor drop the trail's append-only triggers; the owner migrates first (the deploy's
    `migrate` one-shot). A database without alembic_version is new: migrating it is the owner's job,
    and a non-owner's attempt fails with PostgreSQL's own permission error.
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            owner = conn.exec_driver_sql(
                "SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c"
                " WHERE c.oid = to_regclass('alembic_version')").scalar()
            if owner is None or owner:
                conn.close()
                upgrade(url)
                return
            current = set(MigrationContext.configure(conn).get_current_heads())
            user = conn.exec_driver_sql("SELECT current_user").scalar()
    finally:
        engine.dispose()
    wanted = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    if current != wanted:
        raise SchemaBehind(
            f"database schema is at {sorted(current)}, this build needs {sorted(wanted)}; {user} does not own"
            " the schema and may not migrate it: run `fundtrail db upgrade` as the owner first")
