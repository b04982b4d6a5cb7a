"""OpenTelemetry set-up and Kafka header propagation, shared by every service.

Exporters are configured only through the standard OTEL_* variables: OTLP when
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, nothing otherwise.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Mapping, Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

# Custom attribute names, defined once.
ATTR_EVENT_ID = "fundtrail.event_id"
ATTR_EVENT_TYPE = "fundtrail.event_type"
ATTR_FUND = "fundtrail.fund_doc_no"
ATTR_RULE = "fundtrail.rule"
ATTR_BATCH_SIZE = "fundtrail.batch_size"
ATTR_VIOLATION_ID = "fundtrail.violation_id"

_configured = False
# True once a span processor (an exporter, a test sink) is installed: only then are spans worth recording.
_exporting = False
_TRACEPARENT = "traceparent"


def setup_tracing(service_name: str, extra_processors: Sequence[SpanProcessor] = ()) -> TracerProvider:
    """Install the global tracer provider once per process."""
    global _configured, _exporting
    current = trace.get_tracer_provider()
    if _configured and isinstance(current, TracerProvider):
        for p in extra_processors:
            current.add_span_processor(p)
            _exporting = True
        return current
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _exporting = True
    for p in extra_processors:
        provider.add_span_processor(p)
        _exporting = True
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def inject_headers(context: Context | None = None) -> list[tuple[str, bytes]]:
    """W3C trace-context headers for a Kafka message."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return [(k, v.encode()) for k, v in carrier.items()]


def extract_context(headers: Iterable[tuple[str, bytes | str]] | dict[str, bytes] | None) -> Context:
    """Trace context from Kafka headers (list of pairs or a dict)."""
    if not headers:
        return propagate.extract({})
    items = headers.items() if isinstance(headers, dict) else headers
    carrier = {k: (v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in items}
    return propagate.extract(carrier)


def current_trace_id() -> str | None:
    """Hex trace id of the active span, or None."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def exporting() -> bool:
    """Whether finished spans go anywhere (an OTLP exporter or a processor a test installed)."""
    return _exporting


def propagating_span(headers: Mapping[str, str]) -> trace.Span:
    """A non-recording span that continues the trace of `headers` (or starts one) with a new span id.

    When nothing exports spans, a recorded span per Kafka record (~50 µs of attributes, events and
    ids) buys nothing; trace ids must still be stored and passed on, so the workers use this then.
    Flags and trace state are kept, so a downstream service that exports still sees the sampling
    decision the publisher made.
    """
    parent = _parse_traceparent(headers.get(_TRACEPARENT))
    if parent is None:
        trace_id, flags, state = _random_id(128), trace.TraceFlags(trace.TraceFlags.SAMPLED), None
    else:
        trace_id, flags = parent
        state = trace.TraceState.from_header([headers["tracestate"]]) if headers.get("tracestate") else None
    ctx = trace.SpanContext(trace_id, _random_id(64), is_remote=False, trace_flags=flags, trace_state=state)
    return trace.NonRecordingSpan(ctx)


def _random_id(bits: int) -> int:
    value = 0
    while value == 0:  # zero ids are invalid in W3C trace context
        value = random.getrandbits(bits)
    return value


def _parse_traceparent(value: str | None) -> tuple[int, trace.TraceFlags] | None:
    # version-traceid-spanid-flags, as the W3C propagator checks it (lower-case hex, non-zero ids).
    if not value or len(value) < 55:
        return None
    parts = value.split("-")
    if len(parts) < 4 or parts[0] == "ff" or len(parts[1]) != 32 or len(parts[2]) != 16 or len(parts[3]) != 2:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if trace_id == 0 or span_id == 0 or parts[1] != parts[1].lower():
        return None
    return trace_id, trace.TraceFlags(flags & 0xFF)
