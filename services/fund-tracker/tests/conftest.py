"""Fixtures for fund-tracker's integration tests: isolated topics, databases and worker processes.

Everything real: the session's Kafka broker and PostgreSQL server (root conftest.py), the worker
as a subprocess (`python -m fundtrail_tracker worker`, the same interpreter `uv run` uses). Each
scenario gets its own topic prefix and consumer group, so scenarios never read each other's records.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    poll: float = 0.2,
    what: str | Callable[[], str] = "condition",
    alive: WorkerProcess | None = None,
) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` s or when `alive` exits."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        text = what() if callable(what) else what
        if alive is not None and not alive.alive():
            pytest.fail(f"the worker exited while waiting for {text}:\n{alive.tail()}")
        if time.monotonic() > deadline:
            tail = f"\nworker log:\n{alive.tail()}" if alive is not None else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {text}{tail}")
        time.sleep(poll)


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class Scenario:
    """One isolated run: topics under a fresh prefix, a consumer group, a database, a key, a work dir."""

    bootstrap: str
    database_url: str
    work: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}.")
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def topics(self) -> Any:
        from fundtrail_tracker.topics import TrackerTopics

        return TrackerTopics.with_prefix(self.prefix)

    @property
    def key_path(self) -> Path:
        return self.work / "signing.pem"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.database_url,
            "FUNDTRAIL_TRACKER_TOPIC_PREFIX": self.prefix,
            "FUNDTRAIL_TRACKER_APP_ID": f"{self.prefix}tracker",
            "FUNDTRAIL_TRACKER_SIGNING_KEY_PATH": str(self.key_path),
            "FUNDTRAIL_TRACKER_DEV_MODE": "true",
            "FUNDTRAIL_TRACKER_DATA_DIR": str(self.work / "faust-data"),
            "FUNDTRAIL_TRACKER_STATE_DIR": str(self.work / "publisher-state"),
            "FUNDTRAIL_TRACKER_LOG_LEVEL": "warning",
            # A killed worker's partitions are reassigned after the session timeout: keep it short.
            "FUNDTRAIL_TRACKER_SESSION_TIMEOUT": "6",
            "FUNDTRAIL_TRACKER_HEARTBEAT_INTERVAL": "1",
            **self.extra_env,
        }

    def db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(libpq(self.database_url), autocommit=True)

    def scalar(self, sql: str, *params: Any) -> Any:
        with self.db() as conn:
            row = conn.execute(sql, params).fetchone()
            return row[0] if row else None

    def group(self) -> str:
        """The consumer group that reads the raw topic (the app id plus "-raw")."""
        return f"{self.prefix}tracker-raw"


class WorkerProcess:
    """The worker as a child process we can SIGKILL."""

    def __init__(self, scenario: Scenario, name: str = "worker") -> None:
        self.scenario = scenario
        self.log_path = scenario.work / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n===== start {self.starts} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fundtrail_tracker", "worker"],
            env=self.scenario.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.scenario.work,
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _database_from_template(pg_node: Any, template: str) -> tuple[str, str]:
    name = f"ft_{uuid.uuid4().hex}"
    admin = pg_node.url("postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name, pg_node.url(name)


@pytest.fixture
def scenario_factory(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Scenario]:
    """Make scenarios with their topics created (database given by the caller)."""
    from fundtrail_runtime.kafka_admin import ensure_topics

    def make(database_url: str, **extra_env: str) -> Scenario:
        s = Scenario(kafka_bootstrap, database_url, tmp_path_factory.mktemp("tracker"), extra_env=extra_env)
        ensure_topics(kafka_bootstrap, s.topics.specs())
        return s

    return make


@pytest.fixture
def workers() -> Iterator[Callable[[Scenario], WorkerProcess]]:
    """Start workers; every one started is stopped (by pid) when the test ends."""
    started: list[WorkerProcess] = []

    def start(scenario: Scenario, name: str = "worker") -> WorkerProcess:
        w = WorkerProcess(scenario, name)
        w.start()
        started.append(w)
        return w

    yield start
    for w in started:
        with contextlib.suppress(Exception):
            w.stop()


@pytest.fixture(scope="module")
def module_database_url(pg_node: Any, migrated_template: str) -> Iterator[str]:
    """A migrated database shared by the tests of one module."""
    name, url = _database_from_template(pg_node, migrated_template)
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            pg_node.drop_database(name, force=True)


@pytest.fixture(scope="module")
def module_scenario(
    kafka_bootstrap: str, module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Scenario, WorkerProcess]]:
    """One running worker (and its scenario) shared by the functional tests of a module."""
    from fundtrail_runtime.kafka_admin import ensure_topics

    s = Scenario(kafka_bootstrap, module_database_url, tmp_path_factory.mktemp("tracker-module"),
                 extra_env={"FUNDTRAIL_TRACKER_CHECKPOINT_INTERVAL": "1", "FUNDTRAIL_TRACKER_BATCH_TIMEOUT": "0.05"})
    ensure_topics(kafka_bootstrap, s.topics.specs())
    w = WorkerProcess(s)
    w.start()
    try:
        yield s, w
    finally:
        w.stop()


# ----------------------------------------------------------------------------- Kafka helpers


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Any]:
    """Every record currently in `topic` (all partitions, from the beginning)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                             max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            if time.monotonic() > deadline:
                pytest.fail(f"could not read {topic} to its end within {timeout}s")
            for records in consumer.poll(timeout_ms=500, max_records=10_000).values():
                out.extend(records)
        return out
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","))
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: off for tp, off in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def consumer_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of `topic` the group has not committed yet."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=group, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        return sum(end - (consumer.committed(tp) or 0) for tp, end in ends.items())
    finally:
        consumer.close()


def producer(bootstrap: str) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=10, batch_size=512 * 1024,
                         max_request_size=2 * 1024 * 1024)


@pytest.fixture
def kafka_tools() -> Any:
    """The Kafka helpers above, for test modules (which cannot import this conftest)."""

    class Tools:
        read_topic = staticmethod(read_topic)
        end_offsets = staticmethod(end_offsets)
        consumer_lag = staticmethod(consumer_lag)
        producer = staticmethod(producer)
        wait_until = staticmethod(wait_until)

    return Tools
