"""The latency suite's per-hop stamps: record timestamps of the enriched event and its violation."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from aiokafka import AIOKafkaProducer

from fundtrail_devstack.latency import produced_at
from fundtrail_runtime.kafka_admin import ensure_topics
from fundtrail_schemas.kafka_security import client_security
from fundtrail_schemas.topics import ENRICHED_EVENTS, TOPICS_BY_NAME, VIOLATIONS


async def _produce(bootstrap: str, records: list[tuple[str, dict[str, object]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **client_security("aiokafka"))
    await producer.start()
    try:
        for topic, doc in records:
            await producer.send_and_wait(topic, json.dumps(doc).encode(), key=b"fund")
            await asyncio.sleep(0.02)  # so the violation's timestamp is strictly later
    finally:
        await producer.stop()


def test_enriched_then_violation_times_per_event(kafka_bootstrap: str) -> None:
    ensure_topics(kafka_bootstrap, [TOPICS_BY_NAME[ENRICHED_EVENTS], TOPICS_BY_NAME[VIOLATIONS]])
    hit, miss, other = (str(uuid.uuid4()) for _ in range(3))
    since_ms = int(time.time() * 1000) - 1000
    asyncio.run(_produce(kafka_bootstrap, [
        (ENRICHED_EVENTS, {"event": {"event_id": hit}}),
        (ENRICHED_EVENTS, {"event": {"event_id": miss}}),  # enriched, but raised no violation
        (ENRICHED_EVENTS, {"event": {"event_id": other}}),  # not asked for
        (VIOLATIONS, {"triggering_event_id": hit}),
        (VIOLATIONS, {"triggering_event_id": other}),
    ]))
    stamps = asyncio.run(produced_at(kafka_bootstrap, since_ms, {hit, miss}))
    assert set(stamps) == {hit}
    enriched_at, violation_at = stamps[hit]
    assert since_ms / 1000 < enriched_at < violation_at <= time.time() + 1
