"""The bytes fund-tracker produces: enriched events and dead letters."""

from __future__ import annotations

import uuid
from datetime import datetime

from fundtrail_schemas.decode import Rejection
from fundtrail_schemas.enriched import DeadLetter

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


def dead_letter_json(
    rejection: Rejection,
    *,
    value: bytes,
    key: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    at: datetime,
    event_id: uuid.UUID | None,
) -> bytes:
    """A `DeadLetter` carrying the original bytes and where they came from."""
    letter = DeadLetter.build(
        reason=rejection.reason,
        message=rejection.message,
        errors=[e.as_dict() for e in rejection.errors],
        value=value,
        key=key,
        topic=topic,
        partition=partition,
        offset=offset,
        at=at,
        service=SERVICE,
        event_id=event_id,
    )
    return letter.model_dump_json().encode()
