"""OpenTelemetry spans for consumed and produced records (messaging semantic conventions).

Every consumed record gets a "<topic> process" span that continues the trace its headers carry;
records produced for it carry that span's context, so a bureau's publish, fund-tracker's
processing and compliance's evaluation form one trace. The produce call of a whole batch is one
"<topic> publish" span (a span per produced record would cost as much as the rest of the
processing of that record).
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from fundtrail_schemas.telemetry import ATTR_BATCH_SIZE, exporting, extract_context, propagating_span
from fundtrail_schemas.topics import HEADER_TRACEPARENT, HEADER_TRACESTATE

TRACER_NAME = "fundtrail_tracker"
_tracer: list[trace.Tracer] = []


def tracer() -> trace.Tracer:
    """The service's tracer (a proxy until start-up installs the provider, so caching it is safe)."""
    if not _tracer:
        _tracer.append(trace.get_tracer(TRACER_NAME))
    return _tracer[0]


def process_span(topic: str, partition: int, offset: int, headers: Mapping[str, str]) -> Span:
    """Start "<topic> process", continuing the trace the record carries (recorded only when exported)."""
    if not exporting():
        return propagating_span(headers)
    return tracer().start_span(
        f"{topic} process",
        context=extract_context(list(headers.items())) if headers else None,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
        },
    )


def span_trace_id(span: Span) -> str | None:
    """32-hex trace id of a span, or None."""
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def context_headers(span: Span) -> list[tuple[str, bytes]]:
    """W3C trace-context headers naming `span` as the parent of whoever consumes the record.

    Formatted directly (what the W3C propagator writes): it runs for every produced record.
    """
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return []
    headers = [(HEADER_TRACEPARENT, f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}".encode())]
    if ctx.trace_state:
        headers.append((HEADER_TRACESTATE, ctx.trace_state.to_header().encode()))
    return headers


def publish_span(topic: str, count: int) -> Span:
    """Start "<topic> publish" for one batch produce."""
    return tracer().start_span(
        f"{topic} publish",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.batch.message_count": count,
            ATTR_BATCH_SIZE: count,
        },
    )
