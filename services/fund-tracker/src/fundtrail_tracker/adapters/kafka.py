"""Kafka adapter: what the service needs from a consumed record and from a producer."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any, Protocol

from fundtrail_schemas.kafka_batch import Inbound as Inbound  # re-exported: the service names records by it
from fundtrail_schemas.topics import HEADER_TRACEPARENT, HEADER_TRACESTATE

Headers = list[tuple[str, bytes]]


class Sink(Protocol):
    """Something that sends a record and returns a future of its delivery."""

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> Awaitable[Any]:
        """Queue a record; await the returned future for the broker's acknowledgement."""
        ...


def trace_headers(headers: Iterable[tuple[str, bytes | str]] | None) -> dict[str, str]:
    """The W3C trace-context headers of a record, as text."""
    out: dict[str, str] = {}
    for k, v in headers or ():
        if k in (HEADER_TRACEPARENT, HEADER_TRACESTATE):
            out[k] = v.decode("latin-1") if isinstance(v, bytes) else v
    return out


class ProducerSink:
    """A `Sink` over faust's producer (aiokafka underneath; acks=all from the app settings)."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> Awaitable[Any]:
        """Queue a record on the shared producer."""
        return await self._producer.send(topic, key, value, None, None, headers)
