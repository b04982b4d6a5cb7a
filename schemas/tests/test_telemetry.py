"""The non-recording span the workers use when no exporter is configured must still carry the trace."""

from __future__ import annotations

from opentelemetry import propagate, trace

from fundtrail_schemas.telemetry import propagating_span

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_continues_the_parent_trace_with_a_new_span_id_and_the_same_flags() -> None:
    span = propagating_span({"traceparent": PARENT, "tracestate": "congo=t61rcWkgMzE"})
    ctx = span.get_span_context()
    assert format(ctx.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert ctx.span_id not in (0, 0x00F067AA0BA902B7)
    assert ctx.trace_flags.sampled
    assert ctx.trace_state.get("congo") == "t61rcWkgMzE"
    assert not span.is_recording()


def test_keeps_an_unsampled_decision() -> None:
    ctx = propagating_span({"traceparent": PARENT[:-2] + "00"}).get_span_context()
    assert not ctx.trace_flags.sampled


def test_starts_a_trace_when_the_record_has_none_or_a_broken_one() -> None:
    for headers in ({}, {"traceparent": "garbage"}, {"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"}):
        ctx = propagating_span(headers).get_span_context()
        assert ctx.is_valid and ctx.trace_flags.sampled
    a = propagating_span({}).get_span_context().trace_id
    b = propagating_span({}).get_span_context().trace_id
    assert a != b


def test_the_standard_propagator_reads_what_it_passes_on() -> None:
    span = propagating_span({"traceparent": PARENT})
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    back = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    assert back.trace_id == span.get_span_context().trace_id
    assert back.span_id == span.get_span_context().span_id
