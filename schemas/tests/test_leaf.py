"""The leaf format: canonical bytes, a strict decoder, and prev chains that name each subject."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from fundtrail_schemas.leaf import FORMAT, LeafError, decode_leaf, encode_leaf, parse_time

AT = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


def _leaf(**over: Any) -> bytes:
    args: dict[str, Any] = {
        "kind": "event", "entry_id": uuid.UUID(int=7), "event_type": "PaymentDisbursed",
        "payload": b'{"z": 1, "a": {"y": "\xe6\xb1\x9f", "b": 2}}', "region_code": "440705101", "occurred_at": AT,
        "appended_at": AT + timedelta(microseconds=120_000), "trace_id": "ab" * 16,
        "prev": {"fund": 3, "payment": None}, "fund_doc_no": "江财〔2026〕1号", "payment_id": "ZF-1",
        "before": b'{"position": {"paid_fen": 0}}', "after": {"position": {"paid_fen": 5}},
    }
    args.update(over)
    return encode_leaf(**args)


def test_bytes_are_sorted_compact_utf8_json() -> None:
    data = _leaf()
    obj = json.loads(data)
    assert data == json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert "江财".encode() in data and b"\\u" not in data
    assert obj["v"] == FORMAT and obj["payload"] == {"a": {"b": 2, "y": "江"}, "z": 1}
    assert obj["occurred_at"] == "2026-03-02T01:30:00+00:00"
    assert obj["appended_at"] == "2026-03-02T01:30:00.120000+00:00"


def test_times_are_written_in_utc_whatever_their_zone() -> None:
    shanghai = timezone(timedelta(hours=8))
    assert _leaf(occurred_at=AT.astimezone(shanghai)) == _leaf()


def test_decode_gives_back_every_member() -> None:
    leaf = decode_leaf(_leaf())
    assert (leaf.kind, leaf.entry_id, leaf.fund_doc_no, leaf.payment_id, leaf.project_id) == (
        "event", str(uuid.UUID(int=7)), "江财〔2026〕1号", "ZF-1", None)
    assert leaf.prev == {"fund": 3, "payment": None} and leaf.after == {"position": {"paid_fen": 5}}
    assert leaf.subject("fund") == "江财〔2026〕1号" and parse_time(leaf.occurred_at) == AT


@pytest.mark.parametrize("data", [
    b"\xde\xad", b"[]", b'{"v": 1}', json.dumps({**json.loads(_leaf()), "kind": "other"}).encode(),
    json.dumps({**json.loads(_leaf()), "payload": None}).encode(),
    json.dumps({**json.loads(_leaf()), "prev": {"fund": -1, "payment": None}}).encode(),
    json.dumps({**json.loads(_leaf()), "prev": {"fund": 3}}).encode(),  # the payment chain is not named
    json.dumps({**json.loads(_leaf()), "prev": {"fund": 3, "payment": None, "vendor": 1}}).encode(),
])
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(LeafError):
        decode_leaf(data)


def test_unknown_kind_is_refused_when_encoding() -> None:
    with pytest.raises(ValueError, match="kind"):
        _leaf(kind="note")


PUBLISHER = {"topic": "fundtrail.events.raw.440705", "principal": "BUREAU-440705-7"}


def test_format_3_records_the_publisher_and_format_2_leaves_still_decode() -> None:
    leaf = decode_leaf(_leaf(publisher=PUBLISHER))
    assert leaf.publisher == PUBLISHER and json.loads(_leaf(publisher=PUBLISHER))["v"] == 3 == FORMAT
    assert decode_leaf(_leaf()).publisher is None and json.loads(_leaf())["publisher"] is None
    # A leaf written before format 3 (no publisher member) decodes to the same facts.
    old = {k: v for k, v in json.loads(_leaf()).items() if k != "publisher"} | {"v": 2}
    assert decode_leaf(json.dumps(old).encode()) == decode_leaf(_leaf())


@pytest.mark.parametrize("change", [
    {"v": 2},  # format 2 has no publisher
    {"publisher": "BUREAU-1"},
    {"publisher": {"topic": "t"}},
    {"publisher": {"topic": 1, "principal": None}},
    {"publisher": {"topic": "t", "principal": None, "extra": 1}},
    {"v": 4},
    {"v": 3.0},
])
def test_a_bad_publisher_or_version_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(LeafError):
        decode_leaf(json.dumps({**json.loads(_leaf(publisher=PUBLISHER)), **change}).encode())


def test_format_3_without_its_publisher_member_is_refused() -> None:
    obj = json.loads(_leaf())
    del obj["publisher"]
    with pytest.raises(LeafError, match="publisher"):
        decode_leaf(json.dumps(obj).encode())
