"""The devstack Kafka node: a real Kafka 4 broker, real clients on both sides."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fundtrail_devstack import DevstackError, KafkaNode, free_ports
from fundtrail_devstack._util import pid_alive
from fundtrail_devstack.kafka import JVM_OPTIONS, STAMP_NAME, java_version
from fundtrail_devstack.settings import DevstackSettings


def test_rendered_config_is_a_single_loopback_kraft_node(tmp_path: Path) -> None:
    node = KafkaNode(tmp_path, 19092, 19093)
    props = dict(line.split("=", 1) for line in node.render_config().splitlines() if line and not line.startswith("#"))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["num.partitions"] == "6"
    assert props["auto.create.topics.enable"] == "false"
    assert props["message.max.bytes"] == str(2 * 1024 * 1024)
    assert props["group.initial.rebalance.delay.ms"] == "0"
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "min.insync.replicas",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1", key
    assert "0.0.0.0" not in node.render_config()
    node.write_config()
    assert KafkaNode.configured_ports(tmp_path) == (19092, 19093)


def test_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        KafkaNode(tmp_path, 9092, 9092)
    with pytest.raises(ValueError):
        KafkaNode(tmp_path, 9092, 9093, heap="lots")
    for bad in ("kafka.Kafka", "-cp", "-Xmx8g"):
        with pytest.raises(ValueError, match="JVM options"):
            KafkaNode(tmp_path, 9092, 9093, jvm_options=[bad])


def test_broker_command_line_carries_the_jvm_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cmd = KafkaNode(tmp_path, 19092, 19093, heap="256m").command("java")
    assert cmd[0] == "java"
    assert cmd[-2:] == ["kafka.Kafka", str(tmp_path / "server.properties")]
    assert {"-Xms256m", "-Xmx256m", *JVM_OPTIONS} <= set(cmd)
    own = KafkaNode(tmp_path, 19092, 19093, jvm_options=["-XX:+UseG1GC"]).command("java")
    assert "-XX:+UseG1GC" in own and not set(JVM_OPTIONS) & set(own)
    # Settings: unset means the devstack's flags, an empty string the JVM's defaults.
    monkeypatch.delenv("FUNDTRAIL_DEVSTACK_KAFKA_JVM_OPTIONS", raising=False)
    assert DevstackSettings().kafka_jvm_flags == JVM_OPTIONS
    monkeypatch.setenv("FUNDTRAIL_DEVSTACK_KAFKA_JVM_OPTIONS", "")
    assert DevstackSettings().kafka_jvm_flags == ()
    monkeypatch.setenv("FUNDTRAIL_DEVSTACK_KAFKA_JVM_OPTIONS", "-XX:+UseG1GC  -XX:MaxGCPauseMillis=20")
    assert DevstackSettings().kafka_jvm_flags == ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")


def test_java_is_17_or_newer() -> None:
    assert java_version("java") >= 17


def test_missing_mvn_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kafka_dir = tmp_path / "kafka"
    kafka_dir.mkdir()
    (kafka_dir / "pom.xml").write_text("<project/>")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DevstackError, match="mvn"):
        KafkaNode(tmp_path / "home", 1, 2, kafka_dir=kafka_dir).ensure_jars()


@pytest.mark.integration
async def test_produce_with_kafka_python_consume_with_aiokafka(kafka_bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer
    from kafka import KafkaProducer

    from fundtrail_runtime.kafka_admin import ensure_topics
    from fundtrail_schemas.topics import TopicSpec

    topic = f"devstack.roundtrip.{uuid.uuid4().hex[:8]}"
    # ensure_topics returns once the broker lists the topic (CreateTopics answers a moment before).
    assert ensure_topics(kafka_bootstrap, [TopicSpec(topic, 3, "tests", "round trip")]) == [topic]

    sent = {
        f"key-{i}".encode(): (
            json.dumps({"n": i, "text": "专项资金"}).encode(),
            [("event-type", b"payment_disbursed"), ("seq", str(i).encode())],
        )
        for i in range(20)
    }
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    try:
        futures = [producer.send(topic, key=k, value=v, headers=h) for k, (v, h) in sent.items()]
        producer.flush()
        offsets = [f.get(timeout=30) for f in futures]
        assert {md.topic for md in offsets} == {topic}
    finally:
        producer.close()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"devstack-test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: dict[bytes, tuple[bytes, list[tuple[str, bytes]]]] = {}
    try:
        async with asyncio.timeout(60):
            while len(received) < len(sent):
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    for rec in records:
                        assert rec.key is not None and rec.value is not None
                        received[rec.key] = (rec.value, list(rec.headers))
    finally:
        await consumer.stop()
    assert received == sent


@pytest.mark.integration
def test_lifecycle_restart_keeps_data_and_reuses_jars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_property: Callable[[str, object], None]
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    port, controller_port = free_ports(2)
    node = KafkaNode(tmp_path / "kafka", port, controller_port, heap="384m")
    node.ensure_jars()  # downloads only if this checkout has never fetched the jars
    stamp = node.lib_dir / STAMP_NAME
    stamp_mtime = stamp.stat().st_mtime_ns
    assert node.ensure_jars() is False  # second time: cached, Maven not run

    commands: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(args: Any, *a: Any, **kw: Any) -> Any:
        commands.append([str(x) for x in args])
        return real_run(args, *a, **kw)

    monkeypatch.setattr(subprocess, "run", recording_run)

    assert node.status().running is False
    assert node.stop() is False  # nothing to stop
    try:
        t0 = time.monotonic()
        node.start(detach=False)
        record_property("kafka_warm_start_seconds", round(time.monotonic() - t0, 2))
        st = node.status()
        assert st.running and st.reachable and st.formatted and st.jars_ready
        assert st.bootstrap == f"127.0.0.1:{port}"
        pid = st.pid
        assert pid is not None and pid_alive(pid)
        node.start(detach=False)  # idempotent: still the same process
        assert node.status().pid == pid

        admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
        try:
            admin.create_topics([NewTopic("devstack.persist", num_partitions=6, replication_factor=1)])
        finally:
            admin.close()

        assert node.stop() is True
        assert not pid_alive(pid)
        assert not node.pid_file.exists()
        st = node.status()
        assert not st.running and not st.reachable and st.pid is None

        node.start(detach=False)  # restart on the formatted storage
        admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
        try:
            assert "devstack.persist" in admin.list_topics()
        finally:
            admin.close()
    finally:
        node.stop()
    assert not any(Path(cmd[0]).name == "mvn" for cmd in commands), commands
    assert stamp.stat().st_mtime_ns == stamp_mtime
    assert any("kafka.tools.StorageTool" in cmd for cmd in commands)  # formatted exactly once
    assert sum("kafka.tools.StorageTool" in cmd for cmd in commands) == 1
