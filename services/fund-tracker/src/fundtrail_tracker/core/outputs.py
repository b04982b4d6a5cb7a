"""The bytes fund-tracker produces: enriched events (dead letters: `fundtrail_runtime.kafka_records`)."""

from __future__ import annotations

from datetime import datetime

SERVICE = "fund-tracker"


def enriched_json(
    payload: bytes, sequence: int, accepted_at: datetime, before: bytes, after: bytes, trace_id: str | None
) -> bytes:
    """The JSON of an `EnrichedEvent`, assembled from parts that are already JSON (no re-encoding)."""
    trace = b"null" if trace_id is None else b'"' + trace_id.encode() + b'"'
    return b"".join(
        (
            b'{"event":', payload,
            b',"sequence":', str(sequence).encode(),
            b',"accepted_at":"', accepted_at.isoformat().encode(),
            b'","before":', before,
            b',"after":', after,
            b',"trace_id":', trace,
            b"}",
        )
    )
