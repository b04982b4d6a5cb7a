"""The trail's leaf format: the one byte encoding every trail entry is hashed in (defined here only).

A leaf is UTF-8 JSON of one object, written compactly (no whitespace outside strings), keys sorted by
code point at every depth, non-ASCII characters as themselves, integers in decimal, datetimes as
RFC 3339 strings with `+00:00` (microseconds only when non-zero). Members (format 3):

    v             3 (this format; format-2 leaves, which lack `publisher`, still decode and verify)
    kind          "event" | "violation" | "case"
    entry_id      UUID: the event id (event, case) or the violation id (violation)
    event_type    the payload's event type
    fund_doc_no, project_id, payment_id, contract_id, vendor_id    subjects (string or null)
    violation_id  UUID or null (violations and case actions)
    region_code   the region the entry belongs to
    occurred_at   when it happened (the payload's event time)
    appended_at   when fund-tracker appended it
    trace_id      32 lowercase hex digits or null
    payload       the event, violation or case action as published (its wire form)
    before, after the ledger slice the event touched (`LedgerState`) before and after it; null for
                  violations and case actions
    prev          for each subject the entry has (keys among fund, project, payment, vendor): the
                  leaf index of the previous entry of that subject, or null for its first entry
    publisher     who published an event entry, or null (violations, case actions): {"topic": the raw
                  topic fund-tracker consumed it from (`fundtrail.events.raw.<region>`, whose Kafka ACLs
                  say who may write it), "principal": the `fundtrail-published-by` header the gateway
                  sets from the caller's token, or null when the record carried none}

The leaf hash is SHA-256(0x00 || leaf bytes) (RFC 9162). Verifiers hash the stored bytes and parse
them; they never re-serialize. `prev` chains make a subject's trail complete: every entry names its
predecessor, so a deleted or hidden entry leaves a pointer to a leaf that is not shown.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

FORMAT = 3
# Formats a verifier accepts: format 2 is format 3 without `publisher` (logs written before it).
FORMATS = (2, 3)
KINDS = ("event", "violation", "case")
# Subject kinds a leaf chains, and the leaf member (and trail_entry column) that names the subject.
SUBJECTS: dict[str, str] = {"fund": "fund_doc_no", "project": "project_id", "payment": "payment_id",
                            "vendor": "vendor_id"}
# trail_entry columns that copy a leaf member of the same name (entry_kind copies `kind`).
COPIED_COLUMNS = ("entry_id", "event_type", "fund_doc_no", "project_id", "payment_id", "contract_id",
                  "vendor_id", "violation_id", "region_code", "occurred_at", "appended_at", "trace_id")

_SORT = orjson.OPT_SORT_KEYS


class LeafError(ValueError):
    """Bytes that are not a leaf of this format."""


def canonical_json(obj: Any) -> bytes:
    """The canonical JSON bytes of `obj` (sorted keys, compact, UTF-8)."""
    return orjson.dumps(obj, option=_SORT)


@dataclass(frozen=True, slots=True)
class Leaf:
    """A decoded leaf: the facts the log commits to for one trail entry."""

    kind: str
    entry_id: str
    event_type: str
    fund_doc_no: str | None
    project_id: str | None
    payment_id: str | None
    contract_id: str | None
    vendor_id: str | None
    violation_id: str | None
    region_code: str
    occurred_at: str
    appended_at: str
    trace_id: str | None
    payload: dict[str, Any]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev: dict[str, int | None]
    publisher: dict[str, str | None] | None = None

    def subject(self, kind: str) -> str | None:
        """The id of this entry's subject of `kind` (fund, project, payment, vendor)."""
        value: str | None = getattr(self, SUBJECTS[kind])
        return value


