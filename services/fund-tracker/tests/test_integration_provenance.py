"""Provenance on the secured broker: fund-tracker runs as its own Kafka principal, bureaus publish
as theirs. A bureau cannot write another region's topic (the broker refuses), an event for another
region on its own topic is dead-lettered with reason `provenance`, and an accepted event records
the raw topic it came from."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import AuthorizationError

from fundtrail_runtime.kafka_admin import ensure_topics
from fundtrail_schemas.examples import load_examples
from fundtrail_schemas.kafka_security import KafkaSecurity, client_security
from fundtrail_schemas.leaf import decode_leaf
from fundtrail_schemas.topics import (
    DEAD_LETTERS,
    ENRICHED_EVENTS,
    HEADER_PUBLISHED_BY,
    HEADER_SOURCE_TOPIC,
    raw_topic,
    registry_topics,
)

pytestmark = pytest.mark.integration


def _security(node: Any, user: str) -> KafkaSecurity:
    return node.security.client(user)  # type: ignore[no-any-return]


def _producer(node: Any, user: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=node.bootstrap, acks="all", max_block_ms=10_000,
                         **client_security("kafka-python", _security(node, user)))


def _read_until(node: Any, topic: str, found: Any, timeout: float = 120.0) -> Any:
    """The first record of `topic` (read as the operator) for which `found(record)` is true."""
    consumer = KafkaConsumer(bootstrap_servers=node.bootstrap, enable_auto_commit=False,
                             **client_security("kafka-python", _security(node, "operator")))
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    if found(r):
                        return r
        pytest.fail(f"no matching record on {topic} within {timeout:.0f}s")
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def tracker_db() -> str:
    """The name of the database the module's fund-tracker writes."""
    return f"prov_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def tracker(secure_kafka_node: Any, pg_node: Any, migrated_template: str, tracker_db: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fund-tracker worker authenticated as User:fund-tracker, the registry's topics made by the operator."""
    import contextlib
    import os
    import subprocess
    import sys

    import psycopg

    node = secure_kafka_node
    ensure_topics(node.bootstrap, registry_topics(), security=_security(node, "operator"))
    name = tracker_db
    admin = pg_node.url("postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    work = tmp_path_factory.mktemp("tracker-secure")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "FUNDTRAIL_"))},
        "KAFKA_BOOTSTRAP_SERVERS": node.bootstrap,
        "DATABASE_URL": pg_node.url(name),
        "FUNDTRAIL_TRACKER_SIGNING_KEY_PATH": str(work / "signing.pem"),
        "FUNDTRAIL_TRACKER_DEV_MODE": "true",
        "FUNDTRAIL_TRACKER_DATA_DIR": str(work / "faust-data"),
        "FUNDTRAIL_TRACKER_LOG_LEVEL": "warning",
        **node.security.env("fund-tracker"),
    }
    log = (work / "worker.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "fundtrail_tracker", "worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=work, start_new_session=True)
    log.close()
    try:
        yield node
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        with contextlib.suppress(Exception):
            pg_node.drop_database(name, force=True)
        if proc.returncode not in (0, -15):
            print((work / "worker.log").read_text(errors="replace")[-4000:])


def test_a_bureau_cannot_publish_on_another_regions_topic(secure_kafka_node: Any) -> None:
    ensure_topics(secure_kafka_node.bootstrap, registry_topics(), security=_security(secure_kafka_node, "operator"))
    producer = _producer(secure_kafka_node, "bureau-440705")
    try:
        with pytest.raises(AuthorizationError):
            producer.send(raw_topic("440781"), key=b"k", value=b"{}").get(timeout=20)
        with pytest.raises(AuthorizationError):
            producer.send(raw_topic("440700"), key=b"k", value=b"{}").get(timeout=20)
    finally:
        producer.close()


def test_an_event_for_another_region_on_a_bureaus_own_topic_is_dead_lettered(tracker: Any) -> None:
    # A city-level event (440700) published by 新会区's bureau on its own topic: the broker lets
    # the bureau write there, the tracker refuses the region.
    event = {**load_examples()["FundAllocated"], "event_id": str(uuid.uuid4())}
    producer = _producer(tracker, "bureau-440705")
    try:
        md = producer.send(raw_topic("440705"), key=event["fund_doc_no"].encode(),
                           value=json.dumps(event).encode()).get(timeout=30)
    finally:
        producer.close()
    record = _read_until(tracker, DEAD_LETTERS, lambda r: json.loads(r.value).get("event_id") == event["event_id"])
    letter = json.loads(record.value)
    assert letter["reason"] == "provenance"
    assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == (
        raw_topic("440705"), md.partition, md.offset)


def test_an_accepted_event_records_the_topic_it_was_published_on(tracker: Any, pg_node: Any,
                                                                 tracker_db: str) -> None:
    event = {**load_examples()["FundAllocated"], "event_id": str(uuid.uuid4()),
             "fund_doc_no": f"江财农〔2026〕{uuid.uuid4().int % 10**6}号"}
    producer = _producer(tracker, "bureau-440700")
    try:
        producer.send(raw_topic("440700"), key=event["fund_doc_no"].encode(), value=json.dumps(event).encode(),
                      headers=[(HEADER_PUBLISHED_BY, "江门市财政局".encode())]).get(timeout=30)
    finally:
        producer.close()
    record = _read_until(tracker, ENRICHED_EVENTS,
                         lambda r: json.loads(r.value)["event"]["event_id"] == event["event_id"])
    assert dict(record.headers)[HEADER_SOURCE_TOPIC] == raw_topic("440700").encode()
    # The trail leaf (written before the enriched event is sent) names the topic and the publishing subject.
    import psycopg

    with psycopg.connect(pg_node.url(tracker_db).replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute("SELECT leaf_data FROM trail_entry WHERE entry_id = %s", (event["event_id"],)).fetchone()
    assert row is not None
    assert decode_leaf(bytes(row[0])).publisher == {"topic": raw_topic("440700"), "principal": "江门市财政局"}
