"""Kafka identities and ACLs on a real SASL/SCRAM broker with the StandardAuthorizer.

The expectations are written out here, per principal and topic family, independently of
`fundtrail_schemas.kafka_acl` (which the broker's ACLs come from): the table is the spec.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import AuthorizationError, KafkaError

from fundtrail_devstack.kafka import KafkaNode
from fundtrail_runtime.kafka_admin import ensure_topics
from fundtrail_schemas.kafka_security import KafkaSecurity, client_security
from fundtrail_schemas.topics import (
    CASES,
    DEAD_LETTERS,
    ENRICHED_EVENTS,
    RAW_EVENTS,
    RULE_PACKS,
    VIOLATIONS,
    VIOLATIONS_DLQ,
    department_topic,
    raw_topic,
    registry_topics,
)

pytestmark = pytest.mark.integration

# One topic per family; 440705 is 新会区, 440705101 大泽镇 inside it, 440781 台山市 outside it.
FAMILIES = {
    "raw": RAW_EVENTS,
    "raw.county": raw_topic("440705"),
    "raw.town": raw_topic("440705101"),
    "raw.other": raw_topic("440781"),
    "dlq": DEAD_LETTERS,
    "enriched": ENRICHED_EVENTS,
    "violations": VIOLATIONS,
    "violations.agriculture": department_topic("agriculture"),
    "violations.finance": department_topic("finance"),
    "violations.dlq": VIOLATIONS_DLQ,
    "cases": CASES,
    "rules": RULE_PACKS,
}
RAW_ALL = {"raw", "raw.county", "raw.town", "raw.other"}

# principal -> (families it may produce to, families it may consume)
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    "fund-tracker": ({"enriched", "dlq"}, RAW_ALL | {"violations", "cases"}),
    "compliance": (
        {"violations", "violations.agriculture", "violations.finance", "violations.dlq", "cases"},
        {"enriched", "cases", "rules"},
    ),
    "gateway": (RAW_ALL | {"cases", "rules"}, {"violations"}),
    "bureau-440705": ({"raw.county", "raw.town"}, set()),
    "bureau-440705101": ({"raw.town"}, set()),
    "bureau-440781": ({"raw.other"}, set()),
    "auditor-agriculture": (set(), {"violations.agriculture"}),
    "auditor-finance": (set(), {"violations.finance"}),
    "operator": (set(FAMILIES), set(FAMILIES)),
}


@pytest.fixture(scope="module")
def node(secure_kafka_node: KafkaNode) -> Iterator[KafkaNode]:
    assert secure_kafka_node.security is not None
    ensure_topics(secure_kafka_node.bootstrap, registry_topics(), security=secure_kafka_node.security.client())
    operator = _consumer(secure_kafka_node, "operator")
    try:
        assert set(FAMILIES.values()) <= operator.topics()
    finally:
        operator.close()
    # One record on every topic, so an allowed read has something to return.
    producer = _producer(secure_kafka_node, "operator")
    try:
        for topic in FAMILIES.values():
            producer.send(topic, key=b"seed", value=b"seed", partition=0).get(timeout=30)
    finally:
        producer.close()
    yield secure_kafka_node


def _security(node: KafkaNode, user: str) -> KafkaSecurity:
    assert node.security is not None
    return node.security.client(user)


def _producer(node: KafkaNode, user: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=node.bootstrap, acks="all", enable_idempotence=False,
                         max_block_ms=10_000, request_timeout_ms=10_000,
                         **client_security("kafka-python", _security(node, user)))


def _consumer(node: KafkaNode, user: str, group: str | None = None) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=node.bootstrap, group_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest", consumer_timeout_ms=10_000,
                         **client_security("kafka-python", _security(node, user)))


def _produce(producer: KafkaProducer, topic: str) -> bool:
    """True if the broker took the record; False if it refused for lack of authorization."""
    try:
        producer.send(topic, key=b"k", value=b"acl-test").get(timeout=20)
        return True
    except AuthorizationError:
        return False


def _consume(consumer: KafkaConsumer, topic: str) -> bool:
    """True if records of the topic were read; False if the broker refused.

    The broker refuses twice: a topic the principal may not even describe is answered with
    TOPIC_AUTHORIZATION_FAILED to the metadata request, one it may describe but not read with
    TOPIC_AUTHORIZATION_FAILED to the fetch.
    """
    tp = TopicPartition(topic, 0)
    cluster = consumer._client.cluster  # keeps the topics the last metadata answer refused
    try:
        # Assigning asks the broker for this topic's metadata; poll until it answers with records
        # or a refusal (a slow answer on a busy machine is neither, so it is waited for).
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if consumer.poll(timeout_ms=500).get(tp):
                return True
            if topic in cluster.unauthorized_topics:
                return False
        raise AssertionError(f"no records read from {topic} and no authorization error within 60 s")
    except AuthorizationError:
        return False
    finally:
        consumer.unsubscribe()


def test_an_unauthenticated_client_is_refused(node: KafkaNode) -> None:
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_servers=node.bootstrap, max_block_ms=5_000, bootstrap_timeout_ms=5_000)


def test_a_wrong_password_is_refused(node: KafkaNode) -> None:
    wrong = KafkaSecurity(security_protocol="SASL_PLAINTEXT", sasl_username="gateway", sasl_password="not-it")
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_servers=node.bootstrap, max_block_ms=5_000, bootstrap_timeout_ms=5_000,
                      **client_security("kafka-python", wrong))


@pytest.mark.parametrize("user", sorted(EXPECTED))
def test_each_principal_produces_and_consumes_exactly_what_it_needs(node: KafkaNode, user: str) -> None:
    may_produce, may_consume = EXPECTED[user]
    producer = _producer(node, user)
    try:
        produced = {family for family, topic in FAMILIES.items() if _produce(producer, topic)}
    finally:
        producer.close()
    consumer = _consumer(node, user)
    try:
        consumed = {family for family, topic in FAMILIES.items() if _consume(consumer, topic)}
    finally:
        consumer.close()
    assert produced == may_produce
    assert consumed == may_consume


def test_an_auditor_reads_its_department_in_its_own_consumer_group_only(node: KafkaNode) -> None:
    topic = department_topic("agriculture")
    own = _consumer(node, "auditor-agriculture", group=f"auditor-agriculture-{uuid.uuid4().hex[:8]}")
    try:
        own.subscribe([topic])
        records: list[Any] = []
        for _ in range(30):
            records.extend(r for batch in own.poll(timeout_ms=1000).values() for r in batch)
            if records:
                break
        assert records and all(r.topic == topic for r in records)
        own.commit()
    finally:
        own.close()
    foreign = _consumer(node, "auditor-agriculture", group="fundtrail-tracker-raw")
    try:
        foreign.subscribe([topic])
        with pytest.raises(AuthorizationError):
            for _ in range(30):
                foreign.poll(timeout_ms=1000)
    finally:
        foreign.close()


def test_the_auditor_sees_no_other_topic_in_the_metadata(node: KafkaNode) -> None:
    consumer = _consumer(node, "auditor-agriculture")
    try:
        assert consumer.topics() == {department_topic("agriculture")}
    finally:
        consumer.close()


def test_a_service_starting_on_the_secured_broker_creates_nothing_and_does_not_fail(node: KafkaNode) -> None:
    # Services call ensure_topics at start-up; under ACLs they may create no topic at all.
    assert ensure_topics(node.bootstrap, security=_security(node, "fund-tracker")) == []
