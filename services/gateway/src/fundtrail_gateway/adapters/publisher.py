"""Kafka publishing with kafka-python: acks=all, idempotent producer, trace headers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio.to_thread
from kafka import KafkaProducer
from kafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from fundtrail_schemas.kafka_security import client_security
from fundtrail_schemas.telemetry import ATTR_BATCH_SIZE, inject_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer("fundtrail_gateway.publisher")


@dataclass(frozen=True, slots=True)
class OutMessage:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a message landed, or why it did not."""

    ok: bool
    partition: int | None = None
    offset: int | None = None
    error: str | None = None


class PublisherUnavailable(RuntimeError):
    """The broker cannot be reached at all."""


class KafkaPublisher:
    """One producer per process, created on first use so the gateway starts (and reads) without Kafka."""

    def __init__(self, bootstrap: str, *, client_id: str = "fundtrail-gateway", send_timeout: float = 15.0) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._timeout = send_timeout
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _create(self, bootstrap_timeout: float) -> KafkaProducer:
        # The constructor bootstraps (fetches cluster metadata) and raises when no broker answers in time.
        try:
            return KafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=2,
                request_timeout_ms=int(self._timeout * 1000),
                max_block_ms=int(self._timeout * 1000),
                bootstrap_timeout_ms=int(bootstrap_timeout * 1000),
                **client_security("kafka-python"),
            )
        except KafkaError as exc:
            raise PublisherUnavailable(f"Kafka at {self._bootstrap} is not reachable: {exc}") from exc

    def _get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = self._create(self._timeout)
            return self._producer

    def connect(self, timeout: float) -> None:
        """Bootstrap the producer now if it is not yet; PublisherUnavailable unless done within `timeout` s."""
        if self._producer is not None:
            return
        # Another thread may be bootstrapping (a publish, an earlier probe): wait for it, but not forever.
        if not self._lock.acquire(timeout=timeout):
            raise PublisherUnavailable(f"still connecting to Kafka at {self._bootstrap}")
        try:
            if self._producer is None:
                self._producer = self._create(timeout)
        finally:
            self._lock.release()

    def _send_all(self, messages: Sequence[OutMessage]) -> list[Delivery]:
        producer = self._get()
        futures = []
        for m in messages:
            try:
                futures.append(producer.send(m.topic, key=m.key, value=m.value, headers=list(m.headers)))
            except KafkaError as exc:
                futures.append(exc)
        producer.flush(timeout=self._timeout)
        out: list[Delivery] = []
        for fut in futures:
            if isinstance(fut, Exception):
                out.append(Delivery(False, error=str(fut)))
                continue
            try:
                md = fut.get(timeout=self._timeout)
            except KafkaError as exc:
                out.append(Delivery(False, error=str(exc)))
            else:
                out.append(Delivery(True, md.partition, md.offset))
        return out

    async def publish(self, messages: Sequence[OutMessage]) -> list[Delivery]:
        """Send and wait for every acknowledgement; one Delivery per message, in order."""
        if not messages:
            return []
        topic = messages[0].topic
        with tracer.start_as_current_span(f"{topic} publish", kind=SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.destination.name", topic)
            span.set_attribute("messaging.operation.type", "publish")
            span.set_attribute(ATTR_BATCH_SIZE, len(messages))
            trace_headers = inject_headers()
            with_trace = [
                OutMessage(m.topic, m.key, m.value, [*m.headers, *trace_headers]) for m in messages
            ]
            return await anyio.to_thread.run_sync(self._send_all, with_trace)

    def close(self) -> None:
        """Flush and close the producer if it was ever created."""
        with self._lock:
            if self._producer is not None:
                try:
                    self._producer.close(timeout=self._timeout)
                except KafkaError:
                    log.warning("closing the Kafka producer failed", exc_info=True)
                self._producer = None
