"""15 poison messages among 10,000: every one dead-lettered with its reason, the rest recorded, lag back to 0."""

from __future__ import annotations

import base64
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fundtrail_schemas.enriched import DeadLetter
from fundtrail_schemas.examples import load_examples
from fundtrail_tracker.synthetic import encode, generate, key_of

pytestmark = pytest.mark.integration

VALID = 9_985


def poison(valid: list[dict[str, Any]]) -> list[tuple[str, bytes, bytes, int]]:
    """(expected reason, key, value, index after which to publish it)."""
    now = datetime.now(UTC)
    pay = next(e for e in valid if e["event_type"] == "PaymentDisbursed")
    pay_at = valid.index(pay)

    def variant(**changes: Any) -> bytes:
        return encode({**pay, "event_id": str(uuid.uuid4()), **changes})

    key = key_of(pay)
    violation = load_examples()["ViolationRaised"]
    unknown_fund = {**pay, "event_id": str(uuid.uuid4()), "fund_doc_no": "未下达〔2026〕999号",
                    "payment_id": f"Z-UNKNOWN-{uuid.uuid4().hex[:6]}", "invoice_no": "INV-UNKNOWN"}
    missing = {k: v for k, v in pay.items() if k != "invoice_no"}
    return [
        ("malformed_json", key, b'{"event_type": "PaymentDisbursed", "amount_fen": 1', 0),
        ("malformed_json", key, b"\xff\xfe\xfa not utf-8", 0),
        ("not_an_object", key, b"[1, 2, 3]", 0),
        ("unknown_type", key, variant(event_type="PaymentMade"), 0),
        ("unsupported_schema_version", key, variant(schema_version=2), 0),
        ("invalid_field", key, variant(amount_fen=-500, payment_id="Z-NEG"), 0),
        ("invalid_field", key, variant(amount_fen=1234.5, payment_id="Z-FLOAT"), 0),
        ("invalid_field", key, variant(amount_fen="1000", payment_id="Z-STR"), 0),
        ("invalid_field", key, encode({**missing, "event_id": str(uuid.uuid4())}), 0),
        ("future_timestamp", key, variant(occurred_at=(now + timedelta(days=2)).isoformat(),
                                          published_at=(now + timedelta(days=2, minutes=1)).isoformat(),
                                          payment_id="Z-FUTURE"), 0),
        ("oversized", key, b'{"event_type": "PaymentDisbursed", "purpose": "' + b"x" * 300_000 + b'"}', 0),
        ("invalid_field", key, variant(purpose="bad\u0000byte", payment_id="Z-NUL"), 0),
        ("not_allowed_here", key, json.dumps(violation).encode(), 0),
        ("unknown_reference", unknown_fund["fund_doc_no"].encode(), encode(unknown_fund), 0),
        # A second event id for a payment already recorded: rejected, the money is not counted twice.
        ("invalid_field", key, variant(), pay_at + 1),
    ]


def test_poison_messages_are_dead_lettered_and_the_rest_recorded(
    migrated_database_url: str, scenario_factory: Any, workers: Any, kafka_tools: Any
) -> None:
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    s = scenario_factory(migrated_database_url, FUNDTRAIL_TRACKER_PARK_TIMEOUT="2",
                         FUNDTRAIL_TRACKER_PARK_SWEEP_INTERVAL="0.5")
    valid = generate(VALID, seed=seed, start=datetime.now(UTC) - timedelta(days=20))
    bad = poison(valid)
    # Interleave: each poison goes at a random position after the one it must follow.
    stream: list[tuple[str | None, bytes, bytes]] = [(None, key_of(e), encode(e)) for e in valid]
    for reason, key, value, after in bad:
        stream.insert(rng.randint(after, len(stream)), (reason, key, value))
    worker = workers(s)
    prod = kafka_tools.producer(s.bootstrap)
    sent: dict[tuple[int, int], tuple[str, bytes]] = {}
    futures = [(reason, value, prod.send(s.topics.raw, key=key, value=value)) for reason, key, value in stream]
    prod.flush()
    for reason, value, fut in futures:
        md = fut.get(timeout=30)
        if reason is not None:
            sent[(md.partition, md.offset)] = (reason, value)
    prod.close()
    assert len(sent) == 15

    # Progress by the trail's last sequence number (index lookup), not a count(*) scan per poll.
    kafka_tools.wait_until(lambda: s.scalar("SELECT coalesce(max(seq) + 1, 0) FROM trail_entry") >= VALID, 240,
                           what=f"{VALID} accepted events (seed {seed})", alive=worker)
    def all_letters() -> list[Any] | None:
        records = kafka_tools.read_topic(s.bootstrap, s.topics.dead_letters)
        return records if len(records) >= 15 else None

    letters = kafka_tools.wait_until(all_letters, 60, what="15 dead letters", alive=worker)
    kafka_tools.wait_until(lambda: kafka_tools.consumer_lag(s.bootstrap, s.group(), s.topics.raw) == 0, 60,
                           what="consumer lag 0", alive=worker)

    assert len(letters) == 15, [DeadLetter.model_validate_json(r.value).reason for r in letters]
    for record in letters:
        letter = DeadLetter.model_validate_json(record.value)
        reason, original = sent.pop((letter.source_partition, letter.source_offset))
        assert letter.reason.value == reason, (letter.message, seed)
        assert letter.original == original
        assert letter.source_topic == s.topics.raw
        assert letter.message and letter.service == "fund-tracker"
        assert record.key == base64.b64decode(letter.original_key_b64 or "")
    assert not sent
    assert s.scalar("SELECT count(*) FROM processed_event") == VALID
    assert s.scalar("SELECT count(*) FROM trail_entry") == VALID
    assert s.scalar("SELECT count(*) FROM parked_event") == 0
    assert s.scalar("SELECT count(*) FROM payment") == sum(e["event_type"] == "PaymentDisbursed" for e in valid)
    assert worker.alive(), worker.tail()
