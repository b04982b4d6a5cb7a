"""Opaque keyset cursors: base64url JSON of the last row's sort key, tagged with what it pages."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .problems import ProblemError, make_problem

_VERSION = 1
MAX_CURSOR_LENGTH = 1024


class InvalidCursor(ValueError):
    """A cursor that this server did not produce for this listing."""


def encode_cursor(kind: str, key: list[Any]) -> str:
    """Opaque cursor for the row after `key` in listing `kind`."""
    raw = json.dumps({"v": _VERSION, "k": kind, "p": key}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, shape: tuple[type, ...]) -> list[Any]:
    """The sort key inside `cursor`; InvalidCursor unless it is a `kind` cursor with values of `shape`."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("cursor is too long")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidCursor("cursor is not one this server issued") from exc
    if not isinstance(data, dict) or data.get("v") != _VERSION or data.get("k") != kind:
        raise InvalidCursor("cursor belongs to another listing or version")
    key = data.get("p")
    if not isinstance(key, list) or len(key) != len(shape):
        raise InvalidCursor("cursor has the wrong shape")
    for value, typ in zip(key, shape, strict=True):
        if isinstance(value, bool) or not isinstance(value, typ):
            raise InvalidCursor("cursor has the wrong shape")
    return key


def cursor_or_problem(kind: str, cursor: str | None, shape: tuple[type, ...]) -> list[Any] | None:
    """Decode an optional cursor, turning a bad one into a 400 problem."""
    if cursor is None:
        return None
    try:
        return decode_cursor(kind, cursor, shape)
    except InvalidCursor as exc:
        raise ProblemError(make_problem(400, str(exc), slug="invalid-cursor")) from exc
