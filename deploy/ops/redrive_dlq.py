"""Re-publish dead-lettered originals to the topic they came from (same key, same bytes, same trace).

Runs inside the fundtrail image (it needs kafka-python and fundtrail_schemas), e.g.

    docker compose -f deploy/compose.yaml run --rm -T --no-deps \
        -e DLQ=fundtrail.events.dlq -e REASON=unknown_reference -e FROM_OFFSET=0 \
        topics python - < deploy/ops/redrive_dlq.py

Environment: KAFKA_BOOTSTRAP_SERVERS; DLQ (default fundtrail.events.dlq); REASON (only this reason
code; default all); FROM_OFFSET / TO_OFFSET (inclusive DLQ offset range; default everything); DRY_RUN=1
to only count. Records whose source topic is not an input topic of a worker are skipped and counted.
"""

from __future__ import annotations

import base64
import json
import os
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from fundtrail_schemas.kafka_security import client_security
from fundtrail_schemas.topics import DEAD_LETTERS, ENRICHED_EVENTS, RAW_EVENTS, VIOLATIONS_DLQ

# Where each dead-letter topic's records may be sent back to.
REDRIVE_TARGETS = {DEAD_LETTERS: {RAW_EVENTS}, VIOLATIONS_DLQ: {ENRICHED_EVENTS}}
TRACE_HEADERS = ("traceparent", "tracestate")


def redrive(
    bootstrap: str,
    dlq: str = DEAD_LETTERS,
    reason: str | None = None,
    first: int = 0,
    last: int | None = None,
    dry_run: bool = False,
) -> tuple[int, int, int]:
    """Re-publish the selected records of `dlq`; return (sent, skipped, last offset read)."""
    targets = REDRIVE_TARGETS[dlq]
    tp = TopicPartition(dlq, 0)  # dead-letter topics have one partition (fundtrail_schemas.topics)
    security = client_security("kafka-python")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, **security)
    producer = None if dry_run else KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=10, **security)
    sent = skipped = 0
    last_read = first - 1
    try:
        consumer.assign([tp])
        end = consumer.end_offsets([tp])[tp]
        stop = end if last is None else min(end, last + 1)
        consumer.seek(tp, first)
        while consumer.position(tp) < stop:
            for msg in consumer.poll(timeout_ms=1000, max_records=500).get(tp, []):
                if msg.offset >= stop:
                    break
                last_read = msg.offset
                record = json.loads(msg.value)
                if record["source_topic"] not in targets or (reason and record["reason"] != reason):
                    skipped += 1
                    continue
                key_b64 = record.get("original_key_b64")
                key = base64.b64decode(key_b64) if key_b64 else None
                headers = [(k, v) for k, v in (msg.headers or []) if k in TRACE_HEADERS]
                if producer is not None:
                    producer.send(
                        record["source_topic"], key=key, value=base64.b64decode(record["original_b64"]), headers=headers
                    )
                sent += 1
        if producer is not None:
            producer.flush()
    finally:
        consumer.close()
        if producer is not None:
            producer.close()
    return sent, skipped, last_read


def main() -> int:
    """Read the selection from the environment and re-drive it."""
    env = os.environ
    last = env.get("TO_OFFSET")
    sent, skipped, last_read = redrive(
        env["KAFKA_BOOTSTRAP_SERVERS"],
        dlq=env.get("DLQ", DEAD_LETTERS),
        reason=env.get("REASON") or None,
        first=int(env.get("FROM_OFFSET", "0")),
        last=int(last) if last else None,
        dry_run=env.get("DRY_RUN") == "1",
    )
    verb = "would re-drive" if env.get("DRY_RUN") == "1" else "re-drove"
    print(f"{verb} {sent}, skipped {skipped}; DLQ offsets read up to {last_read}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
