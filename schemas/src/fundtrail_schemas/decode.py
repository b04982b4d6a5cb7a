"""Turn raw bytes into a contract event, or into a rejection that says why in plain words."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from .events import EVENT_TYPES, Envelope, any_event_adapter, source_event_adapter

# Larger messages are refused before parsing (the broker allows 2 MiB; an event is ~1 KiB).
MAX_EVENT_BYTES = 256 * 1024
# An event nests a few levels (bidder lists); deeper JSON is hostile, refused before validation.
MAX_JSON_DEPTH = 32
# Integers in events are fen (<= 10**15) or small counts: 40 digits is already absurd, and
# Python's int() of a long digit string costs quadratic CPU (refused past 4,300 digits anyway).
MAX_INT_DIGITS = 40


class ReasonCode(StrEnum):
    """Machine-readable reasons for a rejected event (dead-letter topic, HTTP problems)."""

    OVERSIZED = "oversized"
    EMPTY = "empty"  # a null (tombstone) or empty record value
    UNDECODABLE = "undecodable"  # decoding the record failed unexpectedly; it is set aside, not retried
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    INVALID_FIELD = "invalid_field"
    NOT_ALLOWED_HERE = "not_allowed_here"
    FUTURE_TIMESTAMP = "future_timestamp"
    UNKNOWN_REFERENCE = "unknown_reference"
    REGION_FORBIDDEN = "region_forbidden"
    PROVENANCE = "provenance"  # on a region's raw topic, an event of a region outside it
    # compliance (topic fundtrail.violations.dlq)
    EVALUATION_ERROR = "evaluation_error"
    INVALID_TRANSITION = "invalid_transition"
    UNKNOWN_VIOLATION = "unknown_violation"
    ACTION_NOT_PERMITTED = "action_not_permitted"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True)
class Rejection:
    """Why an input is not a valid event."""

    reason: ReasonCode
    message: str
    errors: tuple[FieldError, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason.value,
            "message": self.message,
            "errors": [e.as_dict() for e in self.errors],
        }


def _loc(loc: tuple[int | str, ...], event_type: str | None) -> str:
    # Pydantic prefixes discriminated-union errors with the tag; users think in field paths.
    parts = [str(p) for p in loc]
    if parts and event_type and parts[0] == event_type:
        parts = parts[1:]
    return ".".join(parts) or "(event)"


_PLAIN = {
    "missing": "is required but missing",
    "int_type": "must be an integer (amounts are integer fen)",
    "int_from_float": "must be an integer, not a decimal number (amounts are integer fen)",
    "float_type": "must be a number",
    "greater_than_equal": "must not be negative",
    "extra_forbidden": "is not a field of this event type",
    "timezone_aware": "must include a timezone offset, e.g. 2026-03-01T09:00:00+08:00",
    "datetime_type": "must be an ISO-8601 date-time with a timezone offset",
    "datetime_parsing": "must be an ISO-8601 date-time with a timezone offset",
    "date_from_datetime_parsing": "must be an ISO-8601 date, e.g. 2026-12-31",
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
}


def plain_errors(exc: ValidationError, event_type: str | None = None) -> tuple[FieldError, ...]:
    """Field errors in plain words, one per problem."""
    out = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        msg = _PLAIN.get(kind)
        if kind == "greater_than_equal" and err.get("ctx", {}).get("ge") not in (0, None):
            msg = None
        if msg is None:
            msg = str(err["msg"]).removeprefix("Value error, ")
        out.append(FieldError(_loc(tuple(err["loc"]), event_type), msg))
    return tuple(out)


def _rejection_from(exc: ValidationError, event_type: str | None) -> Rejection:
    errors = plain_errors(exc, event_type)
    if any(e.field == "schema_version" for e in errors):
        msg = next(e.message for e in errors if e.field == "schema_version")
        return Rejection(ReasonCode.UNSUPPORTED_SCHEMA_VERSION, msg, errors)
    summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return Rejection(ReasonCode.INVALID_FIELD, f"invalid {event_type or 'event'}: {summary}", errors)


def parse_object(obj: Any, *, source_only: bool = True) -> Envelope | Rejection:
    """Validate an already-parsed JSON object as an event."""
    if not isinstance(obj, dict):
        return Rejection(ReasonCode.NOT_AN_OBJECT, "an event must be a JSON object")
    event_type = obj.get("event_type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        return Rejection(
            ReasonCode.UNKNOWN_TYPE,
            f"unknown event_type {event_type!r}; known types: {known}",
            (FieldError("event_type", "unknown event type"),),
        )
    adapter = source_event_adapter if source_only else any_event_adapter
    try:
        event: Envelope = adapter.validate_python(obj)
    except ValidationError as exc:
        if source_only and "union_tag_invalid" in {e["type"] for e in exc.errors()}:
            return Rejection(
                ReasonCode.NOT_ALLOWED_HERE,
                f"{event_type} is not published by bureaus; it is produced by fundtrail itself",
                (FieldError("event_type", "not a bureau event"),),
            )
        return _rejection_from(exc, event_type)
    return event


# An escaped NUL: "\u0000" preceded by an even number of backslashes. PostgreSQL's jsonb and text
# cannot hold U+0000, so a stored event or case action must not contain one.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def event_id_hint(obj: Any) -> uuid.UUID | None:
    """The event id a refused record claims, when it names a well-formed one (for the dead letter)."""
    if isinstance(obj, dict) and isinstance(obj.get("event_id"), str):
        try:
            return uuid.UUID(obj["event_id"])
        except ValueError:
            return None
    return None


def has_nul(json_bytes: bytes) -> bool:
    """True if JSON text holds U+0000 in a string (which PostgreSQL cannot store)."""
    return b"\\u0000" in json_bytes and _NUL_ESCAPE.search(json_bytes) is not None


class JsonLimitError(ValueError):
    """JSON nested deeper or with longer integers than any event has."""


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonLimitError(f"an integer of {len(text.lstrip('-'))} digits; at most {MAX_INT_DIGITS} are accepted")
    return int(text)


def json_depth_exceeds(obj: Any, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True if containers nest deeper than `max_depth` (iterative: deep input cannot recurse here)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def load_json_bounded(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON from an untrusted source: integers of at most MAX_INT_DIGITS digits, nesting of at
    most `max_depth`. Raises JsonLimitError past a limit, ValueError (json.JSONDecodeError,
    UnicodeDecodeError) for what is not JSON; never RecursionError."""
    try:
        obj = json.loads(raw, parse_int=_bounded_int)
    except RecursionError as exc:  # the C scanner's own guard, ~1,000 levels: far past any limit
        raise JsonLimitError(f"JSON nested deeper than {max_depth} levels") from exc
    if json_depth_exceeds(obj, max_depth):
        raise JsonLimitError(f"JSON nested deeper than {max_depth} levels")
    return obj


