"""Helpers behind the root ``conftest.py`` fixtures (real servers for tests, or external ones).

* :func:`start_test_kafka` / :func:`start_test_postgres` start throw-away nodes on free ports;
* :class:`ExternalPostgres` gives a server named by a URL (``FUNDTRAIL_TEST_DATABASE_URL``) the same
  ``url`` / ``create_database`` / ``drop_database`` interface as :class:`PostgresNode`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from ._util import free_port, free_ports
from .kafka import KafkaNode
from .kafka_auth import BrokerSecurity, apply_principals
from .keycloak import KeycloakNode
from .postgres import PostgresNode

__all__ = [
    "KAFKA_BOOTSTRAP_ENV",
    "TEST_DATABASE_URL_ENV",
    "ExternalPostgres",
    "PostgresServer",
    "dedicated_test_kafka",
    "start_secure_test_kafka",
    "start_test_kafka",
    "start_test_keycloak",
    "start_test_postgres",
    "world_traversable_tmpdir",
]

KAFKA_BOOTSTRAP_ENV = "FUNDTRAIL_TEST_KAFKA_BOOTSTRAP"
TEST_DATABASE_URL_ENV = "FUNDTRAIL_TEST_DATABASE_URL"
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresServer(Protocol):
    """What the ``pg_node`` fixture returns: a :class:`PostgresNode` or an :class:`ExternalPostgres`."""

    def url(self, dbname: str = ...) -> str: ...
    def create_database(self, name: str) -> str: ...
    def drop_database(self, name: str, *, force: bool = ...) -> None: ...


class ExternalPostgres:
    """A PostgreSQL server we did not start, known by a SQLAlchemy URL (``postgresql+psycopg://...``).

    ``create_database`` needs the URL's role to have CREATEDB."""

    def __init__(self, url: str) -> None:
        self._parts = urlsplit(url)
        if not self._parts.scheme.startswith("postgresql"):
            raise ValueError(f"not a PostgreSQL URL: {url!r}")

    def url(self, dbname: str = "fundtrail") -> str:
        return urlunsplit(self._parts._replace(path=f"/{dbname}"))

    def _libpq_uri(self) -> str:
        return urlunsplit(self._parts._replace(scheme="postgresql"))

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(self._libpq_uri(), autocommit=True)

    def create_database(self, name: str) -> str:
        from psycopg import sql

        if not _IDENT_RE.match(name):
            raise ValueError(f"invalid database name {name!r}")
        with self._admin() as conn:
            if conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str, *, force: bool = True) -> None:
        from psycopg import sql

        if not _IDENT_RE.match(name):
            raise ValueError(f"invalid database name {name!r}")
        query = "DROP DATABASE IF EXISTS {} WITH (FORCE)" if force else "DROP DATABASE IF EXISTS {}"
        with self._admin() as conn:
            conn.execute(sql.SQL(query).format(sql.Identifier(name)))

    def __repr__(self) -> str:
        p = self._parts
        return f"ExternalPostgres({p.hostname}:{p.port}{p.path})"


def world_traversable_tmpdir(prefix: str) -> Path:
    """A fresh temp dir (mode 0755) that an unprivileged user can reach.

    pytest's own ``tmp_path`` lives under ``/tmp/pytest-of-root`` (0700) when run as root, which
    the PostgreSQL system user cannot enter."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def start_test_kafka(home: Path, heap: str = "512m") -> KafkaNode:
    """Start a Kafka node on two free ports in ``home`` (reusing the jars in deploy/kafka/lib)."""
    port, controller_port = free_ports(2)
    node = KafkaNode(home, port, controller_port, heap=heap)
    node.start(detach=False)
    return node


def start_test_keycloak(home: Path) -> KeycloakNode:
    """Start Keycloak on a free port with the fundtrail realm imported (allow minutes on a busy machine)."""
    # Generous: on a loaded 2-core machine a first start (with Quarkus re-augmentation) took over 3 minutes.
    node = KeycloakNode(home, free_port(), startup_timeout=480.0)
    node.start()
    try:
        node.import_realm()
    except BaseException:
        node.stop()
        raise
    return node


def start_secure_test_kafka(home: Path, heap: str = "512m") -> KafkaNode:
    """Start a SASL/SCRAM + ACL node on free ports with every principal of the registry and its ACLs
    (passwords in ``home/users``; ``node.security.client(user)`` gives a user's client settings)."""
    port, controller_port = free_ports(2)
    node = KafkaNode(home, port, controller_port, heap=heap, security=BrokerSecurity(home / "users"))
    node.start(detach=False)
    try:
        apply_principals(node.bootstrap, node.security)  # type: ignore[arg-type]
    except BaseException:
        node.stop()
        raise
    return node


def start_test_postgres(home: Path | None = None) -> PostgresNode:
    """Start a PostgreSQL node on a free port (``home`` defaults to a fresh world-traversable tmp dir)."""
    home = home or world_traversable_tmpdir("fundtrail-pg-")
    node = PostgresNode(home, free_port(), max_connections=200)
    node.start()
    return node


def remove_tree(path: Path) -> None:
    """Remove a test home (files may belong to the PostgreSQL system user; we are root then)."""
    if os.environ.get("FUNDTRAIL_TEST_KEEP_DATA"):
        return
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def dedicated_test_kafka(home: Path) -> Iterator[str]:
    """A broker of its own for one test directory, so suites never see each other's messages.

    Topic names are fixed by the contract, so suites that run workers consuming a whole topic
    (fund-tracker, compliance, end to end) each get a broker. An external broker
    (FUNDTRAIL_TEST_KAFKA_BOOTSTRAP) is shared as is.
    """
    external = os.environ.get(KAFKA_BOOTSTRAP_ENV)
    if external:
        yield external
        return
    node = start_test_kafka(home)
    try:
        yield node.bootstrap
    finally:
        node.stop()
