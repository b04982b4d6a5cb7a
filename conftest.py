"""Root pytest fixtures: real Apache Kafka and PostgreSQL for integration tests.

All fixtures are lazy: a server starts only when a test (or another fixture) requests it, once per
session, and is stopped at session end.

* ``kafka_bootstrap`` (session) -> "127.0.0.1:PORT" of a throw-away Kafka 4 node (jars reused from
  deploy/kafka/lib), or ``$FUNDTRAIL_TEST_KAFKA_BOOTSTRAP`` if set.
* ``kafka_node`` (session) -> the :class:`fundtrail_devstack.KafkaNode` behind ``kafka_bootstrap``
  (skips the test when an external broker is configured).
* ``secure_kafka_node`` (session) -> a SASL/SCRAM + ACL node of its own with the registry's users
  (``fundtrail_schemas.kafka_acl``), always local.
* ``pg_node`` (session) -> a started :class:`fundtrail_devstack.PostgresNode` on a free port, or an
  :class:`fundtrail_devstack.testing.ExternalPostgres` for ``$FUNDTRAIL_TEST_DATABASE_URL``; both offer
  ``url(db)``, ``create_database(name) -> url``, ``drop_database(name)``.
* ``database_url`` (session) -> SQLAlchemy URL (``postgresql+psycopg://...``) of a fresh database
  created once per session (or ``$FUNDTRAIL_TEST_DATABASE_URL`` as is).
* ``fresh_database_url`` (function) -> URL of a new empty database (uuid name) on the session
  server, dropped (WITH FORCE) after the test. No migrations are run here.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fundtrail_devstack import KafkaNode
    from fundtrail_devstack.keycloak import KeycloakNode
    from fundtrail_devstack.testing import PostgresServer

KAFKA_BOOTSTRAP_ENV = "FUNDTRAIL_TEST_KAFKA_BOOTSTRAP"
TEST_DATABASE_URL_ENV = "FUNDTRAIL_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def kafka_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaNode]:
    if os.environ.get(KAFKA_BOOTSTRAP_ENV):
        pytest.skip(f"{KAFKA_BOOTSTRAP_ENV} is set: using an external broker, no local KafkaNode")
    from fundtrail_devstack.testing import start_test_kafka

    node = start_test_kafka(tmp_path_factory.mktemp("kafka"))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def secure_kafka_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaNode]:
    """A broker of its own with SASL/SCRAM, the StandardAuthorizer and every principal's ACLs
    (``node.security.client(user)``: a user's client settings); the other fixtures stay plaintext."""
    from fundtrail_devstack.testing import start_secure_test_kafka

    node = start_secure_test_kafka(tmp_path_factory.mktemp("kafka-secure"))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    external = os.environ.get(KAFKA_BOOTSTRAP_ENV)
    if external:
        return external
    node: KafkaNode = request.getfixturevalue("kafka_node")
    return node.bootstrap


@pytest.fixture(scope="session")
def pg_node() -> Iterator[PostgresServer]:
    external = os.environ.get(TEST_DATABASE_URL_ENV)
    if external:
        from fundtrail_devstack.testing import ExternalPostgres

        yield ExternalPostgres(external)
        return
    from fundtrail_devstack.testing import remove_tree, start_test_postgres, world_traversable_tmpdir

    home = world_traversable_tmpdir("fundtrail-pg-")
    try:
        node = start_test_postgres(home)
        try:
            yield node
        finally:
            node.stop()
    finally:
        remove_tree(home)


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> str:
    external = os.environ.get(TEST_DATABASE_URL_ENV)
    if external:
        return external
    server: PostgresServer = request.getfixturevalue("pg_node")
    return server.create_database(f"fundtrail_test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def fresh_database_url(pg_node: PostgresServer) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex}"
    url = pg_node.create_database(name)
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            pg_node.drop_database(name, force=True)


@pytest.fixture(scope="session")
def migrated_template(pg_node: PostgresServer) -> str:
    """A database with every migration applied, used as the template for fast per-test copies."""
    from fundtrail_runtime.db import upgrade

    name = f"tmpl_{uuid.uuid4().hex[:12]}"
    url = pg_node.create_database(name)
    upgrade(url)
    return name


@pytest.fixture
def migrated_database_url(pg_node: PostgresServer, migrated_template: str) -> Iterator[str]:
    """A new database with the whole schema, copied from the migrated template (milliseconds)."""
    import psycopg

    name = f"m_{uuid.uuid4().hex}"
    admin = pg_node.url("postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    try:
        yield pg_node.url(name)
    finally:
        with contextlib.suppress(Exception):
            pg_node.drop_database(name, force=True)


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakNode]:
    from fundtrail_devstack.testing import start_test_keycloak

    node = start_test_keycloak(tmp_path_factory.mktemp("keycloak"))
    try:
        yield node
    finally:
        node.stop()
