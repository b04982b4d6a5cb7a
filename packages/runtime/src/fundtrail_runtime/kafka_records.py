"""Dead letters, defined once: why a consumed record was refused, with its original bytes (the
headers every record carries are fundtrail_schemas.headers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

from fundtrail_schemas.decode import ReasonCode
from fundtrail_schemas.enriched import DeadLetter
from fundtrail_schemas.headers import trace_headers

from .kafka_batch import Inbound
from .kafka_sink import Record


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
