"""Kafka record headers, defined once: an event's type and schema version, and the W3C trace context
carried from a consumed record onto what it causes. In the contract because every producer sets
them, the bureau's publisher too (which installs no worker runtime)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .topics import (
    HEADER_EVENT_TYPE,
    HEADER_PUBLISHED_BY,
    HEADER_SCHEMA_VERSION,
    HEADER_TRACEPARENT,
    HEADER_TRACESTATE,
)

Headers = list[tuple[str, bytes]]

_TRACE = (HEADER_TRACEPARENT, HEADER_TRACESTATE)
# Kept with a consumed event (and its parked copy): its trace context, and who published it (the
# trail leaf records the publisher); only the trace context is carried onto what it causes.
SOURCE_HEADERS = (*_TRACE, HEADER_PUBLISHED_BY)


def event_headers(event_type: str, schema_version: int, trace: Iterable[tuple[str, bytes]] = ()) -> Headers:
    """Headers of an event we produce: its type, schema version, then `trace` (W3C trace context)."""
    return [(HEADER_EVENT_TYPE, event_type.encode()), (HEADER_SCHEMA_VERSION, str(schema_version).encode()), *trace]


def trace_context(
    headers: Iterable[tuple[str, bytes | str]] | None, keep: tuple[str, ...] = _TRACE
) -> dict[str, str]:
    """The W3C trace-context headers of a record (or the `keep` ones), as text (Latin-1: the bytes
    round-trip); what is stored and propagated."""
    out: dict[str, str] = {}
    for k, v in headers or ():
        if k in keep:
            out[k] = v.decode("latin-1") if isinstance(v, bytes) else v
    return out


def trace_headers(headers: Iterable[tuple[str, bytes | str]] | Mapping[str, str] | None) -> Headers:
    """The W3C trace-context headers of a record (or of a stored `trace_context`), to carry onto
    what it causes."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(k, v.encode("latin-1")) for k, v in trace_context(items).items()]
