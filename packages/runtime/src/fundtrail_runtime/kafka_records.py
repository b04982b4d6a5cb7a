"""The parts of the records the services produce, defined once: event headers, the trace context
carried from a consumed record onto what it causes, and dead letters."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

from fundtrail_schemas.decode import ReasonCode
from fundtrail_schemas.enriched import DeadLetter
from fundtrail_schemas.topics import (
    HEADER_EVENT_TYPE,
    HEADER_PUBLISHED_BY,
    HEADER_SCHEMA_VERSION,
    HEADER_TRACEPARENT,
    HEADER_TRACESTATE,
)

from .kafka_batch import Inbound
from .kafka_sink import Headers, Record

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


def dead_letter(
    to: str,
    source: Inbound,
    *,
    reason: ReasonCode,
    message: str,
    service: str,
    at: datetime,
    errors: Iterable[Mapping[str, str]] = (),
    event_id: uuid.UUID | None = None,
) -> Record:
    """A record for the dead-letter topic `to`: why `source` was refused, with its original bytes,
    keyed and traced as it was."""
    letter = DeadLetter.build(
        reason=reason, message=message, errors=[dict(e) for e in errors], value=source.value, key=source.key,
        topic=source.topic, partition=source.partition, offset=source.offset, at=at, service=service,
        event_id=event_id,
    )
    return Record(to, source.key, letter.model_dump_json().encode(), trace_headers(source.headers))
