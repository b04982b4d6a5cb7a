"""Validation of raw messages beyond the contract: clock skew, storability, business identity.

Which fields identify a business fact is the event-type registry's (`eventspec.business_key`)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fundtrail_schemas.decode import (
    MAX_EVENT_BYTES,
    MAX_JSON_DEPTH,
    FieldError,
    ReasonCode,
    Rejection,
    event_id_hint,
    has_nul,
    json_depth_exceeds,
    parse_object,
    validate_event_json,
)
from fundtrail_schemas.events import Envelope
from fundtrail_schemas.eventspec import business_key

__all__ = ["Valid", "business_key", "check_event", "decode_message", "duplicate_fact", "undecodable"]

try:  # orjson is several times faster; the stdlib is the fallback.
    import orjson

    _loads: Any = orjson.loads
    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads
    _JSON_ERRORS = (json.JSONDecodeError, UnicodeDecodeError)


@dataclass(frozen=True, slots=True)
class Valid:
    """An event that passed every check, with its wire JSON (reused for storage and output)."""

    event: Envelope
    payload: bytes


def decode_message(
    raw: bytes | None, *, now: datetime, max_future_skew: timedelta, source_only: bool = True
) -> tuple[Valid | Rejection, uuid.UUID | None]:
    """Validate one message value; return the event or a rejection, and the event id when readable."""
    if raw is None:
        return Rejection(ReasonCode.EMPTY, "the record has no value (a null or tombstone record)"), None
    if len(raw) > MAX_EVENT_BYTES:
        msg = f"message is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES} bytes"
        return Rejection(ReasonCode.OVERSIZED, msg), None
    if not raw.strip():
        return Rejection(ReasonCode.EMPTY, "the record value is empty"), None
    # One parse in native code for the events that pass; the rest take the careful path below,
    # which words the rejection (validate_event_json says why both agree).
    fast = validate_event_json(raw, source_only=source_only)
    if fast is not None:
        return check_event(fast, now=now, max_future_skew=max_future_skew), fast.event_id
    try:
        obj = _loads(raw)
    except _JSON_ERRORS as exc:
        return Rejection(ReasonCode.MALFORMED_JSON, f"not valid UTF-8 JSON: {exc}"), None
    # orjson stops at 1,024 levels in C; an event has a few, and deeper input is not validated.
    if json_depth_exceeds(obj, MAX_JSON_DEPTH):
        return Rejection(ReasonCode.INVALID_FIELD, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"), None
    result = parse_object(obj, source_only=source_only)
    if isinstance(result, Rejection):
        # Only a rejection needs it: an accepted event's id is parsed already.
        return result, event_id_hint(obj)
    return check_event(result, now=now, max_future_skew=max_future_skew), result.event_id


def undecodable(exc: BaseException) -> Rejection:
    """The rejection of a record whose decoding raised: it is dead-lettered, never retried forever."""
    return Rejection(ReasonCode.UNDECODABLE, f"decoding the record failed: {exc!r}"[:2000])


def check_event(event: Envelope, *, now: datetime, max_future_skew: timedelta) -> Valid | Rejection:
    """Checks the contract cannot make alone: times relative to now, and what PostgreSQL can store."""
    limit = now + max_future_skew
    for name in ("occurred_at", "published_at"):
        ts: datetime = getattr(event, name)
        if ts > limit:
            return Rejection(
                ReasonCode.FUTURE_TIMESTAMP,
                f"{name} {ts.isoformat()} is more than {max_future_skew} ahead of the tracker's clock",
                (FieldError(name, "is in the future"),),
            )
    payload = event.model_dump_json().encode()
    # jsonb cannot hold U+0000; refusing it here keeps one bad event from blocking its batch.
    if has_nul(payload):
        return Rejection(
            ReasonCode.INVALID_FIELD,
            "the event contains a NUL character (U+0000), which cannot be stored",
            (FieldError("(event)", "contains U+0000"),),
        )
    return Valid(event, payload)




def duplicate_fact(event: Envelope, field: str, existing_event_id: uuid.UUID) -> Rejection:
    """Rejection for a second event id recording a fact another event already recorded."""
    value = getattr(event, field)
    return Rejection(
        ReasonCode.INVALID_FIELD,
        f"{event.event_type} {field} {value!r} was already recorded by event {existing_event_id}; "
        "publish a correcting event instead of a second copy",
        (FieldError(field, f"already recorded by event {existing_event_id}"),),
    )
