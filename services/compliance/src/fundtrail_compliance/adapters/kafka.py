"""Kafka adapter: consumed records, the producer sink, message keys and headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Re-exported: the service names records and sinks by these.
from fundtrail_runtime.kafka_batch import Inbound as Inbound
from fundtrail_runtime.kafka_sink import Headers as Headers
from fundtrail_runtime.kafka_sink import ProducerSink as ProducerSink
from fundtrail_runtime.kafka_sink import Sink as Sink
from fundtrail_schemas.events import Envelope
from fundtrail_schemas.topics import (
    HEADER_EVENT_TYPE,
    HEADER_SCHEMA_VERSION,
    HEADER_TRACEPARENT,
    HEADER_TRACESTATE,
    TOPICS_BY_NAME,
)


@dataclass(frozen=True, slots=True)
class Outbound:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


async def send(sink: Sink, records: Iterable[Outbound]) -> list[Awaitable[Any]]:
    """Queue records in order (as record batches); the broker's acknowledgements, to await."""
    return await sink.send_many([(r.topic, r.key, r.value, r.headers) for r in records])


async def send_all(sink: Sink, records: Iterable[Outbound]) -> None:
    """Send records in order and wait until the broker acknowledged every one."""
    for f in await send(sink, records):
        await f


def trace_headers(headers: Iterable[tuple[str, bytes | str]] | None) -> Headers:
    """The W3C trace-context headers of a consumed record, to carry onto what it causes."""
    out: Headers = []
    for k, v in headers or ():
        if k in (HEADER_TRACEPARENT, HEADER_TRACESTATE):
            out.append((k, v if isinstance(v, bytes) else v.encode("latin-1")))
    return out


def event_headers(event: Envelope, trace: Headers) -> Headers:
    """Headers of a message we produce: type, schema version, trace context."""
    return [
        (HEADER_EVENT_TYPE, event.event_type.encode()),
        (HEADER_SCHEMA_VERSION, str(event.schema_version).encode()),
        *trace,
    ]


def fund_key(event: Envelope) -> bytes:
    """Violations and case actions are keyed by fund so that a fund's stay in order."""
    if event.fund_doc_no:
        return event.fund_doc_no.encode()
    if event.project_id:
        return f"project:{event.project_id}".encode()
    return str(getattr(event, "violation_id", event.event_id)).encode()


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
