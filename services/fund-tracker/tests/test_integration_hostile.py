"""Hostile records on the real broker never stop the tracker: null, empty, tombstone, deeply nested and
random records are dead-lettered with a reason, the consumer lag returns to 0, and valid events behind
them are still recorded."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundtrail_schemas.enriched import DeadLetter
from fundtrail_tracker.synthetic import encode, generate, key_of

pytestmark = pytest.mark.integration

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _letters(kafka_tools: Any, s: Any) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(r.value) for r in kafka_tools.read_topic(s.bootstrap, s.topics.dead_letters)]


def _drain(kafka_tools: Any, s: Any, worker: Any, letters: int) -> list[DeadLetter]:
    """Wait until `letters` dead letters exist and the raw topic's lag is 0."""
    got = kafka_tools.wait_until(lambda: (ls := _letters(kafka_tools, s)) and len(ls) >= letters and ls, 90,
                                 what=f"{letters} dead letters", alive=worker)
    kafka_tools.wait_until(lambda: kafka_tools.consumer_lag(s.bootstrap, s.group(), s.topics.raw) == 0, 60,
                           what="consumer lag 0", alive=worker)
    return list(got)


def test_null_empty_tombstone_and_deep_records_are_dead_lettered(
    module_scenario: Any, kafka_tools: Any
) -> None:
    s, worker = module_scenario
    before = len(_letters(kafka_tools, s))
    valid = generate(3, seed=11, start=datetime.now(UTC) - timedelta(days=5))
    prod = kafka_tools.producer(s.bootstrap)
    hostile: list[tuple[str, bytes | None, bytes | None]] = [
        ("empty", b"k-null", None),  # a null value without a key is what a producer sends by mistake
        ("empty", b"k-tombstone", None),
        ("empty", b"k-empty", b""),
        ("empty", b"k-blank", b"  \n"),
        ("malformed_json", b"k-deep", b"[" * 5000 + b"]" * 5000),
        ("invalid_field", b"k-deep-obj", b'{"a":' * 1000 + b"1" + b"}" * 1000),
        ("malformed_json", b"k-int", b'{"event_type":"PaymentDisbursed","amount_fen":' + b"9" * 5000 + b"}"),
    ]
    for _, key, value in hostile:
        prod.send(s.topics.raw, key=key, value=value).get(timeout=30)
    # Valid events published after the hostile ones on every partition must still be recorded.
    for e in valid:
        prod.send(s.topics.raw, key=key_of(e), value=encode(e)).get(timeout=30)
    # The trail inputs (violations, cases) take a null record as well.
    prod.send(s.topics.violations, key=b"k-vio", value=None).get(timeout=30)
    prod.send(s.topics.cases, key=b"k-case", value=None).get(timeout=30)
    prod.close()

    letters = _drain(kafka_tools, s, worker, before + len(hostile) + 2)[before:]
    by_key = {(ln.source_topic, ln.original_key_b64): ln for ln in letters}
    for reason, key, _ in hostile:
        ln = by_key[(s.topics.raw, base64.b64encode(key or b"").decode())]
        assert ln.reason.value == reason, ln.message
        assert ln.message
    for topic, key in ((s.topics.violations, b"k-vio"), (s.topics.cases, b"k-case")):
        assert by_key[(topic, base64.b64encode(key).decode())].reason.value == "empty"
    ids = [e["event_id"] for e in valid]
    kafka_tools.wait_until(
        lambda: s.scalar("SELECT count(*) FROM processed_event WHERE event_id = ANY(%s::uuid[])", ids) == len(ids),
        60, what="the valid events behind the hostile ones", alive=worker)
    assert worker.alive(), worker.tail()


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(junk=st.lists(st.binary(max_size=300), min_size=5, max_size=25),
       docs=st.lists(JSON, min_size=5, max_size=25))
def test_random_bytes_and_json_never_stop_the_tracker(
    module_scenario: Any, kafka_tools: Any, junk: list[bytes], docs: list[Any]
) -> None:
    s, worker = module_scenario
    before = len(_letters(kafka_tools, s))
    values = junk + [json.dumps(d).encode() for d in docs]
    prod = kafka_tools.producer(s.bootstrap)
    for i, value in enumerate(values):
        prod.send(s.topics.raw, key=f"random-{i}".encode(), value=value)
    prod.flush()
    prod.close()
    letters = _drain(kafka_tools, s, worker, before + len(values))
    assert len(letters) == before + len(values)
    assert sorted(ln.original for ln in letters[before:]) == sorted(values)
    assert worker.alive(), worker.tail()
