"""One hostile record is set aside with a reason, never raised out of a batch's decoding."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fundtrail_runtime.kafka_batch import Inbound
from fundtrail_schemas.decode import ReasonCode, Rejection
from fundtrail_schemas.events import now_utc
from fundtrail_tracker import service
from fundtrail_tracker.core.validation import decode_message
from fundtrail_tracker.service import Tracker, TrackerConfig


@pytest.mark.parametrize("value", [None, b"", b"  \n\t"])
def test_null_and_empty_values_are_empty(value: bytes | None) -> None:
    result, hint = decode_message(value, now=now_utc(), max_future_skew=timedelta(minutes=10))
    assert isinstance(result, Rejection) and result.reason is ReasonCode.EMPTY and hint is None


def test_json_nested_past_the_limit_is_refused_before_validation() -> None:
    raw = b'{"a":' * 100 + b"1" + b"}" * 100
    result, _ = decode_message(raw, now=now_utc(), max_future_skew=timedelta(minutes=10))
    assert isinstance(result, Rejection) and result.reason is ReasonCode.INVALID_FIELD


def test_a_record_whose_decoding_raises_is_rejected_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    real = service.decode_message

    def flaky(raw: Any, **kwargs: Any) -> Any:
        if raw == b"boom":
            raise RecursionError("maximum recursion depth exceeded")
        return real(raw, **kwargs)

    monkeypatch.setattr(service, "decode_message", flaky)
    tracker = Tracker("postgresql://unused", sink=None, config=TrackerConfig())  # type: ignore[arg-type]
    batch = tracker.prepare_raw([Inbound("raw", 0, 1, b"k", b"boom"), Inbound("raw", 0, 2, b"k", None),
                                 Inbound("raw", 0, 3, b"k", b"[1]")])
    assert [(r.source.offset, r.rejection.reason) for r in batch.rejected] == [
        (1, ReasonCode.UNDECODABLE), (2, ReasonCode.EMPTY), (3, ReasonCode.NOT_AN_OBJECT)]
    assert "RecursionError" in batch.rejected[0].rejection.message and batch.rejected[1].source.value == b""
