"""SIGTERM stops the worker within its bound even when the broker is gone (no orphaned workers)."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fundtrail_devstack.testing import start_test_kafka, world_traversable_tmpdir
from fundtrail_runtime.kafka_admin import ensure_topics
from fundtrail_tracker.synthetic import encode, generate, key_of

pytestmark = pytest.mark.integration


def test_sigterm_after_the_broker_died_exits_within_the_shutdown_timeout(
    migrated_database_url: str, tmp_path: Any, workers: Any, kafka_tools: Any
) -> None:
    from .conftest import Scenario

    kafka = start_test_kafka(world_traversable_tmpdir("fundtrail-shutdown-kafka-"))
    try:
        s = Scenario(kafka.bootstrap, migrated_database_url, tmp_path,
                     extra_env={"FUNDTRAIL_TRACKER_SHUTDOWN_TIMEOUT": "3"})
        ensure_topics(kafka.bootstrap, s.topics.specs())
        worker = workers(s)
        prod = kafka_tools.producer(s.bootstrap)
        for e in generate(50, seed=3, start=datetime.now(UTC) - timedelta(days=5)):
            prod.send(s.topics.raw, key=key_of(e), value=encode(e))
        prod.flush()
        prod.close()
        kafka_tools.wait_until(lambda: s.scalar("SELECT count(*) FROM processed_event") == 50, 120,
                               what="50 recorded events", alive=worker)
    finally:
        kafka.stop()
    assert worker.alive(), worker.tail()
    assert worker.proc is not None
    started = time.monotonic()
    worker.proc.terminate()
    try:
        code = worker.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker still running 30 s after SIGTERM without a broker:\n{worker.tail()}")
    # 3 s bound plus interpreter exit; an orderly stop may also finish sooner.
    assert time.monotonic() - started < 15, worker.tail()
    assert code is not None
