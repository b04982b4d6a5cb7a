"""The fast decode path (bytes validated straight into the model) accepts exactly what the careful
path (bounded JSON parse, then validation) accepts, into the same event; it never accepts more."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest

from fundtrail_schemas.decode import (
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    JsonLimitError,
    Rejection,
    decode_event,
    load_json_bounded,
    parse_object,
    validate_event_json,
)
from fundtrail_schemas.events import SourceEvent, source_event_adapter

SOURCE_TYPES = {m.__name__ for m in get_args(get_args(SourceEvent)[0])}
EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples" / "v1").glob("*.json"))
_DEEP: Any = 1
for _ in range(MAX_JSON_DEPTH + 2):
    _DEEP = [_DEEP]

# Values every field is set to in turn: wrong types, limits, hostile text.
_HOSTILE: list[Any] = [
    None, "", "x", -1, 0, 1.5, 10**15, 10**15 + 1, -(10**15) - 1, 10 ** (MAX_INT_DIGITS + 5), True, [], {},
    _DEEP, {"a": _DEEP}, "\u0000", "2026-03-01T09:00:00", "2026-03-01T09:00:00+08:00", "2026-12-31",
    "00000000-0000-0000-0000-000000000000", "9" * (MAX_INT_DIGITS + 1),
]
# Raw texts that are not JSON documents an encoder would write.
_RAW_EXTRAS = [b'"\\ud800"', b"NaN", b"Infinity", b"1e999", b"-0", b"9" * (MAX_INT_DIGITS + 1)]


def _careful(raw: bytes, source_only: bool) -> Any:
    try:
        obj = load_json_bounded(raw)
    except (JsonLimitError, ValueError):
        return None
    result = parse_object(obj, source_only=source_only)
    return None if isinstance(result, Rejection) else result


def _variants(doc: dict[str, Any]) -> list[bytes]:
    out = [json.dumps(doc).encode()]
    for name in doc:
        dropped = {k: v for k, v in doc.items() if k != name}
        out.append(json.dumps(dropped).encode())
        for value in _HOSTILE:
            out.append(json.dumps({**doc, name: value}).encode())
        base = json.dumps({**doc, name: 0}).encode()
        for extra in _RAW_EXTRAS:
            out.append(base.replace(f'"{name}": 0'.encode(), f'"{name}": '.encode() + extra, 1))
    out.append(json.dumps({**doc, "unknown_field": 1}).encode())
    out.append(json.dumps([doc]).encode())
    out.append(json.dumps(doc).encode()[:-1])
    out.append(json.dumps({**doc, "values": {"k": _DEEP}}).encode())
    out.append(json.dumps({**doc, "values": {"k": 10 ** (MAX_INT_DIGITS + 3)}}).encode())
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("source_only", [True, False])
def test_fast_path_agrees_with_the_careful_path(path: Path, source_only: bool) -> None:
    doc = json.loads(path.read_bytes())
    accepted_fast = 0
    for raw in _variants(doc):
        fast = validate_event_json(raw, source_only=source_only)
        careful = _careful(raw, source_only)
        if fast is not None:
            accepted_fast += 1
            assert careful == fast, raw
        # What the service calls: the fast path, else the careful one; the outcome is the careful one's.
        decoded = decode_event(raw, source_only=source_only)
        assert (None if isinstance(decoded, Rejection) else decoded) == careful, raw
    if doc["event_type"] in SOURCE_TYPES or not source_only:
        assert accepted_fast > 0  # the example itself at least goes the fast way


def _free_form(schema: Any, defs: dict[str, Any], seen: set[str]) -> list[str]:
    """Schema nodes that admit arbitrary JSON (where nesting is not bounded by the model)."""
    found: list[str] = []
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                found += _free_form(defs[name], defs, seen)
            return found
        if schema == {} or (schema.get("type") == "object" and schema.get("additionalProperties", False) is not False
                            and "properties" not in schema):
            found.append(str(schema))
        for value in schema.values():
            if isinstance(value, dict | list):
                found += _free_form(value, defs, seen)
    elif isinstance(schema, list):
        for value in schema:
            found += _free_form(value, defs, seen)
    return found


def test_source_events_have_no_free_form_fields() -> None:
    """Why the fast path counts no brackets for bureau events: their nesting is the model's, a few levels."""
    schema = source_event_adapter.json_schema()
    assert _free_form(schema, schema.get("$defs", {}), set()) == []


def _unbounded_integers(schema: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(schema, dict):
        if schema.get("type") == "integer" and not path.endswith("/schema_version"):
            if abs(schema.get("maximum", 10**MAX_INT_DIGITS)) >= 10**MAX_INT_DIGITS or abs(
                    schema.get("minimum", -(10**MAX_INT_DIGITS))) >= 10**MAX_INT_DIGITS:
                found.append(path)
        for key, value in schema.items():
            found += _unbounded_integers(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for n, value in enumerate(schema):
            found += _unbounded_integers(value, f"{path}/{n}")
    return found


def test_source_events_hold_only_bounded_integers() -> None:
    """Why the fast path looks for no long integers in bureau events: none validates (the schema
    version is checked against the supported ones by a validator)."""
    assert _unbounded_integers(source_event_adapter.json_schema()) == []
