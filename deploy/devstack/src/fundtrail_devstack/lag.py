"""Consumer lag from the broker itself: how tests and benchmarks know a pipeline has drained."""

from __future__ import annotations

import time

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient

from fundtrail_schemas.kafka_security import client_security


def _group_id(group: object) -> str:
    # kafka-python 3 returns dicts; older releases returned (group_id, protocol) tuples.
    if isinstance(group, dict):
        return str(group.get("group_id") or group.get("group"))
    return str(group[0])  # type: ignore[index]


def group_lag(bootstrap: str, groups: list[str] | None = None) -> dict[str, int]:
    """Total lag (end offset − committed offset) per consumer group."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fundtrail-lag", **client_security("kafka-python"))
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="fundtrail-lag", enable_auto_commit=False,
                             **client_security("kafka-python"))
    try:
        names = groups if groups is not None else [_group_id(g) for g in admin.list_groups()]
        lag: dict[str, int] = {}
        for group in names:
            committed = admin.list_group_offsets(group).get(group, {})
            if not committed:
                lag[group] = 0
                continue
            # kafka-python's end_offsets silently drops partitions of topics missing from its metadata
            # cache when others are cached (then KeyError): load every topic's metadata first.
            for topic in {tp.topic for tp in committed}:
                consumer.partitions_for_topic(topic)
            ends = consumer.end_offsets(list(committed))
            lag[group] = sum(max(0, ends[tp] - meta.offset) for tp, meta in committed.items() if meta.offset >= 0)
        return lag
    finally:
        consumer.close()
        admin.close()


def wait_for_zero_lag(bootstrap: str, timeout: float = 120.0, groups: list[str] | None = None,
                      stable_polls: int = 3) -> dict[str, int]:
    """Block until every group's lag is 0 for a few consecutive polls (commits are periodic)."""
    deadline = time.monotonic() + timeout
    zero_in_a_row = 0
    lag: dict[str, int] = {}
    while time.monotonic() < deadline:
        lag = group_lag(bootstrap, groups)
        zero_in_a_row = zero_in_a_row + 1 if lag and not any(lag.values()) else 0
        if zero_in_a_row >= stable_polls:
            return lag
        time.sleep(1.0)
    raise TimeoutError(f"consumer lag did not reach 0 within {timeout:.0f}s: {lag}")