def encode_leaf(
    *,
    kind: str,
    entry_id: uuid.UUID,
    event_type: str,
    payload: bytes | Mapping[str, Any],
    region_code: str,
    occurred_at: datetime,
    appended_at: datetime,
    trace_id: str | None,
    prev: Mapping[str, int | None],
    fund_doc_no: str | None = None,
    project_id: str | None = None,
    payment_id: str | None = None,
    contract_id: str | None = None,
    vendor_id: str | None = None,
    violation_id: uuid.UUID | None = None,
    before: bytes | Mapping[str, Any] | None = None,
    after: bytes | Mapping[str, Any] | None = None,
    publisher: Mapping[str, str | None] | None = None,
) -> bytes:
    """The leaf bytes of one entry (see the module docstring). JSON given as bytes is parsed first."""
    if kind not in KINDS:
        raise ValueError(f"unknown entry kind {kind!r}")
    return orjson.dumps(
        {
            "v": FORMAT,
            "kind": kind,
            "entry_id": str(entry_id),
            "event_type": event_type,
            "fund_doc_no": fund_doc_no,
            "project_id": project_id,
            "payment_id": payment_id,
            "contract_id": contract_id,
            "vendor_id": vendor_id,
            "violation_id": None if violation_id is None else str(violation_id),
            "region_code": region_code,
            "occurred_at": _utc(occurred_at),
            "appended_at": _utc(appended_at),
            "trace_id": trace_id,
            "payload": _json(payload),
            "before": _json(before),
            "after": _json(after),
            "prev": dict(prev),
            "publisher": None if publisher is None else dict(publisher),
        },
        option=_SORT,
    )


def _json(value: bytes | Mapping[str, Any] | None) -> Any:
    if value is None or type(value) is dict:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return orjson.loads(value)
    return value


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is UTC else at.astimezone(UTC)


_STR = (str,)
_OPT_STR = (str, type(None))
_MEMBERS: dict[str, tuple[type, ...]] = {
    "kind": _STR, "entry_id": _STR, "event_type": _STR, "fund_doc_no": _OPT_STR, "project_id": _OPT_STR,
    "payment_id": _OPT_STR, "contract_id": _OPT_STR, "vendor_id": _OPT_STR, "violation_id": _OPT_STR,
    "region_code": _STR, "occurred_at": _STR, "appended_at": _STR, "trace_id": _OPT_STR,
    "payload": (dict,), "before": (dict, type(None)), "after": (dict, type(None)), "prev": (dict,),
}


def publisher_problem(value: Any) -> str | None:
    """Why `value` is not a leaf's `publisher` member (None when it is one)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"topic", "principal"} or not isinstance(value["topic"], str) \
            or not isinstance(value["principal"], str | None):
        return "member 'publisher' must be null or {topic: string, principal: string or null}"
    return None


def decode_leaf(data: bytes) -> Leaf:
    """Parse leaf bytes; LeafError when they are not a leaf of a format in FORMATS."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise LeafError(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict) or obj.get("v") not in FORMATS or type(obj.get("v")) is not int:
        raise LeafError(f"not a leaf object of format {' or '.join(map(str, FORMATS))}")
    if obj["v"] == 2 and "publisher" in obj:
        raise LeafError("a format-2 leaf has no member 'publisher'")
    if obj["v"] >= 3:
        if "publisher" not in obj:
            raise LeafError(f"member 'publisher' is missing from a format-{obj['v']} leaf")
        problem = publisher_problem(obj["publisher"])
        if problem:
            raise LeafError(problem)
    for name, types in _MEMBERS.items():
        if name not in obj or not isinstance(obj[name], types):
            raise LeafError(f"member {name!r} is missing or has the wrong type")
    if obj["kind"] not in KINDS:
        raise LeafError(f"unknown kind {obj['kind']!r}")
    prev = obj["prev"]
    for key, value in prev.items():
        if key not in SUBJECTS or not (value is None or (isinstance(value, int) and value >= 0)):
            raise LeafError(f"bad prev member {key!r}")
        if obj[SUBJECTS[key]] is None:
            raise LeafError(f"prev names a {key} chain but the entry has no {key}")
    for key, column in SUBJECTS.items():
        if obj[column] is not None and key not in prev:
            raise LeafError(f"the entry has a {key} but prev does not chain it")
    return Leaf(**{name: obj[name] for name in _MEMBERS}, publisher=obj.get("publisher"))


def parse_time(text: str) -> datetime:
    """A leaf's datetime member; LeafError when malformed."""
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise LeafError(f"bad datetime {text!r}") from exc
