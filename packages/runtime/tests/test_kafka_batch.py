"""BatchReader against the real broker: order, batches formed while one is processed, commits only
after a batch is done, nothing committed past a failed batch, revoked records let go."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from fundtrail_runtime.kafka_admin import ensure_topics
from fundtrail_runtime.kafka_batch import BatchReader, Inbound
from fundtrail_schemas.topics import TopicSpec

pytestmark = pytest.mark.integration


async def _topic(bootstrap: str, partitions: int = 2) -> str:
    name = f"test.batch.{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(ensure_topics, bootstrap, [TopicSpec(name, partitions, "n", "test")])
    return name


async def _reader_on_new_topic(bootstrap: str, records: int) -> tuple[str, str, BatchReader]:
    """A two-partition topic holding `records` records, and a reader in a group of its own."""
    topic, group = await _topic(bootstrap), f"g-{uuid.uuid4().hex[:6]}"
    await _produce(bootstrap, topic, 0, records)
    return topic, group, BatchReader(bootstrap, [topic], group, max_records=1000)


async def _produce(bootstrap: str, topic: str, first: int, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(first, first + count):
            await producer.send(topic, key=str(i % 2).encode(), value=str(i).encode(), partition=i % 2)
        await producer.flush()
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in (0, 1)}
    finally:
        await consumer.stop()


async def _until(predicate, seconds: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_records_read_during_a_batch_become_the_next_one_in_order_and_are_committed(
    kafka_bootstrap: str,
) -> None:
    topic, group, reader = await _reader_on_new_topic(kafka_bootstrap, records=10)
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def process(batch: list[Inbound]) -> None:
        batches.append([int(r.value) for r in batch])
        if len(batches) == 1:
            await release.wait()  # the first batch is slow: more records arrive meanwhile

    run = asyncio.create_task(reader.run(list, process))
    try:
        await _until(lambda: len(batches) == 1)
        await _produce(kafka_bootstrap, topic, 10, 200)
        await asyncio.sleep(1.0)  # read while the first batch is in flight, not handed out
        assert len(batches) == 1
        assert await _committed(kafka_bootstrap, group, topic) == {0: None, 1: None}
        release.set()
        await _until(lambda: sum(map(len, batches)) == 210)
        # Everything read during the first batch went out as one batch, not one per fetch.
        assert len(batches) == 2, [len(b) for b in batches]
        for p in (0, 1):
            seen = [v for b in batches for v in b if v % 2 == p]
            assert seen == sorted(seen) and len(seen) == 105
        for _ in range(100):  # the commit follows the batch
            if await _committed(kafka_bootstrap, group, topic) == {0: 105, 1: 105}:
                break
            await asyncio.sleep(0.1)
        assert await _committed(kafka_bootstrap, group, topic) == {0: 105, 1: 105}
    finally:
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run


async def test_a_failed_batch_stops_the_loop_and_commits_nothing_past_the_last_good_one(
    kafka_bootstrap: str,
) -> None:
    topic, group, reader = await _reader_on_new_topic(kafka_bootstrap, records=4)
    calls = 0

    async def process(batch: list[Inbound]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await _produce(kafka_bootstrap, topic, 4, 6)  # the next batch, which fails
            await asyncio.sleep(0.5)
            return
        raise RuntimeError("the database refused the batch")

    with pytest.raises(RuntimeError, match="refused"):
        await asyncio.wait_for(reader.run(list, process), 60)
    assert await _committed(kafka_bootstrap, group, topic) == {0: 2, 1: 2}


async def test_revoked_partitions_let_go_of_records_not_handed_out() -> None:
    reader = BatchReader("127.0.0.1:9", ["t"], "g", max_records=10)
    reader._pending = [ConsumerRecord("t", p, o, 0, 0, None, b"v", None, 0, 1, ()) for p in (0, 1) for o in (5, 6)]
    await reader.drain_before_rebalance([TopicPartition("t", 0)])
    assert [(r.partition, r.offset) for r in reader._pending] == [(1, 5), (1, 6)]


async def test_offsets_of_quick_batches_are_committed_together_and_the_last_ones_without_a_next_batch(
    kafka_bootstrap: str,
) -> None:
    topic, group = await _topic(kafka_bootstrap), f"g-{uuid.uuid4().hex[:6]}"
    await _produce(kafka_bootstrap, topic, 0, 60)
    reader = BatchReader(kafka_bootstrap, [topic], group, max_records=4, commit_interval=1.0)
    seen: list[int] = []
    commits: list[dict[TopicPartition, int]] = []

    async def process(batch: list[Inbound]) -> None:
        if not commits and reader.consumer is not None and not hasattr(reader.consumer.commit, "counted"):
            real = reader.consumer.commit

            async def counted(offsets: dict[TopicPartition, int]) -> None:
                commits.append(dict(offsets))
                await real(offsets)

            counted.counted = True  # type: ignore[attr-defined]
            reader.consumer.commit = counted  # type: ignore[method-assign]
        seen.extend(int(r.value) for r in batch)

    run = asyncio.create_task(reader.run(list, process))
    try:
        await _until(lambda: len(seen) == 60)
        # 15 or more batches of at most 4 records in well under the interval: one commit, the first.
        assert len(commits) == 1
        # No batch follows: the timer commits what is owed once the interval is over.
        await _until(lambda: len(commits) == 2, seconds=5)
        assert {tp.partition: o for tp, o in commits[-1].items()} == {0: 30, 1: 30}
        assert await _committed(kafka_bootstrap, group, topic) == {0: 30, 1: 30}
    finally:
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run


async def test_stopping_commits_the_offsets_owed(kafka_bootstrap: str) -> None:
    topic, group = await _topic(kafka_bootstrap), f"g-{uuid.uuid4().hex[:6]}"
    await _produce(kafka_bootstrap, topic, 0, 20)
    reader = BatchReader(kafka_bootstrap, [topic], group, max_records=2, commit_interval=60.0)
    seen: list[int] = []

    async def process(batch: list[Inbound]) -> None:
        seen.extend(int(r.value) for r in batch)

    run = asyncio.create_task(reader.run(list, process))
    await _until(lambda: len(seen) == 20)
    await asyncio.sleep(0.2)  # the last batch's offsets are owed, the timer is a minute away
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert await _committed(kafka_bootstrap, group, topic) == {0: 10, 1: 10}
