"""End-to-end fixtures: the three services as real processes on their own broker and database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fundtrail_devstack.otlp_sink import OtlpSink
from fundtrail_devstack.stack import Stack
from fundtrail_devstack.testing import PostgresServer, dedicated_test_kafka


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dedicated_test_kafka(tmp_path_factory.mktemp("kafka-e2e")) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def otlp_sink() -> Iterator[OtlpSink]:
    with OtlpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def e2e_stack(
    kafka_bootstrap: str, pg_node: PostgresServer, otlp_sink: OtlpSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    database_url = pg_node.create_database(f"e2e_{uuid.uuid4().hex[:12]}")
    stack = Stack(
        home=Path(tmp_path_factory.mktemp("stack")),
        bootstrap=kafka_bootstrap,
        database_url=database_url,
        otlp_endpoint=otlp_sink.endpoint,
        group_suffix=f"-e2e-{uuid.uuid4().hex[:6]}",
    )
    stack.prepare()
    stack.start()
    try:
        stack.wait_ready(timeout=180)
        yield stack
    finally:
        codes = stack.stop()
        # A service that crashed during the run is a failure even if every assertion passed.
        crashed = {n: c for n, c in codes.items() if c not in (0, -15, None)}
        assert not crashed, f"services exited abnormally: {crashed}"
