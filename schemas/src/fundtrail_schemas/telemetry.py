"""OpenTelemetry set-up and Kafka header propagation, shared by every service.

Exporters are configured only through the standard OTEL_* variables: OTLP when
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, nothing otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

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


def setup_tracing(service_name: str, extra_processors: Sequence[SpanProcessor] = ()) -> TracerProvider:
    """Install the global tracer provider once per process."""
    global _configured
    current = trace.get_tracer_provider()
    if _configured and isinstance(current, TracerProvider):
        for p in extra_processors:
            current.add_span_processor(p)
        return current
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    for p in extra_processors:
        provider.add_span_processor(p)
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