# A run of more integer digits than MAX_INT_DIGITS anywhere in the bytes (also inside strings, which
# only sends those events down the careful path).
_LONG_DIGITS = re.compile(rb"[0-9]{%d}" % (MAX_INT_DIGITS + 1))
# Free-form fields (ViolationRaised.values) can nest; with at most this many brackets no JSON can.
_FLAT_ENOUGH = MAX_JSON_DEPTH


def validate_event_json(raw: bytes, *, source_only: bool = True) -> Envelope | None:
    """The fast path: the bytes validated straight into the model in pydantic-core (one parse, in
    native code, no intermediate Python dicts). None when it cannot accept the event alone: any
    validation error or, in events with free-form fields (ViolationRaised.values), a run of digits
    longer than MAX_INT_DIGITS or more brackets than MAX_JSON_DEPTH. The caller then takes `parse_object` over
    `load_json_bounded` (the careful path), which words every rejection and enforces every limit,
    so both paths accept and refuse exactly the same inputs (tests/test_decode_fast_path.py)."""
    try:
        event: Envelope = (source_event_adapter if source_only else any_event_adapter).validate_json(raw)
    except ValueError:  # ValidationError (a ValueError), bad JSON, bad UTF-8, jiter's recursion guard
        return None
    if source_only:
        # A bureau event that validated holds no long integer (every integer field is bounded, the
        # schema version is one this build supports) and nests only as its model does.
        return event
    if raw.count(b"{") + raw.count(b"[") > _FLAT_ENOUGH or _LONG_DIGITS.search(raw) is not None:
        return None
    return event


def decode_event(raw: bytes | None, *, source_only: bool = True) -> Envelope | Rejection:
    """Decode one message value. Never raises on bad input."""
    if not raw:
        return Rejection(ReasonCode.EMPTY, "the record has no value (a null, tombstone or empty record)")
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(
            ReasonCode.OVERSIZED, f"message is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES} bytes"
        )
    fast = validate_event_json(raw, source_only=source_only)
    if fast is not None:
        return fast
    try:
        obj = load_json_bounded(raw)
    except JsonLimitError as exc:
        return Rejection(ReasonCode.INVALID_FIELD, str(exc))
    except ValueError as exc:
        return Rejection(ReasonCode.MALFORMED_JSON, f"not valid UTF-8 JSON: {exc}")
    return parse_object(obj, source_only=source_only)


def encode_event(event: Envelope) -> bytes:
    """Canonical JSON bytes of an event (the wire format)."""
    return event.model_dump_json(exclude_none=False).encode()
