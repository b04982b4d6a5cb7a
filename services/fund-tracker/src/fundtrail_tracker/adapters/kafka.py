"""Kafka adapter: what the service needs from a consumed record and from a producer."""

from __future__ import annotations

from collections.abc import Iterable

# Re-exported: the service names records and sinks by these.
from fundtrail_schemas.kafka_batch import Inbound as Inbound
from fundtrail_schemas.kafka_sink import AiokafkaSink as AiokafkaSink
from fundtrail_schemas.kafka_sink import Headers as Headers
from fundtrail_schemas.kafka_sink import ProducerSink as ProducerSink
from fundtrail_schemas.kafka_sink import Record as Record
from fundtrail_schemas.kafka_sink import Sink as Sink
from fundtrail_schemas.topics import HEADER_PUBLISHED_BY, HEADER_TRACEPARENT, HEADER_TRACESTATE

# Kept with a record (and its parked copy): trace context, and who published it (the trail leaf records it).
_KEPT = (HEADER_TRACEPARENT, HEADER_TRACESTATE, HEADER_PUBLISHED_BY)


def trace_headers(headers: Iterable[tuple[str, bytes | str]] | None) -> dict[str, str]:
    """The W3C trace-context and publisher headers of a record, as text (Latin-1: the bytes round-trip)."""
    out: dict[str, str] = {}
    for k, v in headers or ():
        if k in _KEPT:
            out[k] = v.decode("latin-1") if isinstance(v, bytes) else v
    return out
