"""The batch transaction against PostgreSQL (real PostgreSQL, real Kafka).

The transaction runs in pipeline mode and its writes share round trips, so a refusal surfaces at a
pipeline sync rather than at the statement. Two tests make PostgreSQL refuse with a trigger and
check that the service still behaves as documented: a unique violation (another replica won the
race) decides the batch again with nothing sent twice; an event the database refuses is
dead-lettered alone while the rest of its batch is recorded. A third checks that a batch's lookup
by a non-unique key does not depend on the table having been analyzed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_tracker.adapters.kafka import AiokafkaSink, Inbound
from fundtrail_tracker.adapters.postgres import conninfo
from fundtrail_tracker.service import Tracker, TrackerConfig
from fundtrail_tracker.synthetic import encode, generate, key_of

pytestmark = pytest.mark.integration

BATCH = 12


@pytest.fixture
async def setup(migrated_database_url: str, scenario_factory: Any) -> AsyncIterator[tuple[Any, Tracker, list[Inbound]]]:
    from aiokafka import AIOKafkaProducer

    scenario = scenario_factory(migrated_database_url)
    producer = AIOKafkaProducer(bootstrap_servers=scenario.bootstrap, acks="all")
    await producer.start()
    tracker = Tracker(migrated_database_url, AiokafkaSink(producer), config=TrackerConfig(topics=scenario.topics),
                      signing_key=Ed25519PrivateKey.generate())
    events = generate(BATCH, seed=3, start=datetime.now(UTC) - timedelta(days=10))
    messages = [Inbound(scenario.topics.raw, 0, i, key_of(e), encode(e), ()) for i, e in enumerate(events)]
    try:
        yield scenario, tracker, messages
    finally:
        await tracker.close()
        await producer.stop()


async def test_a_lost_unique_race_decides_the_batch_again_and_sends_nothing_twice(
    setup: tuple[Any, Tracker, list[Inbound]], kafka_tools: Any
) -> None:
    scenario, tracker, messages = setup
    # The first insert into processed_event fails as if another replica had just recorded the event
    # (a sequence, not a table, remembers it: the failed transaction's writes are rolled back).
    with scenario.db() as conn:
        conn.execute("""
        CREATE SEQUENCE race_once;
        CREATE FUNCTION lose_race_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF nextval('race_once') = 1 THEN
            RAISE EXCEPTION 'duplicate key (simulated race)' USING ERRCODE = 'unique_violation';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER lose_race_once BEFORE INSERT ON processed_event
          FOR EACH STATEMENT EXECUTE FUNCTION lose_race_once();
    """)

    result = await tracker.handle_raw(messages)

    assert (result.accepted, result.rejected, result.duplicates) == (BATCH, 0, 0)
    assert scenario.scalar("SELECT nextval('race_once')") == 3  # failed once, then written once
    assert scenario.scalar("SELECT count(*) FROM processed_event") == BATCH
    assert scenario.scalar("SELECT count(*) FROM trail_entry") == BATCH
    enriched = kafka_tools.read_topic(scenario.bootstrap, scenario.topics.enriched)
    # The outputs leave only after the writes that can race succeeded: each event exactly once.
    ids = sorted(json.loads(r.value)["event"]["event_id"] for r in enriched)
    expected = sorted(str(json.loads(m.value)["event_id"]) for m in messages)
    assert ids == expected


async def test_an_event_the_database_refuses_is_dead_lettered_alone(
    setup: tuple[Any, Tracker, list[Inbound]], kafka_tools: Any
) -> None:
    scenario, tracker, messages = setup
    refused = messages[-1]  # the last event: nothing later in the batch depends on it
    refused_id = uuid.UUID(json.loads(refused.value)["event_id"])
    with scenario.db() as conn:
        conn.execute(f"""
        CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.event_id = '{refused_id}' THEN
            RAISE EXCEPTION 'value out of range (simulated)' USING ERRCODE = 'numeric_value_out_of_range';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_one BEFORE INSERT ON processed_event FOR EACH ROW EXECUTE FUNCTION refuse_one();
    """)

    result = await tracker.handle_raw(messages)

    assert (result.accepted, result.rejected) == (BATCH - 1, 1)
    assert result.rejected_reasons == {"invalid_field": 1}
    assert scenario.scalar("SELECT count(*) FROM processed_event") == BATCH - 1
    assert scenario.scalar("SELECT count(*) FROM processed_event WHERE event_id = %s", refused_id) == 0
    assert scenario.scalar("SELECT count(*) FROM trail_entry") == BATCH - 1
    dead = kafka_tools.read_topic(scenario.bootstrap, scenario.topics.dead_letters)
    assert len(dead) == 1
    letter = json.loads(dead[0].value)
    assert letter["reason"] == "invalid_field"
    assert "cannot be stored" in letter["message"]
    enriched = kafka_tools.read_topic(scenario.bootstrap, scenario.topics.enriched)
    assert len(enriched) == BATCH - 1
    assert refused_id not in {uuid.UUID(json.loads(r.value)["event"]["event_id"]) for r in enriched}

    # The connection is usable afterwards: the refused event, once the database accepts it, is recorded.
    with scenario.db() as conn:
        conn.execute("DROP TRIGGER refuse_one ON processed_event")
    again = await tracker.handle_raw([refused])
    assert again.accepted == 1
    assert scenario.scalar("SELECT count(*) FROM processed_event") == BATCH


def test_invoice_lookups_probe_the_index_before_any_analyze(migrated_database_url: str) -> None:
    from fundtrail_tracker.adapters.postgres import INVOICE_PAYMENTS_SQL

    with psycopg.connect(conninfo(migrated_database_url)) as conn:
        conn.execute("ALTER TABLE payment SET (autovacuum_enabled = off)")  # no statistics, ever
        conn.execute(
            "INSERT INTO payment (payment_id, event_id, fund_doc_no, invoice_no, amount_fen, region_code, paid_at)"
            " SELECT 'P' || i, gen_random_uuid(), 'F', 'INV-' || i, 100, '440703', now()"
            " FROM generate_series(1, 20000) AS i"
        )
        wanted = [f"INV-{i}" for i in range(100, 150)] + ["INV-missing"]
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + INVOICE_PAYMENTS_SQL, (wanted,)).fetchall())
        rows = conn.execute(INVOICE_PAYMENTS_SQL, (wanted,)).fetchall()
    assert "Seq Scan on payment" not in plan, plan
    assert "payment_invoice_no" in plan, plan  # the index on payment.invoice_no
    assert sorted(r[0] for r in rows) == sorted(wanted[:-1])
