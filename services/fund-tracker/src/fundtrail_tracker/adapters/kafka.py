"""Kafka adapter: what the service needs from a consumed record and from a producer."""

from __future__ import annotations

from collections.abc import Iterable

# Re-exported: the service names records and sinks by these.
from fundtrail_runtime.kafka_batch import Inbound as Inbound
from fundtrail_runtime.kafka_sink import AiokafkaSink as AiokafkaSink
from fundtrail_runtime.kafka_sink import Headers as Headers
from fundtrail_runtime.kafka_sink import ProducerSink as ProducerSink
from fundtrail_runtime.kafka_sink import Record as Record
from fundtrail_runtime.kafka_sink import Sink as Sink
from fundtrail_schemas.topics import HEADER_TRACEPARENT, HEADER_TRACESTATE


def trace_headers(headers: Iterable[tuple[str, bytes | str]] | None) -> dict[str, str]:
    """The W3C trace-context headers of a record, as text."""
    out: dict[str, str] = {}
    for k, v in headers or ():
        if k in (HEADER_TRACEPARENT, HEADER_TRACESTATE):
            out[k] = v.decode("latin-1") if isinstance(v, bytes) else v
    return out
