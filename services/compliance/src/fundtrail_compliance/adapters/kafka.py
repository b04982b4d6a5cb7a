"""Kafka adapter: consumed records, the producer sink, message keys and headers."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

from fundtrail_schemas.events import Envelope

# Re-exported: the service names records and sinks by these.
from fundtrail_schemas.kafka_batch import Inbound as Inbound
from fundtrail_schemas.kafka_sink import Headers as Headers
from fundtrail_schemas.kafka_sink import ProducerSink as ProducerSink
from fundtrail_schemas.kafka_sink import Sink as Sink
from fundtrail_schemas.topics import HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION, HEADER_TRACEPARENT, HEADER_TRACESTATE


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
