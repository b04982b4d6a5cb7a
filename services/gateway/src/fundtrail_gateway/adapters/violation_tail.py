"""Per-connection tail of the violations topic (aiokafka, no consumer group, no commits)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from fundtrail_schemas.kafka_security import client_security
from fundtrail_schemas.topics import VIOLATIONS

log = logging.getLogger(__name__)
_ASSIGNMENT_POLLS = 100  # x 50 ms


@dataclass(frozen=True, slots=True)
class TailMessage:
    partition: int
    offset: int
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class ViolationTail:
    """Reads VIOLATIONS from the end (or from given offsets); each connection has its own consumer."""

    def __init__(self, bootstrap: str, *, topic: str = VIOLATIONS, client_id: str = "fundtrail-gateway-sse") -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            **client_security("aiokafka"),
        )
        self._topic = topic

    async def start(self, start_offsets: dict[int, int] | None = None) -> dict[int, int]:
        """Take every partition and position at the end (or `start_offsets`); return the positions."""
        await self._consumer.start()
        try:
            # Without a group, subscribing assigns every partition of the topic to this consumer.
            self._consumer.subscribe([self._topic])
            tps = await self._assignment()
            await self._consumer.seek_to_end(*tps)
            for tp in tps:
                if start_offsets and tp.partition in start_offsets:
                    self._consumer.seek(tp, start_offsets[tp.partition])
            # position() resolves the end offsets now, so nothing published after this call is missed.
            return {tp.partition: await self._consumer.position(tp) for tp in sorted(tps)}
        except BaseException:
            await self._consumer.stop()
            raise

    async def _assignment(self) -> set[TopicPartition]:
        for _ in range(_ASSIGNMENT_POLLS):
            tps = self._consumer.assignment()
            if tps:
                return set(tps)
            await asyncio.sleep(0.05)
        raise LookupError(f"topic {self._topic} does not exist or has no partitions")

    async def messages(self) -> AsyncIterator[TailMessage]:
        """Messages as they arrive."""
        async for msg in self._consumer:
            yield TailMessage(msg.partition, msg.offset, msg.value or b"", tuple(msg.headers or ()))

    async def stop(self) -> None:
        """Leave nothing behind."""
        await self._consumer.stop()
