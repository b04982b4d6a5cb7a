"""The producer sink on the real broker: records sent as whole record batches arrive complete, in
order per key, on the partition aiokafka's own `send` would pick."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from fundtrail_runtime.kafka_admin import ensure_topics
from fundtrail_runtime.kafka_sink import AiokafkaSink, Record
from fundtrail_schemas.topics import TopicSpec

pytestmark = pytest.mark.integration

PARTITIONS = 4


Received = tuple[int, bytes | None, bytes, list[tuple[str, bytes]]]


async def _read_all(bootstrap: str, topic: str, count: int) -> list[Received]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    out = []
    try:
        while len(out) < count:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, f"only {len(out)} of {count} records arrived"
            for records in batch.values():
                out += [(r.partition, r.key, r.value, list(r.headers)) for r in records]
    finally:
        await consumer.stop()
    return out


async def test_send_many_delivers_in_key_order_on_the_default_partitions(kafka_bootstrap: str) -> None:
    topic = f"fundtrail.test-sink-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, [TopicSpec(topic, PARTITIONS, "fund", "sink test")])
    # Small batches so that one partition's records fill several of them.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", max_batch_size=4096)
    await producer.start()
    funds = [f"JMF-{i:03d}".encode() for i in range(9)]
    records: list[Record] = []
    for n in range(300):
        key = funds[n % len(funds)]
        records.append((topic, key, f"{key.decode()}#{n}:".encode() + b"x" * (n % 50) * 10,
                        [("seq", str(n).encode())]))
    records.append((topic, None, b"no key", []))
    records.append((topic, funds[0], b"big:" + b"y" * 20_000, [("seq", b"big")]))  # larger than a batch
    sink = AiokafkaSink(producer)
    try:
        futures = await sink.send_many(records)
        for f in futures:
            await f
        assert len(futures) > PARTITIONS  # some partition needed more than one batch
    finally:
        await producer.stop()

    got = await _read_all(kafka_bootstrap, topic, len(records))
    def content(rows: list[Received] | list[Record]) -> list[tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]]:
        return sorted((k or b"", v, tuple(h)) for _, k, v, h in rows)

    assert content(got) == content(records)
    place = DefaultPartitioner()
    for partition, key, _, _ in got:
        if key is not None:
            assert partition == place(key, list(range(PARTITIONS)), list(range(PARTITIONS)))
    for fund in funds:
        sent = [v for _, k, v, _ in records if k == fund]
        assert [v for _, k, v, _ in got if k == fund] == sent
