"""Publisher SDK for finance bureaus (kafka-python, acks=all, idempotent producer).

    with Publisher("kafka:9092", state_dir=Path("~/.local/state/fundtrail").expanduser()) as pub:
        report, summary = pub.publish_file(Path("payments-2026-03.xlsx"), defaults=RowDefaults(
            source_bureau="440705101-CZS", region_code="440705101"))

Every event is validated locally first; ids derive from the source records, so publishing the same
file twice publishes nothing new: the local journal skips what it already sent, and the tracker's
dedup ignores anything sent again anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from fundtrail_schemas.events import Envelope, event_key, now_utc
from fundtrail_schemas.headers import event_headers
from fundtrail_schemas.kafka_security import client_security
from fundtrail_schemas.tabular import MappedRow, RowDefaults, RowError, TabularReport, detect_format, map_file
from fundtrail_schemas.telemetry import ATTR_EVENT_ID, ATTR_EVENT_TYPE, inject_headers
from fundtrail_schemas.topics import RAW_EVENTS

from .journal import Journal, JournalEntry

# Events are sent and journaled in chunks, so an interrupted import loses at most one chunk of
# journal entries (which the tracker's dedup then absorbs on the next run).
CHUNK = 5000


@dataclass
class PublishSummary:
    """What a publish did."""

    published: int = 0
    rejected: int = 0
    already_published: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.failed == 0


class Publisher:
    """Publishes validated events to the raw topic and journals what it published."""

    def __init__(
        self,
        bootstrap: str,
        state_dir: Path,
        *,
        client_id: str = "fundtrail-publisher",
        topic: str = RAW_EVENTS,
        producer_config: dict[str, Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._client_id = client_id
        self._config = producer_config or {}
        self._journal = Journal(state_dir, cluster=f"{bootstrap}#{topic}")
        self._producer: Any = None
        self._tracer = trace.get_tracer("fundtrail_publish")

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the producer and the journal."""
        if self._producer is not None:
            self._producer.flush()
            self._producer.close()
            self._producer = None
        self._journal.close()

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(
                bootstrap_servers=self._bootstrap.split(","),
                client_id=self._client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=20,
                batch_size=256 * 1024,
                compression_type=None,
                **client_security("kafka-python"),
                **self._config,
            )
        return self._producer

    def publish_file(
        self,
        path: Path,
        *,
        defaults: RowDefaults | None = None,
        fmt: str | None = None,
        sheet: str | None = None,
        strict: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> tuple[TabularReport, PublishSummary]:
        """Validate a JSONL/CSV/XLSX file and publish its valid rows (none at all if `strict` and any is bad)."""
        report = map_file(path.read_bytes(), fmt or detect_format(path.name), defaults=defaults,
                          published_at=now_utc(), sheet=sheet)
        if strict and report.errors:
            return report, PublishSummary(rejected=len(report.rejected_rows), errors=list(report.errors))
        summary = self.publish_rows(report.rows, on_progress=on_progress)
        summary.rejected += len(report.rejected_rows)
        summary.errors = list(report.errors) + summary.errors
        return report, summary

    def publish_events(
        self, events: Sequence[Envelope], *, on_progress: Callable[[int], None] | None = None
    ) -> PublishSummary:
        """Publish already-built events (their event ids must be deterministic for re-runs to be no-ops)."""
        from fundtrail_schemas.tabular import content_hash

        rows = [MappedRow(i + 1, ev, str(ev.event_id), content_hash(ev)) for i, ev in enumerate(events)]
        return self.publish_rows(rows, on_progress=on_progress)

    def plan(self, rows: Sequence[MappedRow]) -> tuple[list[MappedRow], int, list[RowError]]:
        """Split rows into (to publish, already published count, rows changed since they were published)."""
        known = self._journal.hashes(str(r.event.event_id) for r in rows)
        todo: list[MappedRow] = []
        already = 0
        changed: list[RowError] = []
        for r in rows:
            h = known.get(str(r.event.event_id))
            if h is None:
                todo.append(r)
            elif h == r.content_hash:
                already += 1
            else:
                changed.append(RowError(
                    r.row, "(row)",
                    f"record {r.record_key!r} was already published with different content; "
                    "publish a correcting event (e.g. BudgetAdjusted, ContractAmended) instead of editing it",
                    "changed_after_publishing",
                ))
        return todo, already, changed

    def publish_rows(
        self, rows: Sequence[MappedRow], *, on_progress: Callable[[int], None] | None = None
    ) -> PublishSummary:
        """Publish mapped rows that the journal does not know yet; wait for every acknowledgement."""
        todo, already, changed = self.plan(rows)
        summary = PublishSummary(already_published=already, rejected=len(changed), errors=changed)
        if on_progress is not None and already:
            on_progress(already)
        for start in range(0, len(todo), CHUNK):
            self._publish_chunk(todo[start : start + CHUNK], summary, on_progress)
        return summary

    def _publish_chunk(
        self, rows: Sequence[MappedRow], summary: PublishSummary, on_progress: Callable[[int], None] | None
    ) -> None:
        producer = self._ensure_producer()
        sent: list[tuple[MappedRow, Any]] = []
        for r in rows:
            ev = r.event
            with self._tracer.start_as_current_span(
                f"{self._topic} publish",
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.operation.name": "publish",
                    "messaging.destination.name": self._topic,
                    ATTR_EVENT_ID: str(ev.event_id),
                    ATTR_EVENT_TYPE: ev.event_type,
                },
            ):
                headers = event_headers(ev.event_type, ev.schema_version, inject_headers())
                future = producer.send(self._topic, key=event_key(ev), value=ev.model_dump_json().encode(),
                                       headers=headers)
            if on_progress is not None:
                future.add_callback(lambda _md: on_progress(1))
            sent.append((r, future))
        producer.flush()
        published_at = now_utc()
        entries: list[JournalEntry] = []
        for r, future in sent:
            try:
                md = future.get(timeout=30)
            except Exception as exc:
                summary.failed += 1
                summary.errors.append(RowError(r.row, "(row)", f"the broker did not accept it: {exc}", "failed"))
                continue
            entries.append(JournalEntry(str(r.event.event_id), r.content_hash, r.record_key, md.topic,
                                        md.partition, md.offset, published_at))
        self._journal.record(entries)
        summary.published += len(entries)
