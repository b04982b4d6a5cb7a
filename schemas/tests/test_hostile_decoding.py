"""Decoding untrusted input never raises past its limits: bounded JSON, null records, topic retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundtrail_schemas.decode import (
    MAX_JSON_DEPTH,
    JsonLimitError,
    ReasonCode,
    Rejection,
    decode_event,
    load_json_bounded,
)
from fundtrail_schemas.enriched import DeadLetter
from fundtrail_schemas.tabular import RowDefaults, map_file
from fundtrail_schemas.topics import DEAD_LETTERS, RAW_EVENTS, TopicSettings, configured_topics


@pytest.mark.parametrize("raw", [b"[" * 5000 + b"]" * 5000, b'{"a":' * 1000 + b"1" + b"}" * 1000,
                                 b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), b"9" * 5000])
def test_bounded_json_refuses_deep_nesting_and_long_integers(raw: bytes) -> None:
    with pytest.raises(JsonLimitError):
        load_json_bounded(raw)


def test_bounded_json_accepts_what_events_hold() -> None:
    doc = {"a": [{"b": [1, 2, {"c": 10**15}]}], "x": "y"}
    assert load_json_bounded(json.dumps(doc).encode()) == doc


@pytest.mark.parametrize("raw", [None, b"", b"[" * 5000])
def test_decode_event_rejects_null_empty_and_deep_records(raw: bytes | None) -> None:
    result = decode_event(raw)
    assert isinstance(result, Rejection)
    assert result.reason in (ReasonCode.EMPTY, ReasonCode.INVALID_FIELD)


@given(st.binary(max_size=200))
def test_decode_event_never_raises(raw: bytes) -> None:
    assert decode_event(raw) is not None


def test_a_dead_letter_of_a_null_record_carries_no_bytes() -> None:
    letter = DeadLetter.build(reason=ReasonCode.EMPTY, message="null", errors=[], value=None, key=b"k", topic="t",
                              partition=0, offset=1, at=datetime.now(UTC), service="test")
    assert letter.original == b"" and letter.original_key_b64


@pytest.mark.parametrize("amount", ["1e1000000", "1e300000", "1e999990", "-1e-999999", "9" * 41])
def test_import_amounts_are_bounded_before_arithmetic(amount: str) -> None:
    csv = ("event_type,source_record_key,occurred_at,source_bureau,region_code,fund_doc_no,transfer_id,amount_yuan,"
           f"to_level,to_region_code\nFundTransferred,k1,2026-03-07 09:30,440705-CZJ,440705,F-1,T-1,{amount},town,"
           "440705101\n").encode()
    report = map_file(csv, "csv", defaults=RowDefaults(), published_at=datetime.now(UTC))
    assert [e.field for e in report.errors] == ["amount_yuan"]


def test_map_file_refuses_more_rows_than_allowed() -> None:
    csv = "event_type,amount_yuan\n" + "PaymentDisbursed,1\n" * 11
    report = map_file(csv.encode(), "csv", published_at=datetime.now(UTC), max_rows=10)
    assert not report.rows and [e.reason for e in report.errors] == ["too_many_rows"]


def test_topic_retention_is_configurable_per_topic() -> None:
    by_name = {t.name: t for t in configured_topics(TopicSettings(retention_ms={RAW_EVENTS: 86_400_000}))}
    assert by_name[RAW_EVENTS].topic_config()["retention.ms"] == "86400000"
    assert by_name[DEAD_LETTERS].retention_ms == 90 * 24 * 3600 * 1000  # the registry's default
    with pytest.raises(ValueError, match="unknown topics"):
        TopicSettings(retention_ms={"no.such.topic": 1})
    with pytest.raises(ValueError, match="-1"):
        TopicSettings(retention_ms={RAW_EVENTS: 0})
