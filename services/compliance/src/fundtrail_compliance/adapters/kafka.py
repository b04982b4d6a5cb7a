"""Kafka adapter: consumed records, the producer sink, the rule-pack topic and fund placement."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

# Re-exported: the service names records and sinks by these.
from fundtrail_runtime.kafka_batch import Inbound as Inbound
from fundtrail_runtime.kafka_sink import Headers as Headers
from fundtrail_runtime.kafka_sink import ProducerSink as ProducerSink
from fundtrail_runtime.kafka_sink import Record as Record
from fundtrail_runtime.kafka_sink import Sink as Sink
from fundtrail_schemas.topics import TOPICS_BY_NAME


async def follow_topic(bootstrap: str, topic: str, start: Mapping[int, int], client_id: str) -> AsyncIterator[Inbound]:
    """Every record of `topic` from `start` (next offset per partition; the others from their
    beginning), read outside any consumer group: each replica sees all of it (broadcast), as the
    rule-pack topic needs. Partitions added later are not followed (it has one)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", client_id=client_id)
    await consumer.start()
    try:
        # The partitions the start-up read found, else the registry's count (a consumer outside a
        # group has no metadata of topics it has not assigned).
        known = sorted(start) or range(TOPICS_BY_NAME[topic].partitions)
        tps = [TopicPartition(topic, p) for p in known]
        consumer.assign(tps)
        for tp in tps:
            if tp.partition in start:
                consumer.seek(tp, start[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)
        async for r in consumer:
            if r.value is not None:
                yield Inbound(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
    finally:
        await consumer.stop()


def partition_of(key: bytes, partitions: int) -> int:
    """The partition fund-tracker's producer (aiokafka's default partitioner) puts `key` on."""
    from aiokafka.partitioner import DefaultPartitioner

    every = list(range(partitions))
    return int(DefaultPartitioner()(key, every, every))
