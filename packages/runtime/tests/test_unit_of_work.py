"""The worker transaction on the real broker and database: outputs acknowledged before the commit,
a refused output rolls the transaction back, and what a fresh attempt can cure is retried."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from fundtrail_runtime.db import conninfo
from fundtrail_runtime.kafka_admin import ensure_topics
from fundtrail_runtime.kafka_sink import AiokafkaSink, Record
from fundtrail_runtime.unit_of_work import UNIQUE_RETRIES, Transaction, UnitOfWork
from fundtrail_runtime.worker import BatchPhases
from fundtrail_schemas.topics import TopicSpec

pytestmark = pytest.mark.integration

# The broker refuses records larger than this on the small topic (a real produce error).
SMALL_MAX_BYTES = 2000


@pytest.fixture
async def url(fresh_database_url: str) -> str:
    """A libpq URL of an empty database with one table."""
    plain = conninfo(fresh_database_url)
    async with await psycopg.AsyncConnection.connect(plain, autocommit=True) as conn:
        await conn.execute("CREATE TABLE uow_row (id int PRIMARY KEY, note text)")
    return plain


@pytest.fixture
def topics(kafka_bootstrap: str) -> tuple[str, str]:
    """A normal topic and one whose broker-side limit refuses large records."""
    tag = uuid.uuid4().hex[:8]
    normal, small = f"fundtrail.test-uow-{tag}", f"fundtrail.test-uow-small-{tag}"
    ensure_topics(kafka_bootstrap, [
        TopicSpec(normal, 1, "test", "unit of work test"),
        TopicSpec(small, 1, "test", "unit of work test", config={"max.message.bytes": str(SMALL_MAX_BYTES)}),
    ])
    return normal, small


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


class WatchingSink(AiokafkaSink):
    """An `AiokafkaSink` that, as each acknowledgement arrives, asks another connection how many
    rows are committed: what the unit of work has not committed yet is invisible there."""

    def __init__(self, producer: Any, url: str) -> None:
        super().__init__(producer)
        self._url = url
        self.committed_at_ack: list[int] = []

    async def send_many(self, records: Sequence[Record]) -> list[Awaitable[Any]]:
        futures = await super().send_many(records)
        return [self._watch(f) for f in futures]

    async def _watch(self, ack: Awaitable[Any]) -> Any:
        metadata = await ack
        self.committed_at_ack.append(await _count(self._url))
        return metadata


async def _count(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        row = await (await conn.execute("SELECT count(*) FROM uow_row")).fetchone()
        return int(row[0]) if row else 0


async def _read(bootstrap: str, topic: str) -> list[bytes]:
    """Every record of `topic` there is now (up to its end offset)."""
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[bytes] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=10_000)).values():
                out += [r.value or b"" for r in records]
        return out
    finally:
        await consumer.stop()


def _unit(url: str, sink: AiokafkaSink, *, retry: bool = True) -> UnitOfWork:
    return UnitOfWork(lambda: psycopg.AsyncConnection.connect(url), sink, name="test", retry=retry)


async def test_outputs_are_acknowledged_before_the_commit(
    url: str, topics: tuple[str, str], producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    topic, _ = topics
    sink = WatchingSink(producer, url)
    unit = _unit(url, sink)
    phases = BatchPhases(("write", "produce", "commit"))

    async def work(tx: Transaction) -> str:
        await tx.cur.execute("INSERT INTO uow_row VALUES (1, 'one'), (2, 'two')")
        tx.send([Record(topic, b"k", b"first", []), Record(topic, b"k", b"second", [])])
        await tx.outbox.flush()  # handed over: the broker acknowledges while the rest is written
        await tx.cur.execute("UPDATE uow_row SET note = 'written' WHERE id = 2")
        tx.lap("write")
        tx.send([Record(topic, b"k", b"third", [])])  # queued late: still awaited before the commit
        return "done"

    try:
        assert await unit.run(work, pipelined=True, phases=phases) == "done"
    finally:
        await unit.close()
    assert sink.committed_at_ack and set(sink.committed_at_ack) == {0}  # every ack came before the commit
    assert await _count(url) == 2
    assert await _read(kafka_bootstrap, topic) == [b"first", b"second", b"third"]
    assert phases.seconds["produce"] > 0 and phases.seconds["commit"] > 0


async def test_a_refused_output_rolls_the_transaction_back(
    url: str, topics: tuple[str, str], producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    normal, small = topics
    unit = _unit(url, AiokafkaSink(producer), retry=False)

    async def work(tx: Transaction) -> None:
        await tx.cur.execute("INSERT INTO uow_row VALUES (1, 'one')")
        tx.send([Record(normal, None, b"fits", []), Record(small, None, b"x" * (4 * SMALL_MAX_BYTES), [])])

    try:
        with pytest.raises(KafkaError):
            await unit.run(work)
    finally:
        await unit.close()
    assert await _count(url) == 0  # nothing committed: the batch is retried as a whole
    assert await _read(kafka_bootstrap, small) == []


async def test_a_broker_error_is_retried_with_a_fresh_attempt(
    url: str, topics: tuple[str, str], producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    _, small = topics
    unit = _unit(url, AiokafkaSink(producer))
    attempts = 0

    async def work(tx: Transaction) -> int:
        nonlocal attempts
        attempts += 1
        await tx.cur.execute("INSERT INTO uow_row VALUES (1, %s)", (f"attempt {attempts}",))
        size = 4 * SMALL_MAX_BYTES if attempts == 1 else 10  # the first attempt's output is refused
        tx.send([Record(small, None, b"y" * size, [])])
        return attempts

    try:
        assert await unit.run(work) == 2
    finally:
        await unit.close()
    assert await _count(url) == 1
    assert await _read(kafka_bootstrap, small) == [b"y" * 10]


async def test_a_lost_connection_is_retried_on_a_new_one(url: str, producer: AIOKafkaProducer) -> None:
    unit = _unit(url, AiokafkaSink(producer))
    backends: list[int] = []

    async def work(tx: Transaction) -> None:
        backends.append(tx.conn.info.backend_pid)
        await tx.cur.execute("INSERT INTO uow_row VALUES (1, 'one')")
        if len(backends) == 1:  # the server ends this session (as a restart or a network cut would)
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
                await admin.execute("SELECT pg_terminate_backend(%s)", (backends[0],))
            await tx.cur.execute("SELECT 1")

    try:
        await unit.run(work)
    finally:
        await unit.close()
    assert len(backends) == 2 and backends[0] != backends[1]
    assert await _count(url) == 1


async def test_a_unique_key_written_first_elsewhere_is_decided_again(url: str, producer: AIOKafkaProducer) -> None:
    unit = _unit(url, AiokafkaSink(producer))
    attempts = 0

    async def work(tx: Transaction) -> list[int]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:  # another replica commits row 1 between our read and our write
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as other:
                await other.execute("INSERT INTO uow_row VALUES (1, 'other replica')")
        known = {r[0] for r in await (await tx.cur.execute("SELECT id FROM uow_row")).fetchall()}
        mine = [i for i in (1, 2) if i not in known or attempts == 1]
        for i in mine:
            await tx.cur.execute("INSERT INTO uow_row VALUES (%s, 'mine')", (i,))
        return mine

    try:
        assert await unit.run(work) == [2]
    finally:
        await unit.close()
    assert attempts == 2 and await _count(url) == 2


async def test_a_unique_violation_that_keeps_happening_is_raised(url: str, producer: AIOKafkaProducer) -> None:
    unit = _unit(url, AiokafkaSink(producer))
    attempts = 0

    async def work(tx: Transaction) -> None:
        nonlocal attempts
        attempts += 1
        await tx.cur.execute("INSERT INTO uow_row VALUES (7, 'a'), (7, 'b')")  # a bad batch, not a race

    try:
        with pytest.raises(psycopg.errors.UniqueViolation):
            await unit.run(work)
    finally:
        await unit.close()
    assert attempts == UNIQUE_RETRIES + 1 and await _count(url) == 0


async def test_concurrent_callers_take_turns_on_the_connection(url: str, producer: AIOKafkaProducer) -> None:
    """A timer and an agent sharing a unit of work: each transaction commits on its own, none nested."""
    unit = _unit(url, AiokafkaSink(producer), retry=False)

    def insert(n: int) -> Any:
        async def work(tx: Transaction) -> int:
            await tx.cur.execute("INSERT INTO uow_row VALUES (%s, 'concurrent')", (n,))
            await tx.cur.execute("SELECT pg_sleep(0.2)")  # the other caller arrives meanwhile
            return n
        return work

    try:
        await unit.run(insert(0))  # the connection is open before both arrive
        assert sorted(await asyncio.gather(unit.run(insert(1)), unit.run(insert(2)))) == [1, 2]
    finally:
        await unit.close()
    assert await _count(url) == 3
