"""Producing from the workers: the `Sink` both services write through, over aiokafka.

A batch's outputs go out as record batches the sink fills itself (`create_batch` /
`send_batch`): aiokafka's `send` costs ~75 µs a record on this machine (a future, the
pure-Python murmur2, the accumulator), a record appended to a batch ~20 µs, request included.
Records go to the partition aiokafka's default partitioner picks for their key, so keyed order is
the same as through `send`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, NamedTuple, Protocol

from aiokafka.partitioner import DefaultPartitioner

from fundtrail_schemas.headers import Headers as Headers  # re-exported: sinks take them


class Record(NamedTuple):
    """A record to produce."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


class Sink(Protocol):
    """Something that sends records and returns futures of their delivery."""

    async def send_many(self, records: Sequence[Record]) -> list[Awaitable[Any]]:
        """Queue records in order; await every returned future for the broker's acknowledgements."""
        ...


class AiokafkaSink:
    """A `Sink` over an aiokafka producer (`send_many`: record batches, see the module docstring)."""

    _PLACEMENTS = 65_536  # keys remembered (funds); forgotten all at once beyond that

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._partitioner = DefaultPartitioner()
        self._placement: dict[tuple[str, int, bytes], int] = {}

    def aiokafka(self) -> Any:
        """The aiokafka producer records go through."""
        return self._producer

    async def send_many(self, records: Sequence[Record]) -> list[Awaitable[Any]]:
        """Queue records as one record batch per partition (more when one fills), in order."""
        producer = self.aiokafka()
        partitions: dict[str, list[int]] = {}
        batches: dict[tuple[str, int], Any] = {}
        futures: list[Awaitable[Any]] = []
        for topic, key, value, headers in records:
            all_partitions = partitions.get(topic)
            if all_partitions is None:
                all_partitions = partitions[topic] = sorted(await producer.partitions_for(topic))
            partition = self._partition(topic, all_partitions, key)
            batch = batches.get((topic, partition))
            if batch is None:
                batch = batches[(topic, partition)] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                # Full (and closed by aiokafka): it goes now, ahead of the rest of this partition's.
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[(topic, partition)] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)  # a first record always fits
        for (topic, partition), batch in batches.items():
            batch.close()
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    def _partition(self, topic: str, all_partitions: list[int], key: bytes | None) -> int:
        if key is None:
            return int(self._partitioner(None, all_partitions, all_partitions))
        slot = (topic, len(all_partitions), key)
        partition = self._placement.get(slot)
        if partition is None:
            if len(self._placement) >= self._PLACEMENTS:
                self._placement.clear()
            partition = self._placement[slot] = int(self._partitioner(key, all_partitions, all_partitions))
        return partition


class ProducerSink(AiokafkaSink):
    """A `Sink` over faust's producer (aiokafka underneath; acks=all from the app settings)."""

    def aiokafka(self) -> Any:
        """faust's aiokafka producer (started with the app; `send_many` builds batches on it directly)."""
        return self._producer._ensure_producer()
