"""The topic registry on the real broker: created idempotently, with the declared shape."""

from __future__ import annotations

import uuid

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from fundtrail_runtime.kafka_admin import ensure_topics
from fundtrail_schemas.topics import TOPICS, TOPICS_BY_NAME, Cleanup, TopicSpec, department_topic
from fundtrail_schemas.types import Department


def test_registry_is_consistent() -> None:
    names = [t.name for t in TOPICS]
    assert len(names) == len(set(names))
    assert {department_topic(d) for d in Department} <= set(names)
    for spec in TOPICS:
        assert spec.partitions >= 1
        assert spec.name.startswith("fundtrail.")


@pytest.mark.integration
def test_ensure_topics_is_idempotent_and_matches_the_registry(kafka_bootstrap: str) -> None:
    first = ensure_topics(kafka_bootstrap)
    second = ensure_topics(kafka_bootstrap)
    assert second == []
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        existing = set(admin.list_topics())
        assert set(TOPICS_BY_NAME) <= existing
        # Another test may have created them first in this session; either way all exist now.
        assert set(first) <= set(TOPICS_BY_NAME)
        described = admin.describe_topics(list(TOPICS_BY_NAME))
        for topic in described:
            assert len(topic["partitions"]) == TOPICS_BY_NAME[topic["name"]].partitions, topic["name"]
        compacted = [t.name for t in TOPICS if t.cleanup is Cleanup.COMPACT]
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in compacted])
        text = repr(configs)
        assert "compact" in text
    finally:
        admin.close()


@pytest.mark.integration
def test_ensure_topics_returns_once_new_topics_are_in_the_metadata(kafka_bootstrap: str) -> None:
    # A fresh client asks the broker right after the call: the topics must already be listed.
    run = uuid.uuid4().hex[:8]
    specs = [TopicSpec(f"fundtrail.test-visible-{run}-{i}", 3, "tests", "visibility") for i in range(6)]
    assert ensure_topics(kafka_bootstrap, specs) == [s.name for s in specs]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert {s.name for s in specs} <= set(admin.list_topics())
        admin.delete_topics([s.name for s in specs])
    finally:
        admin.close()
